// Lockstep installed before cert-manager, on the real cluster: cert-manager's CRDs deleted and its
// controller stopped, then the operator started. What does not need cert-manager converges (a
// KeyPolicy without a managed CA, a service's NetworkPolicies); what does says so in a condition
// naming the missing API and the fix, with one Event per object; /readyz and a gauge say what the
// operator waits for. Then cert-manager is installed again (same CRDs, same controller, same
// default issuers as cluster-up.sh) and everything converges (a RotationSchedule of certificates too) without an operator restart; the time
// it takes is printed. cert-manager is put back as it was even when a test fails.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EncryptedService, KeyPolicy } from '../operator/api/v1alpha1/index.js';
import { managedCAIssuerName } from '../operator/keypolicy/names.js';
import {
  certManagerRunning, deleteCertManagerCrds, installCertManagerCrds, localCertManager, restoreCertManager, restoreDefaultIssuers,
  startCertManager, stopCertManager, type LocalCertManager,
} from './harness/cert-manager.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, condition, deleteNamespaceAndFinalize, exists, installCrds, waitForCondition, waitForSchedule } from './harness/lockstep.js';
import { createTestNamespace } from './harness/namespace.js';
import { externalOperator, startInProcess, type RunningOperator } from './harness/operator.js';

const c = clients();
const cm: LocalCertManager | undefined = externalOperator ? undefined : localCertManager();
// Only on the local control plane with an in-process operator: a kind cluster runs cert-manager in pods.
const describeLocal = cm ? describe : describe.skip;
const MISSING = 'install cert-manager v1.x: cert-manager.io/v1 Certificate, Issuer, ClusterIssuer not served';

let ns = '';
// The root CA Secret outlives cert-manager's CRDs: what was issued before still chains to it after.
let rootSerialBefore = '';
const rootSerial = async (): Promise<string> => {
  const secret = await c.core.readNamespacedSecret({ namespace: 'cert-manager', name: 'lockstep-root-ca' });
  return new X509Certificate(Buffer.from(secret.data?.['tls.crt'] ?? '', 'base64')).serialNumber;
};
// A ClusterIssuer a KeyPolicy names before it exists (cluster-scoped: removed in afterAll).
const laterIssuer = () => `${ns}-later`;
let operator: RunningOperator & { operator?: { manager: { healthPort(): number | undefined } } } | undefined;

const kpRef = (name: string) => ({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies', namespace: ns, name });
const readPolicy = async (name: string) => (await c.custom.getNamespacedCustomObject(kpRef(name))) as KeyPolicy;
const waitPolicy = (name: string, status: 'True' | 'False', reason: string, timeoutMs = 60_000) =>
  eventually(`KeyPolicy ${name} Ready=${status} (${reason})`, async () => {
    const kp = await readPolicy(name);
    const ready = condition(kp, 'Ready');
    return kp.status?.observedGeneration === kp.metadata.generation && ready?.status === status && ready.reason === reason ? kp : undefined;
  }, timeoutMs);

const service = (name: string, keyPolicy: string): KubernetesObject => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace: ns },
  spec: { workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name }, ports: [{ name: 'https', port: 8443 }], keyPolicyRef: { name: keyPolicy } },
} as KubernetesObject);

const health = async (path: string): Promise<{ status: number; body: string }> => {
  const res = await fetch(`http://127.0.0.1:${operator?.operator?.manager.healthPort()}${path}`);
  return { status: res.status, body: await res.text() };
};

const eventsFor = async (kind: string, name: string, reason: string) =>
  (await c.kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns })).items
    .filter((e) => e.regarding?.kind === kind && e.regarding.name === name && e.reason === reason);

beforeAll(async () => {
  if (!cm) return;
  installCrds();
  ns = await createTestNamespace(c, 'e2e-deps');
  rootSerialBefore = await rootSerial();
  await stopCertManager(cm);
  await deleteCertManagerCrds(c);
  operator = startInProcess(c.kc);
}, 180_000);

afterAll(async () => {
  if (!cm) return;
  // cert-manager first: the operator finalizes the services and the managed CA with it.
  try {
    await restoreCertManager(c, cm);
  } finally {
    if (ns) {
      await c.custom.deleteClusterCustomObject({ group: 'cert-manager.io', version: 'v1', plural: 'clusterissuers', name: laterIssuer() }).catch(() => undefined);
      await c.custom.deleteNamespacedCustomObject(kpRef('ca')).catch(() => undefined);
      await eventually('managed CA cleaned up', async () =>
        (await exists(c, { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: managedCAIssuerName(ns, 'ca') } })) ? undefined : true, 60_000).catch(() => undefined);
      await deleteNamespaceAndFinalize(c, ns);
    }
    await operator?.stop();
  }
}, 300_000);

describeLocal('cert-manager not installed', () => {
  it('starts, and a KeyPolicy without a managed CA becomes Ready', async () => {
    await applyAsUser(c, { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'plain', namespace: ns }, spec: {} } as KubernetesObject);
    const kp = await waitPolicy('plain', 'True', 'Reconciled');
    expect(kp.status?.activeKid).toMatch(/^kek-/);
  });

  it('an EncryptedService says cert-manager is missing and how to fix it, once; what does not need it converges', async () => {
    await applyAsUser(c, service('api', 'plain'));
    const es: EncryptedService = await waitForCondition(c, ns, 'api', 'Ready', 'False', 'CertManagerMissing');
    expect(condition(es, 'TransitReady')).toMatchObject({ status: 'False', reason: 'CertManagerMissing', message: MISSING });
    expect(condition(es, 'Degraded')).toMatchObject({ status: 'True', reason: 'CertManagerMissing' });
    expect(condition(es, 'Ready')?.message).toContain(MISSING);
    // Access does not need cert-manager.
    expect(condition(es, 'AccessReady')?.status).toBe('True');
    expect((await c.kc.makeApiClient(k8s.NetworkingV1Api).listNamespacedNetworkPolicy({ namespace: ns })).items.length).toBeGreaterThan(0);

    const first = await eventually('a CertManagerMissing Event', async () => {
      const found = await eventsFor('EncryptedService', 'api', 'CertManagerMissing');
      return found.length > 0 ? found : undefined;
    });
    expect(first[0]?.type).toBe('Warning');
    expect(first[0]?.note).toContain(MISSING);
    // The reconcile is retried with backoff meanwhile (1, 2, 4, 8 s ...): still one Event.
    await new Promise((r) => setTimeout(r, 12_000));
    const later = await eventsFor('EncryptedService', 'api', 'CertManagerMissing');
    expect(later).toHaveLength(1);
    expect(later[0]?.series?.count ?? 1).toBe(1);
  });

  it('a KeyPolicy with a managed CA says cert-manager is missing, with one Event', async () => {
    await applyAsUser(c, {
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'ca', namespace: ns },
      spec: { certificates: { maxDuration: '48h', defaultIssuer: { managedCA: { commonName: `e2e deps ${ns}`, duration: '720h' } } } },
    } as KubernetesObject);
    const kp = await waitPolicy('ca', 'False', 'CertManagerMissing');
    expect(condition(kp, 'Ready')?.message).toBe(`managed CA not applied: ${MISSING}`);
    expect(condition(kp, 'KeysReady')?.status).toBe('True');
    await new Promise((r) => setTimeout(r, 3_000));
    const events = await eventsFor('KeyPolicy', 'ca', 'CertManagerMissing');
    expect(events).toHaveLength(1);
    expect(events[0]?.series?.count ?? 1).toBe(1);
  });

  it('a RotationSchedule of certificates says cert-manager is missing, starts no rotation, with one Event', async () => {
    // On demand only (no rotate-now yet): nothing would be due, and still it says what it waits for.
    await applyAsUser(c, {
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule', metadata: { name: 'leaves', namespace: ns },
      spec: { targets: { names: ['api'] }, rotate: ['certificates'] },
    } as KubernetesObject);
    const rs = await waitForSchedule(c, ns, 'leaves', 'Ready=False (CertManagerMissing)', (r) =>
      r.status?.observedGeneration === r.metadata.generation && condition(r, 'Ready')?.reason === 'CertManagerMissing', 60_000);
    expect(condition(rs, 'Ready')).toMatchObject({ status: 'False', message: `certificates not rotated: ${MISSING}` });
    expect(condition(rs, 'Degraded')).toMatchObject({ status: 'True', reason: 'CertManagerMissing' });
    expect(rs.status?.phase).toBe('Idle');
    expect(rs.status?.rotationId).toBeUndefined();
    await new Promise((r) => setTimeout(r, 12_000));
    expect(await eventsFor('RotationSchedule', 'leaves', 'CertManagerMissing')).toHaveLength(1);
  });

  it('/readyz stays 200 and says what it waits for; the gauge is 1', async () => {
    const ready = await health('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toBe(`ok\nwaiting for dependency/cert-manager: ${MISSING}\n`);
    expect((await health('/metrics')).body).toContain('lockstep_dependency_missing{dependency="cert-manager"} 1');
  });
});

describeLocal('cert-manager installed later', () => {
  it('converges without an operator restart', async () => {
    const c0 = Date.now();
    installCertManagerCrds(cm!);
    const crdsAt = Date.now();
    startCertManager(cm!);
    expect(certManagerRunning(cm!)).toBe(true);
    await restoreDefaultIssuers(c);
    const issuersAt = Date.now();
    await waitForCondition(c, ns, 'api', 'Ready', 'True', undefined, 120_000);
    const readyAt = Date.now();
    console.log(`cert-manager installed late: CRDs applied and Established in ${crdsAt - c0} ms; default issuers Ready ${issuersAt - crdsAt} ms later; `
      + `EncryptedService Ready ${readyAt - crdsAt} ms after the CRDs were served (${readyAt - issuersAt} ms after its issuer was Ready)`);
    await waitPolicy('ca', 'True', 'Reconciled', 120_000);
    console.log(`KeyPolicy managed CA Ready ${Date.now() - crdsAt} ms after the CRDs were served`);

    expect(await health('/readyz')).toEqual({ status: 200, body: 'ok\n' });
    expect((await health('/metrics')).body).toContain('lockstep_dependency_missing{dependency="cert-manager"} 0');
    const es = await waitForCondition(c, ns, 'api', 'Degraded', 'False');
    expect(condition(es, 'TransitReady')).toMatchObject({ status: 'True', reason: 'CertificateIssued' });
    expect(await rootSerial()).toBe(rootSerialBefore);
    // The schedule looks again by itself (every 10 s while it waits).
    const rs = await waitForSchedule(c, ns, 'leaves', 'Ready=True', (r) => condition(r, 'Ready')?.status === 'True', 30_000);
    expect(condition(rs, 'Degraded')?.status).toBe('False');
    expect(rs.status?.phase).toBe('Idle');
  }, 300_000);
});

describeLocal('the CA issuer missing', () => {
  it('a KeyPolicy naming a ClusterIssuer that does not exist says so, and its services too; both converge when it is created', async () => {
    const issuer = laterIssuer();
    await applyAsUser(c, {
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'named', namespace: ns },
      spec: { certificates: { defaultIssuer: { issuerRef: { kind: 'ClusterIssuer', name: issuer } } } },
    } as KubernetesObject);
    const kp = await waitPolicy('named', 'False', 'IssuerNotFound');
    expect(condition(kp, 'Ready')?.message).toContain(`ClusterIssuer ${issuer} (spec.certificates.defaultIssuer) does not exist: create it or change the issuer`);
    expect(condition(kp, 'Degraded')).toMatchObject({ status: 'True', reason: 'IssuerNotFound' });
    expect(condition(kp, 'KeysReady')?.status).toBe('True');
    await applyAsUser(c, service('web', 'named'));
    const es = await waitForCondition(c, ns, 'web', 'TransitReady', 'False', 'IssuerNotFound');
    expect(condition(es, 'TransitReady')?.message).toContain(`ClusterIssuer ${issuer} does not exist`);
    expect(await eventsFor('KeyPolicy', 'named', 'IssuerNotFound')).toHaveLength(1);

    // Created: the policy is woken by the ClusterIssuer's watch event, not a timer (it would be an hour).
    await applyAsUser(c, {
      apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: issuer, annotations: { 'lockstep.dev/allowed-namespaces': ns } }, spec: { selfSigned: {} },
    } as KubernetesObject);
    const created = Date.now();
    await waitPolicy('named', 'True', 'Reconciled', 30_000);
    await waitForCondition(c, ns, 'web', 'TransitReady', 'True', 'CertificateIssued', 60_000);
    console.log(`missing default ClusterIssuer created: KeyPolicy and its service Ready ${Date.now() - created} ms later`);
  }, 180_000);
});
