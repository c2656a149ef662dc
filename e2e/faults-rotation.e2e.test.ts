// Faults during rotations, on the local control plane of cluster-up.sh (its processes are what
// gets killed): kube-apiserver SIGKILLed while a leaf rotation is between its canary and the rest
// (one target restarted through restartedAt rather than hot-reloading), and etcd SIGKILLed while a
// CA rotation re-issues its leaves. Each rotation must end Completed, once (one history entry), with
// every workload serving its new certificate, the restart written exactly once (the Deployment's
// generation moves by one), no mTLS handshake between the workloads failing all along, and for the
// CA every leaf chaining to a root in the trust bundle at every look. The time from the dependency
// back to the rotation's end is printed, not asserted. Last, a 409 storm: two other writers
// rewriting the schedule's status while a leaf rotation runs, so the operator's resourceVersion-
// guarded status writes keep colliding; the rotation must still end once, nothing repeated.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import * as k8s from '@kubernetes/client-node';
import type { KeyPolicy, RotationSchedule } from '../operator/api/v1alpha1/index.js';
import { killAndRestart, type Component } from './faults/faults.js';
import { localCertManager } from './harness/cert-manager.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, installCrds } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startInProcess } from './harness/operator.js';
import { RotationRig } from './harness/rotation-rig.js';
import { HandshakeClient, serialOfPem, stallNote } from './harness/tls-workload.js';

const c = clients();
const local = localCertManager() !== undefined;
const describeLocal = local ? describe : describe.skip;
const DOWN_SECONDS = 3;
let ns = '';
let rig: RotationRig;
let operator: ReturnType<typeof startInProcess> | undefined;

beforeAll(async () => {
  if (!local) return;
  installCrds();
  ns = await createTestNamespace(c, 'faults-rotation');
  rig = new RotationRig(c, ns, 'rotation');
  const policy = {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'rotation', namespace: ns },
    spec: { keyWrap: { algorithm: 'A256KW' }, certificates: { allowedIssuers: [{ name: 'rot-ca', kind: 'Issuer' }] } },
  } as KeyPolicy;
  await applyAsUser(c, policy as unknown as KubernetesObject);
  operator = startInProcess(c.kc);
}, 120_000);

afterAll(async () => {
  if (!local) return;
  await rig?.stop();
  await deleteTestNamespace(c, ns);
  await operator?.stop();
}, 120_000);

/**
 * Injects the fault once `underway` says the rotation `trigger` started got there, then waits for
 * that rotation to end. Returns the finished schedule and how long after the dependency was back it ended.
 */
async function faultDuring(schedule: string, trigger: (rs: RotationSchedule) => boolean, component: Component, underway: (rs: RotationSchedule) => string | undefined): Promise<{ rs: RotationSchedule; at: string; afterBackMs: number }> {
  const { id, at } = await eventually(`${schedule} underway`, async () => {
    const rs = await rig.readSchedule(schedule);
    const where = rs.status?.rotationId && trigger(rs) ? underway(rs) : undefined;
    return where ? { id: rs.status?.rotationId, at: where } : undefined;
  }, 120_000, 50);
  const outage = await killAndRestart(component, DOWN_SECONDS).inject();
  const rs = await rig.waitSchedule(schedule, `rotation ${id} ended`, (r) => r.status?.history?.[0]?.rotationId === id, 240_000);
  const afterBackMs = Date.now() - outage.backAt;
  console.log(`${component} SIGKILLed during ${schedule} at ${at}, down ${((outage.backAt - outage.downAt) / 1000).toFixed(1)} s: ${rs.status?.history?.[0]?.outcome} ${(afterBackMs / 1000).toFixed(1)} s after it was back`);
  return { rs, at, afterBackMs };
}

async function handshakesOk(client: HandshakeClient, what: string): Promise<void> {
  const counts = await client.stop();
  const rate = counts.ok / (counts.elapsedMs / 1000);
  console.log(`mTLS handshakes during ${what}: ${counts.ok} succeeded, ${counts.failed} failed, ${rate.toFixed(1)}/s over ${(counts.elapsedMs / 1000).toFixed(1)}s${stallNote(counts)}${counts.errors.length ? `; errors: ${counts.errors.join(' | ')}` : ''}`);
  expect(counts.failed).toBe(0);
  expect(counts.ok).toBeGreaterThan(0);
}

/** A Deployment (never running: no node) that a rotation restarts through restartedAt, and the service's restart setting. */
async function restartedDeployment(name: string): Promise<object> {
  await applyAsUser(c, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } } as KubernetesObject);
  await applyAsUser(c, {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: ns },
    spec: {
      replicas: 1, selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { serviceAccountName: name, containers: [{ name: 'app', image: `registry.example/${name}:1` }] } },
    },
  } as KubernetesObject);
  return { kind: 'Deployment', name, hotReload: false, maxUnavailable: 1 };
}

describeLocal('faults during rotations', () => {
  it('kube-apiserver killed mid leaf rotation: Completed once, every workload on its new certificate, the restart written once, no handshake failed', async () => {
    const restart = await restartedDeployment('delta');
    const names = ['alpha', 'bravo', 'charlie', 'delta'];
    await rig.deploy(names, { delta: { restart } });
    const apps = c.kc.makeApiClient(k8s.AppsV1Api);
    const generationBefore = (await apps.readNamespacedDeployment({ namespace: ns, name: 'delta' })).metadata?.generation ?? 0;
    const before = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await rig.serial(n)] as const)));
    const client = new HandshakeClient(c, ns, 'alpha', () => names.map((n) => rig.workloads.get(n)!), 20);
    await client.start();

    await applyAsUser(c, rig.schedule('leaves', {
      targets: { names },
      strategy: { canarySteps: [25, 100], maxInFlight: 2, pauseBetweenSteps: '3s', verification: { timeout: '60s' } },
    }, { 'lockstep.dev/rotate-now': 'f1' }) as unknown as KubernetesObject);
    let finished: Awaited<ReturnType<typeof faultDuring>>;
    try {
      // Underway: the canary has its new certificate, the rest not yet.
      finished = await faultDuring('leaves', (rs) => rs.status?.lastRotateNow === 'f1', 'kube-apiserver', (rs) => {
        const moved = (rs.status?.targets ?? []).filter((t) => t.newRevision).length;
        return moved > 0 && moved < names.length ? `${moved} of ${names.length} targets re-issued` : undefined;
      });
    } finally {
      await handshakesOk(client, 'a leaf rotation with kube-apiserver killed');
    }
    const { rs } = finished;
    expect(rs.status?.phase).toBe('Completed');
    expect(rs.status?.history).toHaveLength(1);
    expect(rs.status?.history?.[0]).toMatchObject({ outcome: 'Completed', targets: names.length });
    for (const n of names) {
      const target = rs.status?.targets?.find((t) => t.name === n);
      const now = await rig.serial(n);
      expect([n, target?.phase]).toEqual([n, 'Succeeded']);
      expect(now).not.toBe(before[n]);
      expect(target?.newRevision).toBe(now);
      expect(rig.workloads.get(n)?.servedSerial).toBe(now);
    }
    // The restart went out once: one template change, the value the status recorded.
    const live = await apps.readNamespacedDeployment({ namespace: ns, name: 'delta' });
    expect(live.metadata?.generation).toBe(generationBefore + 1);
    expect(live.spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']).toBe(rs.status?.targets?.find((t) => t.name === 'delta')?.restartedAt);
    await rig.retire(names);
  }, 420_000);

  it('etcd killed while a CA rotation re-issues its leaves: Completed once on the new root, no leaf ever outside the bundle, no handshake failed', async () => {
    await rig.testRootIssuer('faults e2e root');
    const names = ['kilo', 'lima', 'mike'];
    await rig.deploy(names, {}, 'rot-ca');
    // Every leaf chains to a root in the bundle, at every look.
    const chains = rig.chainChecker(names);
    const client = new HandshakeClient(c, ns, 'kilo', () => names.map((n) => rig.workloads.get(n)!), 20);
    await client.start();
    let finished: Awaited<ReturnType<typeof faultDuring>>;
    let chained = { checks: 0, violations: 0 };
    try {
      await applyAsUser(c, rig.schedule('ca', {
        targets: { names }, rotate: ['ca', 'certificates'], emergency: true,
        ca: { issuerRef: { name: 'rot-ca', kind: 'Issuer' }, overlap: '1h' },
        strategy: { canarySteps: [34, 100], maxInFlight: 2, pauseBetweenSteps: '1s', autoRollback: false, verification: { timeout: '60s' } },
      }) as unknown as KubernetesObject);
      const order = ['AddRoot', 'VerifyTrust', 'ReissueLeaves', 'VerifyLeaves', 'Overlap', 'DropOldRoot', 'Done'];
      finished = await faultDuring('ca', () => true, 'etcd', (rs) => {
        const stage = rs.status?.ca?.stage ?? '';
        return order.indexOf(stage) >= order.indexOf('ReissueLeaves') ? stage : undefined;
      });
    } finally {
      chained = await chains.stop();
      await handshakesOk(client, 'a CA rotation with etcd killed');
    }
    const { rs } = finished;
    const { checks, violations } = chained;
    console.log(`chain-to-bundle checks ${checks}, violations ${violations}`);
    expect(rs.status?.phase).toBe('Completed');
    expect(rs.status?.history).toHaveLength(1);
    expect(rs.status?.ca?.stage).toBe('Done');
    const serials = (await rig.bundleRoots()).map(serialOfPem);
    expect(rs.status?.ca?.oldRootSerial).toBeTruthy();
    expect(rs.status?.ca?.newRootSerial).not.toBe(rs.status?.ca?.oldRootSerial);
    expect(serials).toContain(rs.status?.ca?.newRootSerial);
    expect(serials).not.toContain(rs.status?.ca?.oldRootSerial);
    for (const n of names) expect(rig.workloads.get(n)?.servedSerial).toBe(await rig.serial(n));
    expect(violations).toBe(0);
    expect(checks).toBeGreaterThan(0);
    await rig.retire(names);
  }, 420_000);

  it('a 409 storm on the schedule\'s status during a leaf rotation: Completed once, the restart written once, the other writers\' condition kept', async () => {
    const restart = await restartedDeployment('oscar');
    const names = ['november', 'oscar', 'papa'];
    await rig.deploy(names, { oscar: { restart } });
    const apps = c.kc.makeApiClient(k8s.AppsV1Api);
    const generationBefore = (await apps.readNamespacedDeployment({ namespace: ns, name: 'oscar' })).metadata?.generation ?? 0;
    const before = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await rig.serial(n)] as const)));
    const errorsBefore = await rotationErrors();

    await applyAsUser(c, rig.schedule('stormed', {
      targets: { names },
      strategy: { canarySteps: [34, 100], maxInFlight: 1, pauseBetweenSteps: '2s', verification: { timeout: '60s' } },
    }, { 'lockstep.dev/rotate-now': 's1' }) as unknown as KubernetesObject);
    const { id } = await eventually('stormed underway', async () => {
      const rs = await rig.readSchedule('stormed');
      return rs.status?.rotationId && rs.status.lastRotateNow === 's1' ? { id: rs.status.rotationId } : undefined;
    }, 120_000, 50);
    const stormed = await statusStorm('stormed', STORM_MS);
    const stopped = Date.now();
    const rs = await rig.waitSchedule('stormed', `rotation ${id} ended`, (r) => r.status?.history?.[0]?.rotationId === id, 240_000);
    const errors = (await rotationErrors()) - errorsBefore;
    console.log(`409 storm on RotationSchedule status for ${STORM_MS / 1000} s: the other writers made ${stormed.writes} writes and got ${stormed.conflicts} conflicts; ` +
      `the operator's rotationschedule reconciles failed ${errors} times meanwhile; ${rs.status?.history?.[0]?.outcome} ${((Date.now() - stopped) / 1000).toFixed(1)} s after the storm`);

    // The storm reached the operator: its guarded status writes collided and were retried.
    expect(errors).toBeGreaterThan(0);
    expect(rs.status?.phase).toBe('Completed');
    expect(rs.status?.history).toHaveLength(1);
    expect(rs.status?.history?.[0]).toMatchObject({ outcome: 'Completed', targets: names.length });
    for (const n of names) {
      const now = await rig.serial(n);
      expect([n, rs.status?.targets?.find((t) => t.name === n)?.phase]).toEqual([n, 'Succeeded']);
      expect(now).not.toBe(before[n]);
      expect(rig.workloads.get(n)?.servedSerial).toBe(now);
    }
    // One restart, the value the status records, although the status was rewritten under it all along.
    const live = await apps.readNamespacedDeployment({ namespace: ns, name: 'oscar' });
    expect(live.metadata?.generation).toBe(generationBefore + 1);
    expect(live.spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']).toBe(rs.status?.targets?.find((t) => t.name === 'oscar')?.restartedAt);
    // What the other writers wrote beside the operator's conditions is still there.
    expect((rs.status?.conditions ?? []).find((x) => x.type === 'StormCheck')?.reason).toBe('Storm');
    await rig.retire(names);
  }, 420_000);
});

const STORM_MS = 15_000;

async function rotationErrors(): Promise<number> {
  const metrics = await operator!.operator!.metrics.registry.getMetricsAsJSON() as { name: string; values: { value: number; labels: Record<string, string | number> }[] }[];
  return metrics.filter((m) => m.name === 'lockstep_reconcile_errors_total').flatMap((m) => m.values)
    .filter((v) => v.labels['controller'] === 'rotationschedule').reduce((total, v) => total + v.value, 0);
}

/** Two writers each reading the schedule and writing its status back with a condition of their own, as fast as they can. */
async function statusStorm(name: string, ms: number): Promise<{ writes: number; conflicts: number }> {
  const ref = { group: 'lockstep.dev', version: 'v1alpha1', plural: 'rotationschedules', namespace: ns, name };
  const loop = async (writer: string) => {
    let writes = 0;
    let conflicts = 0;
    const end = Date.now() + ms;
    for (let round = 0; Date.now() < end; round++) {
      const rs = await c.custom.getNamespacedCustomObject(ref) as RotationSchedule;
      const conditions = (rs.status?.conditions ?? []).filter((x) => x.type !== 'StormCheck');
      conditions.push({ type: 'StormCheck', status: 'True', reason: 'Storm', message: `${writer} round ${round}`, lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') } as (typeof conditions)[number]);
      try {
        await c.custom.replaceNamespacedCustomObjectStatus({ ...ref, body: { ...rs, status: { ...rs.status, conditions } } });
        writes++;
      } catch (err) {
        if ((err as { code?: number }).code !== 409) throw err;
        conflicts++;
      }
    }
    return { writes, conflicts };
  };
  const loops = await Promise.all([loop('x'), loop('y')]);
  return { writes: loops[0]!.writes + loops[1]!.writes, conflicts: loops[0]!.conflicts + loops[1]!.conflicts };
}
