// Secrets encrypted in etcd under Lockstep's keys (issue 14, part 2), proven by reading etcd
// itself. Independent of how the cluster was started: the suite starts its own `lockstep
// kms-plugin` and its own second kube-apiserver (the cluster's binary, etcd and certificates,
// its own port and --etcd-prefix) with the EncryptionConfiguration cluster-up.sh's
// ENCRYPTION=lockstep uses, and reads what that API server stored with etcdctl built at the
// cluster's etcd version. Only on the local control plane (cluster-up.sh records its command
// lines); skipped on kind.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { parseWrapped } from '../operator/crypto/pkcs11-wrapped.js';
import { ciphertextKid } from '../operator/kms/ciphertext.js';
import { kmsClient } from '../operator/kms/client.js';
import { eventually } from './harness/cluster.js';
import {
  buildEtcdctl, etcdDeletePrefix, etcdValue, flag, freePort, kubeConfigFor, parseStoredEnvelope, Proc, rawStatus, recordedArgv, KMS_V2_PREFIX,
} from './harness/kms.js';
import { repoRoot } from './harness/manifests.js';

const run = promisify(execFile);
const apiserverArgv = recordedArgv('kube-apiserver');
const etcdArgv = recordedArgv('etcd');
const describeLocal = apiserverArgv && etcdArgv ? describe : describe.skip;
const NS = 'default';

let dir = '';
let etcdctl = '';
let endpoints = '';
let prefix = `/lockstep-kms-e2e-${randomBytes(4).toString('hex')}`;
const prefixes = [prefix];
let plugin: Proc | undefined;
let apiserver: Proc | undefined;
let core: k8s.CoreV1Api;
let kc: k8s.KubeConfig;
const keyFile = () => join(dir, 'kms-keys.json');
let socketName = 'kms.sock';
const socket = () => join(dir, socketName);
const lockstep = (...args: string[]) => [process.execPath, '--import', 'tsx', join(repoRoot, 'operator/cli/main.ts'), ...args];
const cli = async (...args: string[]): Promise<string> => {
  const [node, ...rest] = lockstep(...args);
  return (await run(node!, rest, { cwd: repoRoot, env: { ...process.env, ...tokenEnv } })).stdout;
};
/** The SoftHSM configuration the token-backed plugin and its CLI read (set by the token suite). */
let tokenEnv: Record<string, string> = {};

/** `lockstep etcd-encryption -o json` against the API server `kubeconfig` names: exit code and report. */
const etcdEncryption = async (kubeconfig: string): Promise<{ code: number; report: { kms?: string; message?: string } }> => {
  const [node, ...rest] = lockstep('etcd-encryption', '-o', 'json', '--kubeconfig', kubeconfig);
  const out = await run(node!, rest, { cwd: repoRoot }).then((r) => ({ code: 0, stdout: r.stdout }), (err: { code?: number; stdout?: string }) => ({ code: err.code ?? -1, stdout: err.stdout ?? '' }));
  return { code: out.code, report: out.stdout ? JSON.parse(out.stdout) as { kms?: string; message?: string } : {} };
};
const kubeconfigFile = () => join(dir, 'kubeconfig');

const secretKey = (name: string) => `${prefix}/secrets/${NS}/${name}`;
const stored = async (name: string): Promise<Buffer> => {
  const value = await etcdValue(etcdctl, endpoints, secretKey(name));
  if (!value) throw new Error(`etcd has nothing at ${secretKey(name)}`);
  return value;
};
const value = () => `lockstep-kms-e2e-${randomBytes(12).toString('hex')}`;
const readValue = async (name: string): Promise<string> =>
  Buffer.from((await core.readNamespacedSecret({ name, namespace: NS })).data?.['value'] ?? '', 'base64').toString('utf8');
const writeSecret = async (name: string, v: string): Promise<void> => {
  const data = { value: Buffer.from(v).toString('base64') };
  try {
    const current = await core.readNamespacedSecret({ name, namespace: NS });
    await core.replaceNamespacedSecret({ name, namespace: NS, body: { ...current, data } });
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
    await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name }, data } });
  }
};
/** What the plugin reports now (its key ID), straight over its socket. */
const pluginKeyId = async (): Promise<string> => {
  const client = kmsClient(socket());
  try {
    return (await client.status()).key_id;
  } finally {
    client.close();
  }
};

async function startPlugin(): Promise<void> {
  plugin!.start();
  await eventually('the KMS plugin answering Status', async () => ((await pluginKeyId()) ? true : undefined), 60_000, 200)
    .catch((err: Error) => { throw new Error(`${err.message}\n${plugin!.tail()}`); });
}

async function startApiserver(): Promise<void> {
  apiserver!.start();
  await eventually('the encrypting API server ready', async () => ((await rawStatus(kc, '/readyz')) === 200 ? true : undefined), 180_000, 500)
    .catch((err: Error) => { throw new Error(`${err.message}\n${apiserver!.tail()}`); });
  await eventually(`namespace ${NS}`, async () => (await core.readNamespace({ name: NS })) ?? undefined, 60_000, 500);
}

/** A second kube-apiserver (the cluster's binary, etcd and certificates) under `prefix`, encrypting Secrets through the plugin at socket(). */
async function newApiserver(name: string): Promise<number> {
  const apiserverArgs = apiserverArgv!;
  const config = join(dir, `${name}-encryption-config.yaml`);
  writeFileSync(config, (await run('bash', [join(repoRoot, 'e2e/controlplane/encryption-config.sh'), socket()])).stdout);
  const port = await freePort();
  const from = (name: string): string => {
    const v = flag(apiserverArgs, name);
    if (v === undefined) throw new Error(`the cluster's kube-apiserver has no --${name}`);
    return v;
  };
  apiserver = new Proc('kube-apiserver', [
    apiserverArgs[0]!,
    '--etcd-servers', endpoints, '--etcd-prefix', prefix,
    '--bind-address', '127.0.0.1', '--advertise-address', '127.0.0.1', '--secure-port', String(port),
    '--tls-cert-file', from('tls-cert-file'), '--tls-private-key-file', from('tls-private-key-file'),
    '--client-ca-file', from('client-ca-file'), '--authorization-mode', 'RBAC',
    '--service-cluster-ip-range', from('service-cluster-ip-range'), '--disable-admission-plugins', 'ServiceAccount',
    '--service-account-issuer', from('service-account-issuer'),
    '--service-account-key-file', from('service-account-key-file'),
    '--service-account-signing-key-file', from('service-account-signing-key-file'),
    '--encryption-provider-config', config,
  ], join(dir, `${name}.log`));
  kc = kubeConfigFor(port);
  writeFileSync(kubeconfigFile(), kc.exportConfig(), { mode: 0o600 });
  core = kc.makeApiClient(k8s.CoreV1Api);
  return port;
}

beforeAll(async () => {
  if (!apiserverArgv || !etcdArgv) return;
  dir = mkdtempSync(join(tmpdir(), 'lockstep-kms-e2e-'));
  etcdctl = await buildEtcdctl();
  endpoints = flag(apiserverArgv, 'etcd-servers')!;
  await cli('kms-plugin', 'init', '--keys', keyFile());
  plugin = new Proc('kms-plugin', lockstep('kms-plugin', '--socket', socket(), '--keys', keyFile()), join(dir, 'kms-plugin.log'));
  await startPlugin();
  const port = await newApiserver('kube-apiserver');
  const t0 = Date.now();
  await startApiserver();
  console.log(`encrypting API server on 127.0.0.1:${port} (etcd prefix ${prefix}) ready in ${Date.now() - t0} ms`);
}, 900_000);

afterAll(async () => {
  await apiserver?.stop();
  await plugin?.stop();
  for (const p of prefixes) if (etcdctl && endpoints) await etcdDeletePrefix(etcdctl, endpoints, `${p}/`).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describeLocal('Secrets in etcd encrypted by Lockstep\'s KMS v2 plugin', () => {
  const a = value();
  const b = value();
  let firstKid = '';

  it('etcdctl is the cluster\'s etcd version', async () => {
    const etcd = (await run(etcdArgv![0]!, ['--version'])).stdout;
    const ctl = (await run(etcdctl, ['version'])).stdout;
    const version = /etcd Version: (\S+)/.exec(etcd)?.[1];
    expect(version).toBeDefined();
    expect(ctl).toContain(`etcdctl version: ${version}`);
  });

  it('a Secret is stored as k8s:enc:kms:v2:lockstep: under the plugin\'s key, without its plaintext; a ConfigMap (not encrypted) shows the same check sees plaintext', async () => {
    await writeSecret('kms-a', a);
    await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'kms-control' }, data: { value: a } } });
    const raw = await stored('kms-a');
    expect(raw.subarray(0, KMS_V2_PREFIX.length + 'lockstep:'.length).toString('latin1')).toBe(`${KMS_V2_PREFIX}lockstep:`);
    expect(raw.includes(Buffer.from(a))).toBe(false);
    expect(raw.includes(Buffer.from(Buffer.from(a).toString('base64')))).toBe(false);
    const control = await etcdValue(etcdctl, endpoints, `${prefix}/configmaps/${NS}/kms-control`);
    expect(control?.includes(Buffer.from(a))).toBe(true);

    const envelope = parseStoredEnvelope(raw);
    firstKid = await pluginKeyId();
    expect(envelope.provider).toBe('lockstep');
    expect(envelope.keyId).toBe(firstKid);
    // The DEK seed is wrapped by the plugin: Lockstep's ciphertext, naming the same key.
    expect(ciphertextKid(envelope.encryptedDEKSource)).toBe(firstKid);
    expect(await readValue('kms-a')).toBe(a);
    console.log(`etcd ${secretKey('kms-a')}: ${raw.subarray(0, KMS_V2_PREFIX.length + 9).toString('latin1')}… (${raw.length} bytes), key ID ${envelope.keyId}`);
  });

  it('after a key rotation a rewritten Secret carries the new key; one not rewritten keeps the old key and still reads', async () => {
    await writeSecret('kms-b', b);
    expect(parseStoredEnvelope(await stored('kms-b')).keyId).toBe(firstKid);
    const out = await cli('kms-plugin', 'rotate', '--keys', keyFile());
    const newKid = await pluginKeyId();
    expect(newKid).not.toBe(firstKid);
    expect(out).toContain(newKid);
    const t0 = Date.now();
    // The API server asks Status every minute, and on a healthz request once its last answer is
    // 20 s old (check kms-providers): ask for healthz while rewriting, as a monitoring probe would.
    await eventually('a rewritten Secret under the new key', async () => {
      await rawStatus(kc, '/healthz/kms-providers');
      await writeSecret('kms-a', `${a}-rewritten`);
      return parseStoredEnvelope(await stored('kms-a')).keyId === newKid ? true : undefined;
    }, 150_000, 2000);
    console.log(`rotation → a write under the new key: ${Date.now() - t0} ms`);
    const rewritten = parseStoredEnvelope(await stored('kms-a'));
    expect(ciphertextKid(rewritten.encryptedDEKSource)).toBe(newKid);
    expect(parseStoredEnvelope(await stored('kms-b')).keyId).toBe(firstKid);
    expect(await readValue('kms-a')).toBe(`${a}-rewritten`);
    expect(await readValue('kms-b')).toBe(b);
  }, 240_000);

  it('lockstep etcd-encryption sees the KMS provider on this API server, and none on the cluster\'s own', async () => {
    const here = await etcdEncryption(kubeconfigFile());
    expect(here).toMatchObject({ code: 0, report: { kms: 'kms' } });
    expect(here.report.message).toContain('kms-providers check passes');
    const plainCluster = await etcdEncryption(process.env.KUBECONFIG!);
    // The cluster may have been started with ENCRYPTION=lockstep: then it says so too.
    const encrypted = recordedArgv('kube-apiserver')!.includes('--encryption-provider-config');
    expect(plainCluster).toMatchObject(encrypted ? { code: 0, report: { kms: 'kms' } } : { code: 1, report: { kms: 'none' } });
  }, 60_000);

  it('the Secrets survive a restart of the API server (its DEK cache empty: the old key opens through the plugin)', async () => {
    await apiserver!.stop();
    const t0 = Date.now();
    await startApiserver();
    console.log(`API server restart → ready: ${Date.now() - t0} ms`);
    expect(await readValue('kms-a')).toBe(`${a}-rewritten`);
    expect(await readValue('kms-b')).toBe(b);
    expect(parseStoredEnvelope(await stored('kms-b')).keyId).toBe(firstKid);
  }, 240_000);

  it('with the plugin down the API server reports it unhealthy and keeps serving reads from its DEK cache; it recovers when the plugin is back', async () => {
    expect(await rawStatus(kc, '/healthz/kms-providers')).toBe(200);
    await plugin!.stop('SIGKILL');
    await expect(pluginKeyId()).rejects.toBeDefined();
    const t0 = Date.now();
    let reads = 0;
    // Reads go on all the while (a failed read fails the test at once, not at a timeout).
    for (;;) {
      expect(await readValue('kms-a')).toBe(`${a}-rewritten`);
      expect(await readValue('kms-b')).toBe(b);
      reads += 2;
      if ((await rawStatus(kc, '/healthz/kms-providers')) !== 200) break;
      if (Date.now() - t0 > 120_000) throw new Error('the API server never noticed the plugin was gone');
      await new Promise((r) => setTimeout(r, 1000));
    }
    console.log(`plugin down: healthz failing after ${Date.now() - t0} ms, ${reads} reads served meanwhile`);
    // The same check in /readyz: the CLI reports a provider that fails.
    expect(await etcdEncryption(kubeconfigFile())).toMatchObject({ code: 1, report: { kms: 'failing' } });
    const names = (await core.listNamespacedSecret({ namespace: NS })).items.map((s) => s.metadata?.name);
    expect(names).toEqual(expect.arrayContaining(['kms-a', 'kms-b']));
    expect(await readValue('kms-a')).toBe(`${a}-rewritten`);
    expect(await readValue('kms-b')).toBe(b);

    await startPlugin();
    await eventually('the API server healthy again', async () => ((await rawStatus(kc, '/healthz/kms-providers')) === 200 ? true : undefined), 60_000, 1000);
    const c = value();
    await writeSecret('kms-c', c);
    expect(await readValue('kms-c')).toBe(c);
    expect(parseStoredEnvelope(await stored('kms-c')).keyId).toBe(await pluginKeyId());
  }, 240_000);
});

// The same path with the plugin's root keys in a PKCS#11 token (SoftHSM2 here, an HSM in a real
// cluster): a new plugin (`--pkcs11`) and a new API server under their own etcd prefix.
const softhsm = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so'].find((p) => existsSync(p));
(apiserverArgv && etcdArgv && (softhsm || process.env['CI']) ? describe : describe.skip)('the same with the plugin\'s root keys in a PKCS#11 token', () => {
  const d = value();
  const index = () => join(dir, 'kms-token-index.json');
  const pkcs11 = () => join(dir, 'pkcs11.json');

  beforeAll(async () => {
    if (!softhsm) throw new Error('SoftHSM2 is not installed (apt-get install -y softhsm2, or bash e2e/node/install-deps.sh)');
    await apiserver?.stop();
    await plugin?.stop();
    const tokens = join(dir, 'tokens');
    mkdirSync(tokens);
    writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    tokenEnv = { SOFTHSM2_CONF: join(dir, 'softhsm2.conf') };
    const pin = randomBytes(8).toString('hex');
    await run('softhsm2-util', ['--init-token', '--free', '--label', 'k8s-kms', '--pin', pin, '--so-pin', randomBytes(8).toString('hex')], { env: { ...process.env, ...tokenEnv } });
    writeFileSync(pkcs11(), JSON.stringify({ module: softhsm, tokenLabel: 'k8s-kms', pin }), { mode: 0o600 });
    await cli('kms-plugin', 'init', '--keys', index(), '--pkcs11', pkcs11());
    socketName = 'kms-token.sock';
    plugin = new Proc('kms-plugin', lockstep('kms-plugin', '--socket', socket(), '--keys', index(), '--pkcs11', pkcs11()), join(dir, 'kms-plugin-token.log'), repoRoot, tokenEnv);
    await startPlugin();
    prefix = `/lockstep-kms-e2e-token-${randomBytes(4).toString('hex')}`;
    prefixes.push(prefix);
    await newApiserver('kube-apiserver-token');
    await startApiserver();
  }, 300_000);

  it('a Secret is stored under the token\'s key: the DEK source is a data key wrapped in the token, no plaintext; a rotation made in the token reaches a rewrite', async () => {
    await writeSecret('kms-d', d);
    const raw = await stored('kms-d');
    expect(raw.subarray(0, KMS_V2_PREFIX.length + 'lockstep:'.length).toString('latin1')).toBe(`${KMS_V2_PREFIX}lockstep:`);
    expect(raw.includes(Buffer.from(d))).toBe(false);
    expect(raw.includes(Buffer.from(Buffer.from(d).toString('base64')))).toBe(false);
    const kid = await pluginKeyId();
    const envelope = parseStoredEnvelope(raw);
    expect(envelope.keyId).toBe(kid);
    // Wrapped in the token: the compact form of pkcs11-wrapped.ts, naming the token's key.
    expect(parseWrapped(envelope.encryptedDEKSource.toString('utf8')).kid).toBe(kid);
    expect(readFileSync(index(), 'utf8')).not.toMatch(/"k"\s*:/);
    expect(await readValue('kms-d')).toBe(d);

    const out = await cli('kms-plugin', 'rotate', '--keys', index(), '--pkcs11', pkcs11());
    const newKid = await pluginKeyId();
    expect(newKid).not.toBe(kid);
    expect(out).toContain(newKid);
    await eventually('a rewritten Secret under the token\'s new key', async () => {
      await rawStatus(kc, '/healthz/kms-providers');
      await writeSecret('kms-d', `${d}-rewritten`);
      return parseStoredEnvelope(await stored('kms-d')).keyId === newKid ? true : undefined;
    }, 150_000, 2000);
    expect(parseWrapped(parseStoredEnvelope(await stored('kms-d')).encryptedDEKSource.toString('utf8')).kid).toBe(newKid);
    // After a restart (DEK cache empty) what the token's keys wrapped still opens.
    await apiserver!.stop();
    await startApiserver();
    expect(await readValue('kms-d')).toBe(`${d}-rewritten`);
    expect(readFileSync(plugin!.log, 'utf8')).not.toContain(JSON.parse(readFileSync(pkcs11(), 'utf8')).pin);
  }, 300_000);
});
