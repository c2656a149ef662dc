// Two replicas of the operator process: only the Lease holder reconciles; killing it (SIGKILL,
// no release) hands over within 20 seconds; SIGTERM releases the Lease.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, deleteNamespaceAndFinalize, installCrds, waitForCondition } from './harness/lockstep.js';
import { createTestNamespace } from './harness/namespace.js';
import { externalOperator, startChild, startInProcess, type ChildOperator } from './harness/operator.js';

const c = clients();
const coordination = c.kc.makeApiClient(k8s.CoordinationV1Api);
const LEASE = 'lockstep-e2e';
let ns = '';
const replicas: ChildOperator[] = [];

const holder = async (): Promise<string | undefined> => {
  const lease = await coordination.readNamespacedLease({ name: LEASE, namespace: ns }).catch(() => undefined);
  return lease?.spec?.holderIdentity || undefined;
};

const service = (name: string): KubernetesObject => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace: ns },
  spec: { workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name }, ports: [{ name: 'https', port: 8443 }], keyPolicyRef: { name: 'default' } },
} as KubernetesObject);

const replica = (identity: string): ChildOperator => {
  const r = startChild({ LOCKSTEP_LEADER_ELECT: 'true', LOCKSTEP_NAMESPACE: ns, LOCKSTEP_LEASE_NAME: LEASE, POD_NAME: identity });
  replicas.push(r);
  return r;
};

beforeAll(async () => {
  installCrds();
  ns = await createTestNamespace(c, 'e2e-leader');
  await applyAsUser(c, { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'default', namespace: ns }, spec: {} } as KubernetesObject);
});

afterAll(async () => {
  // Let an operator finalize what the test created before the namespace goes.
  const cleaner = startInProcess(c.kc);
  await deleteNamespaceAndFinalize(c, ns);
  await cleaner.stop();
  await Promise.all(replicas.map((r) => r.kill()));
});

(externalOperator ? describe.skip : describe)('leader election across two replicas', () => {
  it('only the leader reconciles; a killed leader is replaced within 20 s; SIGTERM releases the Lease', async () => {
    const a = replica('replica-a');
    await eventually('replica-a holds the Lease', async () => ((await holder()) === 'replica-a' ? true : undefined), 60_000);
    const b = replica('replica-b');
    await eventually('replica-b running as a follower', async () => (b.logs().includes('"msg":"starting"') ? true : undefined), 60_000);

    await applyAsUser(c, service('one'));
    await waitForCondition(c, ns, 'one', 'Ready', 'True');
    expect(a.logs()).toContain('controllers started');
    expect(b.logs()).not.toContain('controllers started');
    expect(b.logs()).not.toContain('NotLeader');
    expect(await holder()).toBe('replica-a');

    // A crash: no release, the follower must wait out the lease (15 s) and take over.
    const killedAt = Date.now();
    await a.kill();
    await eventually('replica-b takes the Lease', async () => ((await holder()) === 'replica-b' ? true : undefined), 30_000, 200);
    const handover = Date.now() - killedAt;
    console.log(`leader handover after SIGKILL: ${handover} ms`);
    expect(handover).toBeLessThan(20_000);

    await applyAsUser(c, service('two'));
    await waitForCondition(c, ns, 'two', 'Ready', 'True');
    expect(b.logs()).toContain('controllers started');

    // Graceful shutdown hands the Lease back at once.
    await b.stop();
    expect(b.process.exitCode).toBe(0);
    expect(await holder()).toBeUndefined();
  }, 180_000);
});
