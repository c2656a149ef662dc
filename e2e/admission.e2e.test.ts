// The ValidatingAdmissionPolicies of manifests/admission.yaml on the real API server, with the
// exact message the refused user reads. Two sides: the operator's own writes (a stolen operator
// token restarts workloads and writes Lockstep's objects, nothing else), and the guardrails a
// KeyPolicy turns on for its namespace with spec.admission, attacked by a tenant (kubectl --as).
// The operator runs under its own ServiceAccount, so its writes meet the same policies.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, deleteNamespaceAndFinalize, exists, installCrds, waitForCondition } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { OPERATOR_NAMESPACE, OPERATOR_USER, installOperatorAccount, operatorAccountConfig } from './harness/operator-account.js';
import { externalOperator, startInProcess, type RunningOperator } from './harness/operator.js';
import { createTenant, runKubectl, type KubectlResult, type Tenant } from './harness/tenant.js';

const c = clients();
let ns = '';
let open = '';
let operator: RunningOperator | undefined;
let tenant: Tenant;
let writer: Tenant;
let neighbour: Tenant;

const asOperator = (args: string[], input?: string): KubectlResult => runKubectl(args, { as: OPERATOR_USER, ...(input ? { input } : {}) });
const refusal = (r: KubectlResult): string => {
  expect(r.status).not.toBe(0);
  return r.stderr.trim();
};
const accepted = (r: KubectlResult): void => {
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
};
const yaml = (o: object): string => JSON.stringify(o);

const claim = (name: string, namespace: string, storageClassName?: string) => ({
  apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, ...(storageClassName ? { storageClassName } : {}) },
});
const opaque = (name: string, namespace: string) => ({
  apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', stringData: { password: 'hunter2' },
});

beforeAll(async () => {
  installCrds();
  installOperatorAccount();
  ns = await createTestNamespace(c, 'e2e-admission');
  open = await createTestNamespace(c, 'e2e-admission-open');
  tenant = await createTenant(c, ns);
  writer = await createTenant(c, ns, `ci-${ns}`);
  neighbour = await createTenant(c, open);
  operator = startInProcess(operatorAccountConfig(c.kc), {
    leaderElection: { namespace: OPERATOR_NAMESPACE, leaseName: `lockstep-admission-e2e-${process.pid}` },
  });
  // The namespace's owner opts in: every guardrail, with one declared writer of plain Secrets.
  accepted(tenant.apply({
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'guarded', namespace: ns },
    spec: { keyWrap: { algorithm: 'A256KW' }, admission: { requireEncryptedVolumes: true, requireSealedSecrets: true, secretWriters: [writer.user] } },
  } as KubernetesObject));
  accepted(neighbour.apply({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'plain', namespace: open }, spec: {} } as KubernetesObject));
}, 120_000);

afterAll(async () => {
  await deleteNamespaceAndFinalize(c, ns);
  await deleteTestNamespace(c, open);
  await operator?.stop();
});

// In the namespace without guardrails: what refuses here is the operator's own limit.
describe("the operator's own writes", () => {
  beforeAll(async () => {
    await applyAsUser(c, {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'shop', namespace: open },
      spec: {
        replicas: 2, selector: { matchLabels: { app: 'shop' } },
        template: { metadata: { labels: { app: 'shop' } }, spec: { containers: [{ name: 'app', image: 'registry.example/shop:1' }] } },
      },
    } as KubernetesObject);
    await c.core.createNamespacedSecret({ namespace: open, body: { metadata: { name: 'db-password' }, stringData: { password: 'hunter2' } } });
  });

  it('a restart (the pod template restartedAt annotation) is let through', () => {
    accepted(asOperator(['patch', 'deployment', 'shop', '-n', open, '-p',
      yaml({ spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-11-30T06:00:00.123Z' } } } } })]));
  });

  it('any other change to a workload is refused: image, replicas, labels', () => {
    const expected = `Error from server (Forbidden): deployments.apps "shop" is forbidden: ValidatingAdmissionPolicy 'lockstep-operator-restart-only' with binding 'lockstep-operator-restart-only' denied request: the Lockstep operator may change only the pod template annotation kubectl.kubernetes.io/restartedAt of Deployment ${open}/shop (a restart); this request changes more`;
    for (const patch of [
      { spec: { template: { spec: { containers: [{ name: 'app', image: 'attacker.example/shop:1' }] } } } },
      { spec: { replicas: 0 } },
      { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': 'x', 'sidecar.example/inject': 'true' } } } } },
      { metadata: { labels: { team: 'attacker' } } },
    ]) {
      expect(refusal(asOperator(['patch', 'deployment', 'shop', '-n', open, '-p', yaml(patch)]))).toBe(expected);
    }
  });

  it("someone else's Secret is neither changed nor deleted, and no unlabelled Secret or ConfigMap is created", () => {
    const refused = (verb: string) =>
      `secrets "db-password" is forbidden: ValidatingAdmissionPolicy 'lockstep-operator-managed-objects' with binding 'lockstep-operator-managed-objects' denied request: the Lockstep operator writes only Secrets and ConfigMaps labelled app.kubernetes.io/managed-by=lockstep (it may label an unlabelled Secret it adopts, without changing its data); secrets ${open}/db-password is not (before or after this ${verb})`;
    expect(refusal(asOperator(['delete', 'secret', 'db-password', '-n', open]))).toBe(`Error from server (Forbidden): ${refused('DELETE')}`);
    expect(refusal(asOperator(['patch', 'secret', 'db-password', '-n', open, '-p', yaml({ stringData: { password: 'stolen' } })]))).toBe(`Error from server (Forbidden): ${refused('UPDATE')}`);
    expect(refusal(asOperator(['create', '-f', '-'], yaml({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'exfiltrate', namespace: open }, data: { a: 'b' } })))).toBe(
      `Error from server (Forbidden): error when creating "STDIN": configmaps "exfiltrate" is forbidden: ValidatingAdmissionPolicy 'lockstep-operator-managed-objects' with binding 'lockstep-operator-managed-objects' denied request: the Lockstep operator writes only Secrets and ConfigMaps labelled app.kubernetes.io/managed-by=lockstep (it may label an unlabelled Secret it adopts, without changing its data); configmaps ${open}/exfiltrate is not (before or after this CREATE)`);
  });
});

describe('guardrails a KeyPolicy turns on (spec.admission)', () => {
  beforeAll(async () => {
    await eventually('the operator wrote the key Secret', async () =>
      ((await exists(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'guarded-keys', namespace: ns } })) ? true : undefined), 60_000);
  });

  it('a claim on an unencrypted StorageClass, or on the default class, is refused; a volume declared on an EncryptedService gets its encrypted class', async () => {
    const prefix = `Error from server (Forbidden): error when creating "STDIN": persistentvolumeclaims "scratch" is forbidden: ValidatingAdmissionPolicy 'lockstep-encrypted-volumes' with binding 'lockstep-encrypted-volumes' denied request: KeyPolicy guarded requires encrypted volumes in namespace ${ns}: `;
    const suffix = '; declare the volume on an EncryptedService (spec.atRest.volumes)';
    expect(refusal(tenant.kubectl(['create', '-f', '-'], yaml(claim('scratch', ns, 'standard'))))).toBe(
      `${prefix}StorageClass standard is neither generated by Lockstep nor listed in spec.admission.encryptedStorageClasses${suffix}`);
    expect(refusal(tenant.kubectl(['create', '-f', '-'], yaml(claim('scratch', ns))))).toBe(
      `${prefix}a claim without storageClassName gets the default class, which is not known to be encrypted${suffix}`);
    // Not opted in: the neighbour's namespace takes the same claim.
    accepted(neighbour.kubectl(['create', '-f', '-'], yaml(claim('scratch', open, 'standard'))));

    accepted(tenant.apply({
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name: 'api', namespace: ns },
      spec: {
        workload: { selector: { matchLabels: { app: 'api' } }, serviceAccountName: 'api' },
        ports: [{ name: 'https', port: 8443 }], keyPolicyRef: { name: 'guarded' },
        atRest: { volumes: [{ name: 'data', provider: 'longhorn', size: '1Gi' }] },
      },
    } as KubernetesObject));
    const es = await waitForCondition(c, ns, 'api', 'AtRestReady', 'True', undefined, 60_000);
    expect(es.status?.volumes?.[0]).toMatchObject({ claimName: 'api-data', encrypted: true, storageClassName: expect.stringMatching(/^lockstep-longhorn-[0-9a-f]{10}$/) });
  }, 90_000);

  it('a plain Opaque Secret is refused unless a declared writer writes it; other Secret types pass', () => {
    expect(refusal(tenant.kubectl(['create', '-f', '-'], yaml(opaque('app-password', ns))))).toBe(
      `Error from server (Forbidden): error when creating "STDIN": secrets "app-password" is forbidden: ValidatingAdmissionPolicy 'lockstep-sealed-secrets' with binding 'lockstep-sealed-secrets' denied request: KeyPolicy guarded requires sealed or envelope-encrypted secrets in namespace ${ns}: Opaque Secret app-password may be written only by the Lockstep operator or a writer listed in spec.admission.secretWriters, not by ${tenant.user}; seal the value with \`lockstep seal\` and declare it on an EncryptedService`);
    accepted(writer.kubectl(['create', '-f', '-'], yaml(opaque('app-password', ns))));
    // Once written by the pipeline, the tenant cannot rewrite it in plaintext either.
    expect(refusal(tenant.kubectl(['patch', 'secret', 'app-password', '-n', ns, '-p', yaml({ stringData: { password: 'changed' } })]))).toContain(
      `Opaque Secret app-password may be written only by the Lockstep operator or a writer listed in spec.admission.secretWriters, not by ${tenant.user}`);
    accepted(tenant.kubectl(['create', 'secret', 'docker-registry', 'pull', '-n', ns, '--docker-server=registry.example', '--docker-username=u', '--docker-password=p']));
    accepted(neighbour.kubectl(['create', '-f', '-'], yaml(opaque('app-password', open))));
  });

  it("the policy's key Secret is changed or deleted by no one but the operator", async () => {
    const refused = (verb: string) =>
      `secrets "guarded-keys" is forbidden: ValidatingAdmissionPolicy 'lockstep-protect-keys' with binding 'lockstep-protect-keys' denied request: Secret ${ns}/guarded-keys holds the keys of KeyPolicy guarded: only the Lockstep operator may ${verb} it (spec.admission.protectKeys); rotate or retire keys through the KeyPolicy and a RotationSchedule`;
    const before = await c.core.readNamespacedSecret({ namespace: ns, name: 'guarded-keys' });
    expect(refusal(tenant.kubectl(['delete', 'secret', 'guarded-keys', '-n', ns]))).toBe(`Error from server (Forbidden): ${refused('DELETE')}`);
    expect(refusal(tenant.kubectl(['label', 'secret', 'guarded-keys', '-n', ns, 'app.kubernetes.io/managed-by-']))).toBe(`Error from server (Forbidden): ${refused('UPDATE')}`);
    // Even the declared plain-Secret writer may not touch keys.
    expect(refusal(writer.kubectl(['patch', 'secret', 'guarded-keys', '-n', ns, '-p', yaml({ data: { 'jwks.json': 'e30=' } })]))).toBe(`Error from server (Forbidden): ${refused('UPDATE')}`);
    const after = await c.core.readNamespacedSecret({ namespace: ns, name: 'guarded-keys' });
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    // The operator, which holds the keys, still works with them: the policy stays Ready.
    await eventually('KeyPolicy Ready', async () => {
      const kp = await c.objects.read({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'guarded', namespace: ns } }) as KubernetesObject & { status?: { conditions?: { type: string; status: string }[] } };
      return kp.status?.conditions?.find((x) => x.type === 'Ready')?.status === 'True' ? true : undefined;
    }, 60_000);
  });

  it('a tenant cannot turn on a guardrail with settings the schema rejects', () => {
    const r = tenant.apply({
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'guarded', namespace: ns },
      spec: { keyWrap: { algorithm: 'A256KW' }, admission: { secretWriters: ['someone'] } },
    } as KubernetesObject);
    expect(refusal(r)).toContain('admission.secretWriters applies only with admission.requireSealedSecrets true');
  });
});

it('the operator under its ServiceAccount met no refusal from these policies', () => {
  if (externalOperator) return;
  const logs = operator?.logs() ?? '';
  expect(logs).toContain('acquired leadership');
  expect(logs.split('\n').filter((l) => l.includes('ValidatingAdmissionPolicy'))).toEqual([]);
});
