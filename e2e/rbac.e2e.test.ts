// The install RBAC is enough and no more than that: the operator runs with a token of the
// ServiceAccount that manifests/ creates (not the admin certificate the other tests use), with
// leader election in lockstep-system, and takes a KeyPolicy with a managed CA and services with
// volumes, peers and generated keys through creation and deletion without a single Forbidden.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, deleteNamespaceAndFinalize, exists, installCrds, waitForCondition } from './harness/lockstep.js';
import { repoRoot } from './harness/manifests.js';
import { createTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';

const c = clients();
const OPERATOR_NAMESPACE = 'lockstep-system';
let ns = '';
let operator: RunningOperator | undefined;

const kubectl = (...args: string[]): string =>
  execFileSync('kubectl', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** A KubeConfig for the same cluster that authenticates as the operator's ServiceAccount. */
function serviceAccountConfig(token: string): k8s.KubeConfig {
  const cluster = c.kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster');
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'lockstep-operator', token }],
    contexts: [{ name: 'sa', cluster: cluster.name, user: 'lockstep-operator' }],
    currentContext: 'sa',
  });
  return kc;
}

const service = (name: string, spec: Record<string, unknown>): KubernetesObject => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace: ns },
  spec: {
    workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name },
    ports: [{ name: 'https', port: 8443 }],
    keyPolicyRef: { name: 'policy' },
    ...spec,
  },
} as KubernetesObject);

beforeAll(async () => {
  installCrds();
  // The real install objects: namespace, ServiceAccount, ClusterRole(Binding), leader-election Role.
  kubectl('apply', '--server-side', '--force-conflicts', '--field-manager=lockstep-e2e', '-f', 'manifests/namespace.yaml', '-f', 'manifests/rbac.yaml');
  const token = kubectl('create', 'token', 'lockstep-operator', '-n', OPERATOR_NAMESPACE, '--duration=1h').trim();
  ns = await createTestNamespace(c, 'e2e-rbac');
  operator = startInProcess(serviceAccountConfig(token), {
    leaderElection: { namespace: OPERATOR_NAMESPACE, leaseName: `lockstep-rbac-e2e-${process.pid}` },
  });
});

afterAll(async () => {
  await deleteNamespaceAndFinalize(c, ns);
  await operator?.stop();
});

describe('the operator under its own ServiceAccount', () => {
  it('reconciles keys, a managed CA, certificates, policies and volumes, and cleans up, with no Forbidden', async () => {
    await applyAsUser(c, {
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'policy', namespace: ns },
      spec: { certificates: { defaultIssuer: { managedCA: { commonName: 'rbac e2e root' } } }, allowed: { namespaces: [ns] } },
    } as KubernetesObject);
    await applyAsUser(c, service('web', {}));
    await applyAsUser(c, service('db', {
      access: { ingress: [{ service: { name: 'web' } }], egress: { restrict: true } },
      atRest: { volumes: [{ name: 'data', provider: 'longhorn', size: '1Gi', retain: false }] },
      deletionPolicy: 'Delete',
    }));
    for (const name of ['web', 'db']) await waitForCondition(c, ns, name, 'Ready', 'True', undefined, 120_000);
    const policy = await c.objects.read({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'policy', namespace: ns } }) as KubernetesObject & { status?: { conditions?: { type: string; status: string }[]; activeKid?: string } };
    expect(policy.status?.conditions?.find((x) => x.type === 'Ready')?.status).toBe('True');
    expect(policy.status?.activeKid).toBeTruthy();

    await c.custom.deleteNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', namespace: ns, plural: 'encryptedservices', name: 'db' });
    await eventually('db finalized', async () =>
      ((await exists(c, { apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name: 'db', namespace: ns } })) ? undefined : true));
    await eventually('db-data-luks deleted', async () =>
      ((await exists(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db-data-luks', namespace: ns } })) ? undefined : true));

    const logs = operator?.logs() ?? '';
    expect(logs).toContain('acquired leadership');
    // An authorization denial reads `... is forbidden: User "system:serviceaccount:..." cannot <verb>
    // resource ...`; other 403s (a namespace left terminating by an earlier test file) are not RBAC.
    const denied = logs.split('\n').filter((line) => /forbidden: User .{0,120}cannot /.test(line));
    expect(denied).toEqual([]);
  }, 240_000);
});
