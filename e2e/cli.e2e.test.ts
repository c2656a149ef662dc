// The `lockstep` CLI as a user runs it: a child process against the test cluster's real API
// server, with kubectl's cluster flags, checked by its output and exit code. The status objects
// are written by the test (the operator does not run here): what is tested is what the CLI reads,
// prints and returns for Ready and not-Ready resources and for a cluster it cannot reach.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { PUBLIC_JWKS_KEY, publicJwksConfigMapName, type Condition, type RotationSchedule } from '../operator/api/v1alpha1/index.js';
import { createKeySet, publicJwks } from '../operator/crypto/keyset.js';
import { openSealed } from '../operator/crypto/seal.js';
import { jwkThumbprint } from '../operator/crypto/thumbprint.js';
import { clients, eventually } from './harness/cluster.js';
import { installCrds } from './harness/lockstep.js';
import { repoRoot } from './harness/manifests.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';

const c = clients();
let ns = '';
let dir = '';
let kubeconfig = '';
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const ES = { group: 'lockstep.dev', version: 'v1alpha1', plural: 'encryptedservices' };
const KP = { group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies' };
const RS = { group: 'lockstep.dev', version: 'v1alpha1', plural: 'rotationschedules' };
const TYPES = ['Ready', 'TransitReady', 'AccessReady', 'AtRestReady', 'SecretsReady', 'Verified'];

interface Run { code: number | null; stdout: string; stderr: string }

// The CLI bundled once (esbuild, which tsx brings): a child process starts in a third of tsx's time.
const cli = join(repoRoot, 'node_modules/.cache/lockstep-cli-e2e/main.mjs');

function start(args: string[], env: NodeJS.ProcessEnv = {}, stdin?: string): ChildProcess & { output: () => Run } {
  const child = spawn(process.execPath, [cli, ...args], {
    cwd: repoRoot, env: { ...process.env, KUBECONFIG: '', HOME: dir, ...env }, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  child.stdin?.end(stdin);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  return Object.assign(child, { output: () => ({ code: child.exitCode, stdout, stderr }) });
}

async function lockstep(args: string[], env: NodeJS.ProcessEnv = {}, stdin?: string): Promise<Run> {
  const child = start(args, env, stdin);
  await new Promise((resolve) => child.once('close', resolve));
  return child.output();
}

const conditions = (ready: boolean, reason: string): Condition[] => TYPES.map((type) => ({
  type, status: ready || type !== 'Ready' && type !== 'AtRestReady' ? 'True' : 'False', reason: ready ? 'Ready' : reason,
  message: ready ? 'ok' : 'volume data on an unencrypted StorageClass', lastTransitionTime: new Date().toISOString(),
}));

async function service(name: string, ready: boolean): Promise<void> {
  const body = {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace: ns },
    spec: { workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name }, ports: [{ name: 'https', port: 8443 }], keyPolicyRef: { name: 'keys' } },
  };
  await c.custom.createNamespacedCustomObject({ ...ES, namespace: ns, body });
  await setService(name, ready);
}

async function setService(name: string, ready: boolean): Promise<void> {
  const notAfter = new Date(Date.now() + 20 * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const status = { observedGeneration: 1, conditions: conditions(ready, 'UnencryptedVolume'), certificate: { notAfter } };
  await c.custom.patchNamespacedCustomObjectStatus({ ...ES, namespace: ns, name, body: { status } }, mergePatch);
}

/** A kubeconfig file of the test cluster with two contexts; `inTest` defaults to the test namespace. */
function writeKubeconfig(server?: string): string {
  const raw = JSON.parse(c.kc.exportConfig()) as { clusters: { name: string; cluster: { server: string } }[]; contexts: { name: string; context: Record<string, string> }[]; 'current-context': string };
  const current = raw.contexts.find((x) => x.name === raw['current-context']) ?? raw.contexts[0]!;
  if (server) for (const cl of raw.clusters) cl.cluster.server = server;
  raw.contexts = [{ name: 'elsewhere', context: { ...current.context, namespace: 'kube-system' } }, { name: 'in-test', context: { ...current.context, namespace: ns } }];
  raw['current-context'] = 'elsewhere';
  const file = join(dir, server ? 'unreachable.kubeconfig' : 'kubeconfig');
  writeFileSync(file, stringify(raw), { mode: 0o600 });
  return file;
}

beforeAll(async () => {
  execFileSync(join(repoRoot, 'node_modules/.bin/esbuild'), ['operator/cli/main.ts', '--bundle', '--platform=node', '--format=esm',
    '--packages=external', `--outfile=${cli}`, '--log-level=warning'], { cwd: repoRoot });
  installCrds();
  ns = await createTestNamespace(c, 'cli');
  dir = mkdtempSync(join(tmpdir(), 'lockstep-cli-'));
  kubeconfig = writeKubeconfig();
  await service('web', true);
  await service('db', false);
});

afterAll(async () => {
  if (ns) await deleteTestNamespace(c, ns);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('lockstep status against the API server', () => {
  it('exits 1 and names the reason when a service is not Ready, in the --context namespace', async () => {
    const run = await lockstep(['status', '--kubeconfig', kubeconfig, '--context', 'in-test']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`^${ns}\\s+db\\s+NO\\s+yes\\s+yes\\s+NO\\s+yes\\s+yes\\s+\\S+Z\\s+UnencryptedVolume$`, 'm'));
    expect(run.stdout).toMatch(new RegExp(`^${ns}\\s+web\\s+yes(\\s+yes){5}\\s+\\S+Z$`, 'm'));
  });

  it('exits 0 when everything shown is Ready; -o json and -o wide say the same', async () => {
    await setService('db', true);
    const json = await lockstep(['status', '--kubeconfig', kubeconfig, '-n', ns, '-o', 'json']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as { healthy: boolean; services: { name: string; ready: string }[] };
    expect(report.healthy).toBe(true);
    expect(report.services.map((s) => `${s.name}:${s.ready}`)).toEqual(['db:True', 'web:True']);
    const wide = await lockstep(['status', '-o', 'wide', '--kubeconfig', kubeconfig, '--context=in-test', '--request-timeout', '10s']);
    expect(wide.code).toBe(0);
    expect(wide.stdout.split('\n')[0]).toMatch(/CERT-EXPIRES\s+CERT-RENEWS\s+SPIFFE-ID\s+KEY-IDS\s+REASON\s+MESSAGE$/);
  });

  it('--watch re-prints when a service changes and exits on Ctrl-C with the last report\'s code', async () => {
    const watch = start(['status', '--watch', '--interval', '300ms', '-o', 'json', '-n', ns, '--kubeconfig', kubeconfig]);
    try {
      await eventually('first report', async () => (watch.output().stdout.includes('"healthy": true') ? true : undefined), 30_000);
      await setService('web', false);
      await eventually('report after the change', async () => (watch.output().stdout.includes('"healthy": false') ? true : undefined), 30_000);
      const closed = new Promise((resolve) => watch.once('close', resolve));
      watch.kill('SIGINT');
      await closed;
      expect(watch.output().code).toBe(1);
    } finally {
      watch.kill('SIGKILL');
      await setService('web', true);
    }
  });

  it('exits 3 with a readable error when the cluster cannot be reached or the kubeconfig is unusable', async () => {
    const unreachable = await lockstep(['status', '--kubeconfig', writeKubeconfig('https://127.0.0.1:1')]);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toMatch(/^error: could not talk to the cluster at https:\/\/127\.0\.0\.1:1: ECONNREFUSED/);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    const bad = await lockstep(['status'], { KUBECONFIG: empty });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toBe(`error: kubeconfig ${empty} is empty: expected a YAML mapping with clusters, contexts and users\n`);
    const context = await lockstep(['status', '--kubeconfig', kubeconfig, '--context', 'x']);
    expect(context.code).toBe(3);
    expect(context.stderr).toMatch(/context "x" not found in kubeconfig .*; contexts: elsewhere, in-test/);
    const none = await lockstep(['status']);
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/no kubeconfig/);
    expect(await lockstep(['status', '--request-timeout', 'soon', '--kubeconfig', kubeconfig]).then((r) => r.code)).toBe(2);
  });
});

describe('lockstep check, rotate, pause, resume', () => {
  it('check exits 0 for a Ready service and 1 for one whose generation is not reconciled', async () => {
    const ok = await lockstep(['check', 'web', '-n', ns, '--kubeconfig', kubeconfig]);
    expect(ok).toMatchObject({ code: 0, stdout: `encryptedservice ${ns}/web is Ready\n` });
    await c.custom.patchNamespacedCustomObject({ ...ES, namespace: ns, name: 'web', body: { spec: { ports: [{ name: 'https', port: 9443 }] } } }, mergePatch);
    const stale = await lockstep(['check', 'web', '-n', ns, '--kubeconfig', kubeconfig, '--wait', '--timeout', '2s', '--interval', '500ms']);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/timed out after 2s .* has not reconciled generation 2 yet/);
  });

  it('rotate sets a fresh rotate-now value each time; pause and resume use lockstep.dev/paused', async () => {
    const body = {
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule', metadata: { name: 'nightly', namespace: ns },
      spec: { targets: { names: ['web'] }, rotate: ['certificates'] },
    };
    await c.custom.createNamespacedCustomObject({ ...RS, namespace: ns, body });
    const annotations = async () => ((await c.custom.getNamespacedCustomObject({ ...RS, namespace: ns, name: 'nightly' })) as k8s.KubernetesObject).metadata?.annotations ?? {};
    expect((await lockstep(['rotate', 'nightly', '--kubeconfig', kubeconfig, '--context', 'in-test'])).code).toBe(0);
    const first = (await annotations())['lockstep.dev/rotate-now'];
    expect((await lockstep(['rotate', 'nightly', '-n', ns, '--kubeconfig', kubeconfig])).code).toBe(0);
    const second = (await annotations())['lockstep.dev/rotate-now'];
    expect(first).toBeTruthy();
    expect(second).not.toBe(first);

    expect((await lockstep(['pause', 'nightly', '-n', ns, '--kubeconfig', kubeconfig])).code).toBe(0);
    expect((await annotations())['lockstep.dev/paused']).toBe('true');
    expect((await lockstep(['resume', 'nightly', '-n', ns, '--kubeconfig', kubeconfig])).code).toBe(0);
    expect((await annotations())['lockstep.dev/paused']).toBeUndefined();
    const missing = await lockstep(['pause', 'nope', '-n', ns, '--kubeconfig', kubeconfig]);
    expect(missing).toMatchObject({ code: 1, stderr: `error: RotationSchedule ${ns}/nope not found\n` });
  });

  it('rotate --wait follows the rotation its value started to the outcome (the test plays the operator)', async () => {
    const rotateAndFinish = async (id: string, outcome: 'Completed' | 'RolledBack'): Promise<Run> => {
      const before = (await c.custom.getNamespacedCustomObject({ ...RS, namespace: ns, name: 'nightly' })) as RotationSchedule;
      const child = start(['rotate', 'nightly', '--wait', '--interval', '300ms', '--timeout', '90s', '-n', ns, '--kubeconfig', kubeconfig]);
      const closed = new Promise((resolve) => child.once('close', resolve));
      const value = await eventually('a new rotate-now value', async () => {
        const rs = (await c.custom.getNamespacedCustomObject({ ...RS, namespace: ns, name: 'nightly' })) as RotationSchedule;
        const v = rs.metadata.annotations?.['lockstep.dev/rotate-now'];
        return v && v !== before.metadata.annotations?.['lockstep.dev/rotate-now'] ? v : undefined;
      }, 60_000);
      const history = [{ rotationId: id, outcome, trigger: 'Manual', message: outcome === 'Completed' ? 'all targets verified' : 'verification failed: old certificate served' }, ...(before.status?.history ?? [])];
      await c.custom.patchNamespacedCustomObjectStatus({ ...RS, namespace: ns, name: 'nightly', body: { status: { phase: outcome, lastRotateNow: value, history } } }, mergePatch);
      await closed;
      return child.output();
    };
    const rolledBack = await rotateAndFinish('r1', 'RolledBack');
    expect(rolledBack.code).toBe(1);
    expect(rolledBack.stdout).toContain('rotation r1: RolledBack — verification failed: old certificate served');
    const completed = await rotateAndFinish('r2', 'Completed');
    expect(completed.code).toBe(0);
    expect(completed.stdout).toContain('rotation r2: Completed');
  });
});

describe('lockstep fetch-key and offline seal', () => {
  it('saves the sealing key the KeyPolicy status vouches for; seal --jwks refuses another fingerprint', async () => {
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() });
    const jwk = publicJwks(seal).keys[0]!;
    const fingerprint = jwkThumbprint(jwk);
    await c.custom.createNamespacedCustomObject({ ...KP, namespace: ns, body: { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'keys', namespace: ns }, spec: {} } });
    await c.custom.patchNamespacedCustomObjectStatus({ ...KP, namespace: ns, name: 'keys', body: { status: { sealingKid: jwk.kid, sealingKeyThumbprint: fingerprint } } }, mergePatch);
    const configMap = { metadata: { name: publicJwksConfigMapName('keys'), namespace: ns }, data: { [PUBLIC_JWKS_KEY]: JSON.stringify(publicJwks(seal)) } };
    await c.core.createNamespacedConfigMap({ namespace: ns, body: configMap });

    const keyFile = join(dir, 'sealing-key.json');
    const fetched = await lockstep(['fetch-key', '--policy', 'keys', '--out', keyFile, '--kubeconfig', kubeconfig, '--context', 'in-test']);
    expect(fetched.code).toBe(0);
    expect(fetched.stdout).toContain(`fingerprint ${fingerprint} written to ${keyFile}`);

    const secret = `apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: ${ns}}\nstringData: {password: pw, user: admin}\n`;
    const sealed = await lockstep(['seal', '--jwks', keyFile, '--fingerprint', fingerprint], {}, secret);
    expect(sealed.code).toBe(0);
    const [entry] = parse(sealed.stdout) as { name: string; encryptedData: Record<string, string> }[];
    expect(Object.keys(entry!.encryptedData)).toEqual(['password', 'user']);
    expect((await openSealed(seal, entry!.encryptedData['user']!, { namespace: ns, name: 'db', key: 'user' })).toString()).toBe('admin');
    const wrong = await lockstep(['seal', '--jwks', keyFile, '--fingerprint', 'A'.repeat(43)], {}, secret);
    expect(wrong).toMatchObject({ code: 1, stdout: '' });
    expect(wrong.stderr).toMatch(/nothing was sealed/);

    // A key swapped into the ConfigMap is not what the status vouches for: nothing is saved.
    const other = await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() });
    await c.core.patchNamespacedConfigMap({ namespace: ns, name: configMap.metadata.name, body: { data: { [PUBLIC_JWKS_KEY]: JSON.stringify(publicJwks(other)) } } }, mergePatch);
    const swapped = await lockstep(['fetch-key', '--policy', 'keys', '-n', ns, '--kubeconfig', kubeconfig]);
    expect(swapped).toMatchObject({ code: 1, stdout: '' });
    expect(swapped.stderr).toMatch(/no key was fetched/);
  });
});
