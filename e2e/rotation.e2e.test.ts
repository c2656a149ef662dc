// RotationSchedule end to end on the real API server, etcd and cert-manager. Workloads are mTLS
// servers in this process, on this host's address, that load their certificate from the TLS Secret and
// hot-reload it; Services without selectors and hand-made EndpointSlices point at them, so the
// operator's verification connects to them exactly as it would to pods.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EncryptedService, KeyPolicy, RotationSchedule, RotationScheduleSpec } from '../operator/api/v1alpha1/index.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, installCrds } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';
import { HandshakeClient, TlsWorkload, readMaterial, serialOfPem, workloadAddress } from './harness/tls-workload.js';

const c = clients();
let ns = '';
let operator: RunningOperator;
const workloads = new Map<string, TlsWorkload>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function service(name: string): EncryptedService {
  return {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService',
    metadata: { name, namespace: ns, labels: { suite: 'rotation' } },
    spec: { workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name }, ports: [{ name: 'https', port: 443 }], keyPolicyRef: { name: 'rotation' } },
  } as EncryptedService;
}

function schedule(name: string, spec: Partial<RotationScheduleSpec>, annotations: Record<string, string> = {}): RotationSchedule {
  return {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule',
    metadata: { name, namespace: ns, annotations },
    spec: { targets: { selector: {} }, rotate: ['certificates'], ...spec },
  } as RotationSchedule;
}

async function readSchedule(name: string): Promise<RotationSchedule> {
  return (await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', namespace: ns, plural: 'rotationschedules', name })) as RotationSchedule;
}

async function waitSchedule(name: string, what: string, check: (rs: RotationSchedule) => boolean, timeoutMs = 90_000): Promise<RotationSchedule> {
  return eventually(`RotationSchedule ${name}: ${what}`, async () => {
    const rs = await readSchedule(name);
    return check(rs) ? rs : undefined;
  }, timeoutMs, 250);
}

async function annotate(name: string, annotations: Record<string, string | null>): Promise<void> {
  await c.custom.patchNamespacedCustomObject(
    { group: 'lockstep.dev', version: 'v1alpha1', namespace: ns, plural: 'rotationschedules', name, body: { metadata: { annotations } } },
    (await import('@kubernetes/client-node')).setHeaderOptions('Content-Type', 'application/merge-patch+json'),
  );
}

async function serial(name: string): Promise<string> {
  const m = await readMaterial(c, ns, name);
  if (!m) throw new Error(`${name} has no certificate`);
  return serialOfPem(m.cert);
}

/** EncryptedServices issued, then one local workload each with its Service and EndpointSlice. */
async function deploy(names: string[], options: Record<string, { hotReload?: boolean }> = {}): Promise<void> {
  for (const name of names) await applyAsUser(c, service(name) as unknown as KubernetesObject);
  for (const name of names) {
    await eventually(`${name} issued and in the trust bundle`, async () => ((await readMaterial(c, ns, name).catch(() => undefined)) ? true : undefined), 90_000);
    const workload = new TlsWorkload(c, ns, name, workloadAddress(), options[name] ?? {});
    await workload.start();
    workloads.set(name, workload);
    for (const obj of workload.objects()) await applyAsUser(c, obj);
  }
}

beforeAll(async () => {
  installCrds();
  ns = await createTestNamespace(c, 'e2e-rotation');
  const policy: KeyPolicy = { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'rotation', namespace: ns }, spec: { keyWrap: { algorithm: 'A256KW' } } } as KeyPolicy;
  await applyAsUser(c, policy as unknown as KubernetesObject);
  operator = startInProcess(c.kc);
}, 120_000);

afterAll(async () => {
  for (const w of workloads.values()) await w.stop();
  await deleteTestNamespace(c, ns);
  await operator?.stop();
});

describe('leaf certificate rotation', () => {
  it('rotates several services canary first while a client handshakes with mTLS: zero failed handshakes', async () => {
    const names = ['alpha', 'bravo', 'charlie'];
    await deploy(names);
    const before = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await serial(n)] as const)));
    const client = new HandshakeClient(c, ns, 'alpha', () => names.map((n) => workloads.get(n)!), 25);
    await client.start();
    await sleep(2_000);

    await applyAsUser(c, schedule('leaves', {
      targets: { names },
      strategy: { canarySteps: [34, 100], maxInFlight: 2, pauseBetweenSteps: '2s', verification: { timeout: '60s' } },
    }, { 'lockstep.dev/rotate-now': 'first' }) as unknown as KubernetesObject);

    const rs = await waitSchedule('leaves', 'Completed', (r) => r.status?.phase === 'Completed' && r.status.lastRotateNow === 'first', 150_000);
    await sleep(2_000);
    const counts = await client.stop();
    const rate = counts.ok / (counts.elapsedMs / 1000);
    console.log(`mTLS handshakes during leaf rotation: ${counts.ok} succeeded, ${counts.failed} failed, ${rate.toFixed(1)}/s over ${(counts.elapsedMs / 1000).toFixed(1)}s${counts.errors.length ? `; errors: ${counts.errors.join(' | ')}` : ''}`);
    expect(counts.failed).toBe(0);
    expect(rate).toBeGreaterThanOrEqual(20);

    // Canary first: 34% of 3 rounds up to 2 targets in step 1 (alpha, bravo), then charlie.
    expect(rs.status?.targets?.map((t) => [t.name, t.step, t.phase])).toEqual([['alpha', 0, 'Succeeded'], ['bravo', 0, 'Succeeded'], ['charlie', 1, 'Succeeded']]);
    for (const n of names) {
      const target = rs.status?.targets?.find((t) => t.name === n);
      const now = await serial(n);
      expect(now).not.toBe(before[n]);
      expect(target?.previousRevision).toBe(before[n]);
      expect(target?.newRevision).toBe(now);
      expect(workloads.get(n)?.servedSerial).toBe(now);
    }
    expect(rs.status?.history?.[0]).toMatchObject({ outcome: 'Completed', trigger: 'Manual', targets: 3, rotated: ['certificates'] });
    expect(rs.status?.conditions?.find((x) => x.type === 'Ready')).toMatchObject({ status: 'True', reason: 'RotationCompleted' });
    expect(rs.status?.conditions?.find((x) => x.type === 'Rotating')).toMatchObject({ status: 'False' });

    // The same rotate-now value never triggers again.
    await annotate('leaves', { 'lockstep.dev/rotate-now': 'first' });
    await sleep(3_000);
    const again = await readSchedule('leaves');
    expect(again.status?.history).toHaveLength(1);
    expect(await serial('alpha')).toBe(rs.status?.targets?.[0]?.newRevision);
  }, 240_000);

  it('rolls back when the canary never reloads: RolledBack with the reason, previous certificate restored, later targets untouched', async () => {
    const names = ['romeo', 'sierra', 'tango'];
    await deploy(names, { romeo: { hotReload: false } });
    const before = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await serial(n)] as const)));

    await applyAsUser(c, schedule('broken-canary', {
      targets: { names },
      strategy: { canarySteps: [10, 100], maxInFlight: 1, pauseBetweenSteps: '1s', verification: { timeout: '10s' } },
    }, { 'lockstep.dev/rotate-now': 'go' }) as unknown as KubernetesObject);

    const rs = await waitSchedule('broken-canary', 'RolledBack', (r) => r.status?.phase === 'RolledBack', 120_000);
    console.log(`rollback: ${JSON.stringify(rs.status?.failure)}`);
    expect(rs.status?.failure).toMatchObject({ reason: 'VerificationFailed', target: `${ns}/romeo` });
    expect(rs.status?.failure?.message).toMatch(new RegExp(`serves certificate ${before.romeo}, want the new`));
    const romeo = rs.status?.targets?.find((t) => t.name === 'romeo');
    expect(romeo).toMatchObject({ phase: 'RolledBack', previousRevision: before.romeo });
    expect(romeo?.message).toContain(`restored previous certificate ${before.romeo}`);
    expect(romeo?.newRevision).not.toBe(before.romeo);
    expect(rs.status?.conditions?.find((x) => x.type === 'Ready')).toMatchObject({ status: 'False', reason: 'RolledBack' });
    expect(rs.status?.conditions?.find((x) => x.type === 'Degraded')).toMatchObject({ status: 'True', reason: 'RolledBack' });
    expect(rs.status?.history?.[0]).toMatchObject({ outcome: 'RolledBack' });

    // The previous certificate is back and stays: cert-manager does not re-issue over it.
    expect(await serial('romeo')).toBe(before.romeo);
    await sleep(5_000);
    expect(await serial('romeo')).toBe(before.romeo);
    expect(workloads.get('romeo')?.servedSerial).toBe(before.romeo);

    // Targets of later steps were never touched.
    for (const n of ['sierra', 'tango']) {
      expect(rs.status?.targets?.find((t) => t.name === n)).toMatchObject({ phase: 'Pending' });
      expect(rs.status?.targets?.find((t) => t.name === n)?.previousRevision).toBeUndefined();
      expect(await serial(n)).toBe(before[n]);
    }
  }, 180_000);
});
