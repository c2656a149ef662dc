// The operator as users run it: installed from manifests/ (two replicas, leader election, its
// ServiceAccount and least-privilege RBAC, Pod Security "restricted", read-only root filesystem,
// probes), from an image built locally without Docker, on the real node. Only a pod shows what
// a cluster that enforces NetworkPolicies does to the operator's own verification handshakes
// (a process on the host runs as root, which the enforcer lets through).
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import * as k8s from '@kubernetes/client-node';
import type { RotationSchedule } from '../operator/api/v1alpha1/index.js';
import { clients, eventually } from './harness/cluster.js';
import { loadImage } from './harness/images.js';
import { applyAsUser, deleteNamespaceAndFinalize, waitForCondition, waitForSchedule } from './harness/lockstep.js';
import { repoRoot } from './harness/manifests.js';
import { createTestNamespace } from './harness/namespace.js';
import { OPERATOR_NS, removeOperatorDeployment } from './harness/operator-pods.js';
import { nodeReady, nodeTest, readyPods, serviceAccount, TLS_PORT, tlsServer } from './harness/pods.js';

const c = clients();
const apps = c.kc.makeApiClient(k8s.AppsV1Api);
const coordination = c.kc.makeApiClient(k8s.CoordinationV1Api);
const LEASE = 'lockstep-operator';
let ns = '';
let haveNode = false;

const kubectl = (...args: string[]) => execFileSync('kubectl', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const apply = (o: unknown) => applyAsUser(c, o as KubernetesObject);
const holder = async () => (await coordination.readNamespacedLease({ namespace: OPERATOR_NS, name: LEASE }).catch(() => undefined))?.spec?.holderIdentity ?? undefined;

beforeAll(async () => {
  haveNode = await nodeReady(c);
  if (!haveNode) return;
  loadImage('operator');
  kubectl('apply', '--server-side', '--force-conflicts', '--field-manager=lockstep-e2e', '-k', 'e2e/node/operator-overlay');
  kubectl('wait', '--for', 'condition=Established', '--timeout', '60s', '-f', 'crds/');
  ns = await createTestNamespace(c, 'e2e-operator-pod');
}, 600_000);

afterAll(async () => {
  if (!haveNode) return;
  // The in-cluster operator finalizes the test's services before it is removed.
  await deleteNamespaceAndFinalize(c, ns);
  await removeOperatorDeployment(c);
}, 180_000);

const itNode = nodeTest(() => haveNode);

describe('the operator installed from manifests/ on the node', () => {
  itNode('two hardened replicas become ready and one holds the Lease', async () => {
    const pods = await readyPods(c, OPERATOR_NS, { 'app.kubernetes.io/name': 'lockstep-operator' }, 2, 180_000);
    for (const pod of pods) {
      const container = pod.spec?.containers[0];
      expect(container?.securityContext?.readOnlyRootFilesystem).toBe(true);
      expect(pod.spec?.securityContext?.runAsNonRoot ?? container?.securityContext?.runAsNonRoot).toBe(true);
      expect(pod.spec?.serviceAccountName).toBe('lockstep-operator');
    }
    const leader = await eventually('a Lease holder', holder, 60_000);
    expect(pods.map((p) => p.metadata?.name)).toContain(leader);
  }, 240_000);

  itNode('reconciles a service, and its verification handshakes reach the pods through the NetworkPolicies it generated', async () => {
    await apply({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'pod', namespace: ns }, spec: { keyWrap: { algorithm: 'A256KW' } } });
    await apply(serviceAccount(ns, 'api'));
    await apply({
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name: 'api', namespace: ns },
      spec: { workload: { selector: { matchLabels: { app: 'api' } }, serviceAccountName: 'api' }, ports: [{ name: 'https', port: TLS_PORT }], keyPolicyRef: { name: 'pod' } },
    });
    await waitForCondition(c, ns, 'api', 'Ready', 'True', undefined, 120_000);
    for (const o of tlsServer({ namespace: ns, name: 'api', labels: { app: 'api' }, serviceAccountName: 'api', secretName: 'api-tls', replicas: 2 })) await apply(o);
    await readyPods(c, ns, { app: 'api' }, 2);

    await apply({
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule',
      metadata: { name: 'api', namespace: ns, annotations: { 'lockstep.dev/rotate-now': 'e2e' } },
      spec: { targets: { names: ['api'] }, rotate: ['certificates'], strategy: { canarySteps: [100], verification: { timeout: '90s' } } },
    });
    const rs: RotationSchedule = await waitForSchedule(c, ns, 'api', 'a final phase',
      (r) => ['Completed', 'RolledBack', 'Failed'].includes(r.status?.phase ?? ''), 240_000);
    // Completed only if the operator pod's handshakes reached both pods and saw the new certificate.
    expect(rs.status?.phase).toBe('Completed');
  }, 480_000);

  itNode('deleting the leader pod hands the Lease to the other replica', async () => {
    const leader = await eventually('a Lease holder', holder, 60_000);
    await c.core.deleteNamespacedPod({ namespace: OPERATOR_NS, name: leader, gracePeriodSeconds: 0 });
    const started = Date.now();
    const next = await eventually('a new Lease holder', async () => {
      const h = await holder();
      return h && h !== leader ? h : undefined;
    }, 90_000, 500);
    console.log(`leader pod deleted (grace 0): ${next} took the Lease after ${((Date.now() - started) / 1000).toFixed(1)}s`);
    const deployment = await apps.readNamespacedDeployment({ namespace: OPERATOR_NS, name: 'lockstep-operator' });
    expect(deployment.spec?.replicas).toBe(2);
  }, 180_000);
});
