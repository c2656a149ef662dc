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
  let last: RotationSchedule | undefined;
  try {
    return await eventually(`RotationSchedule ${name}: ${what}`, async () => {
      last = await readSchedule(name);
      return check(last) ? last : undefined;
    }, timeoutMs, 250);
  } catch (err) {
    console.log(`RotationSchedule ${name} status when giving up: ${JSON.stringify(last?.status, null, 1)}`);
    throw err;
  }
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
    const client = new HandshakeClient(c, ns, 'alpha', () => names.map((n) => workloads.get(n)!), 40);
    await client.start();
    await sleep(2_000);

    await applyAsUser(c, schedule('leaves', {
      targets: { names },
      strategy: { canarySteps: [34, 100], maxInFlight: 2, pauseBetweenSteps: '2s', verification: { timeout: '60s' } },
    }, { 'lockstep.dev/rotate-now': 'first' }) as unknown as KubernetesObject);

    let rs: RotationSchedule;
    try {
      rs = await waitSchedule('leaves', 'Completed', (r) => r.status?.phase === 'Completed' && r.status.lastRotateNow === 'first', 150_000);
      await sleep(2_000);
    } finally {
      await client.stop();
    }
    const counts = client.counts;
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

describe('when rotations start', () => {
  const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

  it('a due scheduled rotation waits for its maintenance window, and runs inside one', async () => {
    await deploy(['echo', 'foxtrot']);
    const echoBefore = await serial('echo');
    const laterStart = Date.now() + 2 * 3_600_000;
    // Every minute, but only in a window two hours from now...
    await applyAsUser(c, schedule('window-later', {
      targets: { names: ['echo'] },
      schedule: { cron: '* * * * *', maintenanceWindows: [{ start: hhmm(laterStart), duration: '15m' }] },
      strategy: { canarySteps: [100], verification: { timeout: '30s' } },
    }) as unknown as KubernetesObject);
    // ...and every minute in a window that opened a minute ago.
    await applyAsUser(c, schedule('window-now', {
      targets: { names: ['foxtrot'] },
      schedule: { cron: '* * * * *', maintenanceWindows: [{ start: hhmm(Date.now() - 60_000), duration: '1h' }] },
      strategy: { canarySteps: [100], verification: { timeout: '30s' } },
    }) as unknown as KubernetesObject);

    const inside = await waitSchedule('window-now', 'a scheduled rotation completed', (r) => r.status?.history?.[0]?.outcome === 'Completed', 120_000);
    expect(inside.status?.history?.[0]?.trigger).toBe('Schedule');

    // By now the every-minute schedule of window-later has been due for a while.
    const created = Date.parse(String((await readSchedule('window-later')).metadata.creationTimestamp));
    await sleep(Math.max(0, created + 65_000 - Date.now()));
    const waiting = await readSchedule('window-later');
    expect(waiting.status?.history ?? []).toEqual([]);
    expect(waiting.status?.phase).toBe('Idle');
    expect(hhmm(Date.parse(waiting.status?.nextRotation ?? ''))).toBe(hhmm(laterStart));
    expect(waiting.status?.conditions?.find((x) => x.type === 'Rotating')).toMatchObject({ status: 'False', reason: 'RotationScheduled' });
    expect(await serial('echo')).toBe(echoBefore);
    await c.custom.deleteNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', namespace: ns, plural: 'rotationschedules', name: 'window-now' });
  }, 240_000);

  it('pause holds a requested rotation, stops a running one between steps, and resume continues it', async () => {
    await deploy(['golf', 'hotel']);
    const hotelBefore = await serial('hotel');
    await applyAsUser(c, schedule('pausable', {
      targets: { names: ['golf', 'hotel'] },
      strategy: { canarySteps: [50, 100], pauseBetweenSteps: '10s', verification: { timeout: '30s' } },
    }, { 'lockstep.dev/paused': 'true', 'lockstep.dev/rotate-now': 'p1' }) as unknown as KubernetesObject);

    await waitSchedule('pausable', 'Paused', (r) => r.status?.phase === 'Paused');
    await sleep(3_000);
    const held = await readSchedule('pausable');
    expect(held.status?.phase).toBe('Paused');
    expect(held.status?.lastRotateNow).toBeUndefined();
    expect(held.status?.conditions?.find((x) => x.type === 'Rotating')).toMatchObject({ status: 'False', reason: 'RotationPaused' });

    await annotate('pausable', { 'lockstep.dev/paused': null });
    await waitSchedule('pausable', 'canary step verified', (r) => r.status?.lastRotateNow === 'p1' && r.status.currentStep === 1);
    await annotate('pausable', { 'lockstep.dev/paused': 'true' });
    const paused = await waitSchedule('pausable', 'paused between steps', (r) => r.status?.phase === 'Paused');
    expect(paused.status?.targets?.map((t) => [t.name, t.phase])).toEqual([['golf', 'Succeeded'], ['hotel', 'Pending']]);
    // Well past the 10s pause between steps: still held, hotel untouched.
    await sleep(12_000);
    expect((await readSchedule('pausable')).status?.phase).toBe('Paused');
    expect(await serial('hotel')).toBe(hotelBefore);

    await annotate('pausable', { 'lockstep.dev/paused': null });
    const done = await waitSchedule('pausable', 'Completed', (r) => r.status?.phase === 'Completed');
    expect(done.status?.targets?.map((t) => [t.name, t.phase])).toEqual([['golf', 'Succeeded'], ['hotel', 'Succeeded']]);
    expect(await serial('hotel')).not.toBe(hotelBefore);
  }, 180_000);

  it('emergency rotates at once, ignoring the pause annotation, windows and the pause between steps, once', async () => {
    await deploy(['india', 'juliet']);
    const before = { india: await serial('india'), juliet: await serial('juliet') };
    await applyAsUser(c, schedule('compromise', {
      targets: { names: ['india', 'juliet'] },
      emergency: true,
      schedule: { interval: '24h', maintenanceWindows: [{ start: hhmm(Date.now() + 2 * 3_600_000), duration: '15m' }] },
      strategy: { canarySteps: [50, 100], pauseBetweenSteps: '1h', autoRollback: false, verification: { timeout: '30s' } },
    }, { 'lockstep.dev/paused': 'true' }) as unknown as KubernetesObject);

    const rs = await waitSchedule('compromise', 'emergency rotation completed', (r) => r.status?.history?.[0]?.outcome === 'Completed', 90_000);
    expect(rs.status?.history?.[0]?.trigger).toBe('Emergency');
    expect(rs.status?.emergencyGeneration).toBe(rs.metadata.generation);
    expect(await serial('india')).not.toBe(before.india);
    expect(await serial('juliet')).not.toBe(before.juliet);
    await sleep(3_000);
    expect((await readSchedule('compromise')).status?.history).toHaveLength(1);
  }, 120_000);
});
