// GitOps tools judge Lockstep's objects by their status: Argo CD through the health script in
// examples/gitops/argocd-health.yaml, Flux and kpt through kstatus (the Reconciling and Stalled
// conditions, Ready, observedGeneration). Both are checked here against objects the operator wrote
// on the real API server, with the tools' own libraries (e2e/gitops/health: Argo CD's Lua
// interpreter, gopher-lua, and the kstatus package Flux's kustomize-controller uses).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parse } from 'yaml';
import type { Condition, EncryptedService } from '../operator/api/v1alpha1/index.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, condition, installCrds, readSchedule, readService, waitForCondition } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';

const c = clients();
let ns = '';
let operator: RunningOperator;
let work = '';
let judge = '';
const scripts: Record<string, string> = {};

type Status = { status?: { conditions?: Condition[] } };
interface Health { status: string; message: string; error?: string }

function verdict(args: string[], obj: unknown): Health {
  const o = obj as KubernetesObject;
  const run = spawnSync(judge, args, { input: `${JSON.stringify(obj)}\n`, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`health ${args[0]}: ${run.stderr}`);
  const result = JSON.parse(run.stdout) as Health;
  if (result.error) throw new Error(`health ${args[0]} failed on ${o.kind}/${o.metadata?.name}: ${result.error}`);
  return result;
}

/** Argo CD's verdict on `obj`, from the script argocd-cm holds for its kind. */
function health(obj: unknown): Health {
  const kind = (obj as KubernetesObject).kind ?? '';
  const script = join(work, `${kind}.lua`);
  writeFileSync(script, scripts[kind] ?? '');
  return verdict(['argocd', script], obj);
}

/** What Flux's kustomize-controller concludes when it waits for `obj` (Current, InProgress, Failed). */
const flux = (obj: unknown): string => verdict(['kstatus'], obj).status;

const kstatus = (obj: Status) => (obj.status?.conditions ?? []).filter((k) => k.type === 'Reconciling' || k.type === 'Stalled')
  .map((k) => `${k.type}=${k.status} ${k.reason}`);

const service = (name: string, spec: Partial<EncryptedService['spec']> = {}) => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace: ns },
  spec: { workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name }, ports: [{ name: 'https', port: 443 }], keyPolicyRef: { name: 'gitops' }, ...spec },
}) as unknown as KubernetesObject;

beforeAll(async () => {
  installCrds();
  work = mkdtempSync(join(tmpdir(), 'lockstep-gitops-'));
  judge = join(work, 'health');
  const build = spawnSync('go', ['build', '-o', judge, '.'], {
    cwd: 'e2e/gitops/health', encoding: 'utf8', env: { ...process.env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' },
  });
  if (build.status !== 0) throw new Error(`go build e2e/gitops/health: ${build.stderr}`);
  const argocdCm = parse(readFileSync('examples/gitops/argocd-health.yaml', 'utf8')) as { data: Record<string, string> };
  for (const kind of ['KeyPolicy', 'EncryptedService', 'RotationSchedule']) {
    const script = argocdCm.data[`resource.customizations.health.lockstep.dev_${kind}`];
    if (!script) throw new Error(`examples/gitops/argocd-health.yaml has no health check for ${kind}`);
    scripts[kind] = script;
  }
  ns = await createTestNamespace(c, 'e2e-gitops');
  operator = startInProcess(c.kc);
  await applyAsUser(c, { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'gitops', namespace: ns }, spec: { keyWrap: { algorithm: 'A256KW' } } } as KubernetesObject);
}, 240_000);

afterAll(async () => {
  await operator?.stop();
  await deleteTestNamespace(c, ns);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('an object that converged', () => {
  it('is Healthy in Argo CD and carries neither Reconciling nor Stalled', async () => {
    const policy = await eventually('KeyPolicy Ready', async () => {
      const p = await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', namespace: ns, plural: 'keypolicies', name: 'gitops' }) as KubernetesObject & Status;
      return condition(p, 'Ready')?.status === 'True' ? p : undefined;
    }, 90_000);
    expect(health(policy).status).toBe('Healthy');
    expect(kstatus(policy)).toEqual([]);
    expect(flux(policy)).toBe('Current');

    await applyAsUser(c, service('web'));
    const web = await waitForCondition(c, ns, 'web', 'Ready', 'True');
    expect(health(web)).toEqual({ status: 'Healthy', message: condition(web, 'Ready')?.message });
    expect(kstatus(web)).toEqual([]);
    expect(flux(web)).toBe('Current');
  }, 180_000);

  it('is Progressing while the operator has not observed its newest generation', async () => {
    const web = await readService(c, ns, 'web');
    const edited = { ...web, metadata: { ...web.metadata, generation: (web.metadata.generation ?? 1) + 1 } };
    const argo = health(edited);
    expect(argo.status).toBe('Progressing');
    expect(argo.message).toContain(`generation ${(web.metadata.generation ?? 1) + 1}`);
    expect(flux(edited)).toBe('InProgress');
    // Before the operator's first status write: Argo CD waits. kstatus calls an object without
    // status Current (it cannot tell a kind that never writes status), so Flux may not wait for it.
    const fresh = { ...web, status: undefined };
    expect(health(fresh).status).toBe('Progressing');
    expect(flux(fresh)).toBe('Current');
  });
});

describe('an object that waits for something that comes by itself', () => {
  it('is Reconciling, and Progressing in Argo CD, with the reason it waits', async () => {
    await applyAsUser(c, service('lonely', { access: { ingress: [{ service: { name: 'ghost' } }] } }));
    const lonely = await eventually('lonely Reconciling', async () => {
      const es = await readService(c, ns, 'lonely');
      return kstatus(es).length > 0 && condition(es, 'AccessReady')?.reason === 'PeerNotFound' ? es : undefined;
    }, 90_000);
    expect(kstatus(lonely)).toEqual([`Reconciling=True ${condition(lonely, 'Ready')?.reason}`]);
    const argo = health(lonely);
    expect(argo.status).toBe('Progressing');
    expect(argo.message).toContain('ghost');
    expect(flux(lonely)).toBe('InProgress');
  }, 120_000);
});

describe('an object only its user can fix', () => {
  it('is Stalled, and Degraded in Argo CD with the message that says what to fix', async () => {
    await applyAsUser(c, service('wildcard', { transit: { extraDNSNames: ['*.tenant.example'] } }));
    const wildcard = await eventually('wildcard Stalled', async () => {
      const es = await readService(c, ns, 'wildcard');
      return condition(es, 'Stalled')?.status === 'True' ? es : undefined;
    }, 90_000);
    expect(kstatus(wildcard)).toEqual(['Stalled=True DNSNameNotAllowed']);
    expect(flux(wildcard)).toBe('Failed');
    const argo = health(wildcard);
    expect(argo.status).toBe('Degraded');
    expect(argo.message).toContain(`KeyPolicy ${ns}/gitops does not permit extraDNSNames *.tenant.example`);
  }, 120_000);
});

describe('a RotationSchedule', () => {
  const schedule = (annotations: Record<string, string> = {}) => ({
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule', metadata: { name: 'nightly', namespace: ns, annotations },
    spec: { targets: { names: ['web'] }, rotate: ['certificates'], schedule: { cron: '0 3 * * *' }, strategy: { canarySteps: [100], verification: { timeout: '20s' } } },
  }) as unknown as KubernetesObject;

  it('is Healthy when valid and idle, Progressing while it rotates, and Degraded once the rotation rolled back', async () => {
    await applyAsUser(c, schedule());
    const idle = await eventually('nightly Ready', async () => {
      const rs = await readSchedule(c, ns, 'nightly');
      return condition(rs, 'Ready')?.status === 'True' && rs.status?.observedGeneration === rs.metadata.generation ? rs : undefined;
    }, 60_000);
    expect(health(idle).status).toBe('Healthy');
    expect(kstatus(idle)).toEqual([]);
    expect(flux(idle)).toBe('Current');

    // web has no endpoints: the new certificate can never be seen served, so the rotation rolls back.
    await c.custom.patchNamespacedCustomObject(
      { group: 'lockstep.dev', version: 'v1alpha1', namespace: ns, plural: 'rotationschedules', name: 'nightly', body: { metadata: { annotations: { 'lockstep.dev/rotate-now': 'gitops' } } } },
      k8s.setHeaderOptions('Content-Type', 'application/merge-patch+json'),
    );
    const seen: string[] = [];
    const rolledBack = await eventually('nightly rolled back', async () => {
      const rs = await readSchedule(c, ns, 'nightly');
      if (rs.status?.lastRotateNow !== 'gitops') return undefined;
      const both = `${health(rs).status}/${flux(rs)}`;
      if (seen.at(-1) !== both) seen.push(both);
      return rs.status?.phase === 'RolledBack' ? rs : undefined;
    }, 120_000, 100);
    // Argo CD / Flux, in the order seen: rotating, then rolled back.
    expect(seen).toContain('Progressing/InProgress');
    expect(seen.at(-1)).toBe('Degraded/Failed');
    expect(kstatus(rolledBack)).toEqual(['Stalled=True RolledBack']);
    expect(health(rolledBack).message).toContain(`${ns}/web`);
  }, 180_000);
});
