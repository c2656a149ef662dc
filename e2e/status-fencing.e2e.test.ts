// Status writes are compare-and-swap on the real API server: a replica that lost the Lease while
// a reconcile was in flight (its write already past the leader guard) writes from a stale view of
// the RotationSchedule; the new leader has moved the persisted state machine on since. The stale
// apply must fail with 409 Conflict and leave nothing of itself behind.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { GROUP, ROTATION_SCHEDULE, VERSION, type RotationSchedule, type RotationScheduleStatus } from '../operator/api/v1alpha1/index.js';
import { Applier } from '../operator/kube/apply.js';
import { leaderGuardedKubeConfig } from '../operator/runtime/leader-guard.js';
import { clients } from './harness/cluster.js';
import { applyAsUser, installCrds, readSchedule } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';

const c = clients();
let ns = '';
const NAME = 'fenced';
const ref = () => ({ group: GROUP, version: VERSION, plural: ROTATION_SCHEDULE.plural, kind: ROTATION_SCHEDULE.kind, namespace: ns, name: NAME });

beforeAll(async () => {
  installCrds();
  ns = await createTestNamespace(c, 'e2e-fence');
  await applyAsUser(c, {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule', metadata: { name: NAME, namespace: ns },
    spec: { targets: { names: ['a', 'b'] }, rotate: ['certificates'] },
  } as unknown as KubernetesObject);
}, 60_000);

afterAll(async () => {
  await deleteTestNamespace(c, ns);
});

describe('status writes from a stale view', () => {
  it('the deposed leader gets 409 and nothing of its write lands; the new leader chains its own writes', async () => {
    let oldLeads = true;
    // Both replicas write as the operator does: the same field manager, force, leader-guarded clients.
    const deposed = new Applier(leaderGuardedKubeConfig(c.kc, () => oldLeads));
    const leader = new Applier(leaderGuardedKubeConfig(c.kc, () => true));
    const seen: RotationSchedule = await readSchedule(c, ns, NAME);
    const readVersion = seen.metadata.resourceVersion ?? '';
    expect(readVersion).not.toBe('');

    // The new leader reads the same version and moves the state machine on, twice in one reconcile.
    const started: RotationScheduleStatus = { phase: 'Rotating', rotationId: 'r-new', currentStep: 0, targets: [{ namespace: ns, name: 'a', phase: 'Rotating' }, { namespace: ns, name: 'b', phase: 'Pending' }] };
    const afterFirst = await leader.applyStatus(ref(), started, readVersion);
    expect(afterFirst).toBeDefined();
    expect(afterFirst).not.toBe(readVersion);
    const verifying: RotationScheduleStatus = { ...started, phase: 'Verifying', targets: [{ namespace: ns, name: 'a', phase: 'Verifying' }, { namespace: ns, name: 'b', phase: 'Pending' }] };
    const afterSecond = await leader.applyStatus(ref(), verifying, afterFirst);

    // The old leader's reconcile, still in flight from before it lost the Lease, persists what it
    // computed from the version it read: a finished rotation that never happened.
    const stale: RotationScheduleStatus = { phase: 'Completed', rotationId: 'r-old', lastRotation: '2026-01-01T00:00:00Z', lastError: 'stale', targets: [] };
    const err = await deposed.applyStatus(ref(), stale, readVersion).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 409 });

    const live = await readSchedule(c, ns, NAME);
    expect(live.metadata.resourceVersion).toBe(afterSecond);
    expect(live.status).toMatchObject({ phase: 'Verifying', rotationId: 'r-new', currentStep: 0 });
    expect(live.status?.targets?.map((t) => `${t.name}:${t.phase}`)).toEqual(['a:Verifying', 'b:Pending']);
    expect(live.status?.lastRotation).toBeUndefined();
    expect(live.status?.lastError).toBeUndefined();

    // Once it knows it lost the Lease, the guard stops the write before it is sent.
    oldLeads = false;
    await expect(deposed.applyStatus(ref(), stale, afterSecond)).rejects.toMatchObject({ reason: 'NotLeader' });
    expect((await readSchedule(c, ns, NAME)).metadata.resourceVersion).toBe(afterSecond);
  }, 60_000);
});
