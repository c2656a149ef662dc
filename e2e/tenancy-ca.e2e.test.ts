// The tenant boundary on the CA side, on the real API server: a tenant (impersonated, bound to
// `edit` plus Lockstep's kinds in its own namespace) tries to reach shared CA state through
// Lockstep — rotate a shared ClusterIssuer, force another namespace's KeyPolicy to rotate, take
// over another tenant's managed CA by a colliding name, inject a root through the bundle's
// added-roots annotation — and each attempt changes nothing while the operator says why. Then
// an administrator's grant lets a namespace rotate a ClusterIssuer, and only what the grant
// implies is written.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesObject, V1ConfigMap } from '@kubernetes/client-node';
import {
  ANNOTATION_ALLOWED_NAMESPACES, ANNOTATION_ROTATION_ALLOWED_NAMESPACES, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY,
  type EncryptedService, type KeyPolicy, type RotationSchedule,
} from '../operator/api/v1alpha1/index.js';
import { LABEL_ROTATION_SCHEDULE } from '../operator/rotationschedule/leaf-certificates.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, installCrds, readSchedule, waitForSchedule } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';
import { createTenant, type Tenant } from './harness/tenant.js';
import { TlsWorkload, readMaterial, serialOfPem, workloadAddress } from './harness/tls-workload.js';

const c = clients();
const CM = { group: 'cert-manager.io', version: 'v1' };
const CLUSTER_RESOURCE_NAMESPACE = 'cert-manager';
const suffix = randomBytes(3).toString('hex');
let tenantNs = '';
let victimNs = '';
let tenant: Tenant;
let operator: RunningOperator;
const workloads: TlsWorkload[] = [];
const clusterObjects: KubernetesObject[] = [];

const cm = (kind: string, name: string, spec: object, extra: { namespace?: string; annotations?: Record<string, string> } = {}): KubernetesObject => ({
  apiVersion: 'cert-manager.io/v1', kind,
  metadata: { name, ...(extra.namespace ? { namespace: extra.namespace } : {}), ...(extra.annotations ? { annotations: extra.annotations } : {}) },
  spec,
} as KubernetesObject);

/** An administrator's CA ClusterIssuer (self-signed root in cert-manager's namespace), usable by every namespace. */
async function sharedCa(name: string, annotations: Record<string, string> = {}): Promise<void> {
  const objects = [
    cm('ClusterIssuer', `${name}-selfsigned`, { selfSigned: {} }),
    cm('Certificate', `${name}-root`, {
      isCA: true, commonName: `${name} root`, secretName: `${name}-root`, duration: '8760h',
      privateKey: { algorithm: 'ECDSA', size: 256 }, issuerRef: { group: 'cert-manager.io', kind: 'ClusterIssuer', name: `${name}-selfsigned` },
    }, { namespace: CLUSTER_RESOURCE_NAMESPACE }),
    cm('ClusterIssuer', name, { ca: { secretName: `${name}-root` } }, { annotations: { [ANNOTATION_ALLOWED_NAMESPACES]: '*', ...annotations } }),
  ];
  for (const o of objects) {
    await applyAsUser(c, o);
    clusterObjects.push(o);
  }
  await eventually(`ClusterIssuer ${name} ready`, async () => (await issuer(name)).status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ? true : undefined, 60_000);
}

type IssuerObject = { metadata?: { annotations?: Record<string, string> }; spec?: { ca?: { secretName?: string } }; status?: { conditions?: { type: string; status: string }[] } };
const issuer = async (name: string) => (await c.custom.getClusterCustomObject({ ...CM, plural: 'clusterissuers', name })) as IssuerObject;

function policy(namespace: string, name: string, spec: object = {}): KeyPolicy {
  return { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name, namespace }, spec: { keyWrap: { algorithm: 'A256KW' }, ...spec } } as KeyPolicy;
}

function service(namespace: string, name: string, extra: { clusterIssuer?: string; keyPolicy?: { name: string; namespace?: string } } = {}): EncryptedService {
  return {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService',
    metadata: { name, namespace },
    spec: {
      workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name },
      ports: [{ name: 'https', port: 443 }], keyPolicyRef: extra.keyPolicy ?? { name: 'p' },
      ...(extra.clusterIssuer ? { transit: { issuerRef: { name: extra.clusterIssuer, kind: 'ClusterIssuer' } } } : {}),
    },
  } as EncryptedService;
}

function schedule(name: string, spec: object, rotateNow = 'now'): RotationSchedule {
  return {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule',
    metadata: { name, namespace: tenantNs, annotations: { 'lockstep.dev/rotate-now': rotateNow } },
    spec: { targets: { selector: {} }, ...spec },
  } as unknown as RotationSchedule;
}

/** Applies as the tenant and fails the test on a refusal (the attack must be one the tenant may try). */
function tenantApplies(...objects: KubernetesObject[]): void {
  const result = tenant.apply(...objects);
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
}

async function issued(namespace: string, name: string): Promise<void> {
  await eventually(`${namespace}/${name} issued`, async () => ((await readMaterial(c, namespace, name).catch(() => undefined)) ? true : undefined), 90_000);
}

async function bundle(namespace: string): Promise<V1ConfigMap | undefined> {
  return c.core.readNamespacedConfigMap({ namespace, name: TRUST_BUNDLE_CONFIGMAP }).catch(() => undefined);
}

const rootSerials = (cmap: V1ConfigMap | undefined): string[] =>
  (cmap?.data?.[TRUST_BUNDLE_KEY]?.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((pem) => serialOfPem(pem)).sort();

async function eventsFor(namespace: string, name: string, reason: string): Promise<string[]> {
  const list = await c.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items.filter((e) => e.reason === reason).map((e) => e.message ?? '');
}

async function rotationCertificates(scheduleName: string): Promise<string[]> {
  const list = await c.custom.listNamespacedCustomObject({ ...CM, plural: 'certificates', namespace: CLUSTER_RESOURCE_NAMESPACE, labelSelector: `${LABEL_ROTATION_SCHEDULE}=${scheduleName}` });
  return (list as { items: KubernetesObject[] }).items.map((o) => o.metadata?.name ?? '');
}

beforeAll(async () => {
  installCrds();
  tenantNs = await createTestNamespace(c, 'e2e-tca-tenant');
  victimNs = await createTestNamespace(c, 'e2e-tca-victim');
  tenant = await createTenant(c, tenantNs);
  await applyAsUser(c, policy(victimNs, 'p') as unknown as KubernetesObject);
  operator = startInProcess(c.kc);
}, 120_000);

afterAll(async () => {
  for (const w of workloads) await w.stop();
  await deleteTestNamespace(c, tenantNs);
  await deleteTestNamespace(c, victimNs);
  await eventually('test namespaces finalized', async () => {
    const left = await Promise.all([tenantNs, victimNs].map((namespace) =>
      c.custom.listNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', namespace, plural: 'encryptedservices' }).then((l) => (l as { items: unknown[] }).items.length, () => 0)));
    return left.every((n) => n === 0) ? true : undefined;
  }, 60_000).catch(() => undefined);
  await operator?.stop();
  for (const o of clusterObjects.reverse()) await c.objects.delete(o).catch(() => undefined);
}, 120_000);

describe('finding 1: a namespaced RotationSchedule and a shared ClusterIssuer', () => {
  const shared = `e2e-tca-shared-${suffix}`;

  it('refuses to rotate a ClusterIssuer no administrator granted: no CA, no bundle, no issuer switch; says which annotation an admin would set', async () => {
    await sharedCa(shared);
    await applyAsUser(c, service(victimNs, 'web', { clusterIssuer: shared }) as unknown as KubernetesObject);
    await issued(victimNs, 'web');
    tenantApplies(policy(tenantNs, 'p') as unknown as KubernetesObject, service(tenantNs, 'app', { clusterIssuer: shared }) as unknown as KubernetesObject);
    await issued(tenantNs, 'app');
    const victimRoots = rootSerials(await bundle(victimNs));
    const signing = (await issuer(shared)).spec?.ca?.secretName;

    // The tenant cannot grant itself: the grant lives on the cluster-scoped issuer.
    const selfGrant = tenant.kubectl(['annotate', 'clusterissuers.cert-manager.io', shared, `${ANNOTATION_ROTATION_ALLOWED_NAMESPACES}=${tenantNs}`]);
    expect(selfGrant.status).not.toBe(0);
    expect(selfGrant.stderr).toMatch(/forbidden/i);

    tenantApplies(schedule('steal', {
      targets: { names: ['app'] }, rotate: ['ca', 'certificates'], emergency: true,
      ca: { issuerRef: { name: shared, kind: 'ClusterIssuer' }, overlap: '1h' },
      strategy: { canarySteps: [100], autoRollback: false, verification: { timeout: '20s' } },
    }) as unknown as KubernetesObject);
    const rs = await waitForSchedule(c, tenantNs, 'steal', 'Ready=False RotationNotAllowed',
      (r) => r.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'False' && x.reason === 'RotationNotAllowed') ?? false, 60_000);
    const ready = rs.status?.conditions?.find((x) => x.type === 'Ready');
    expect(ready?.message).toContain(`${ANNOTATION_ROTATION_ALLOWED_NAMESPACES} of ClusterIssuer ${shared}`);
    expect(rs.status?.rotationId).toBeUndefined();
    await eventually('a RotationNotAllowed Event', async () => ((await eventsFor(tenantNs, 'steal', 'RotationNotAllowed')).length ? true : undefined), 30_000);

    // Give a wrongly started rotation time to write, then check that nothing was.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await rotationCertificates('steal')).toEqual([]);
    expect((await issuer(shared)).spec?.ca?.secretName).toBe(signing);
    const victimBundle = await bundle(victimNs);
    expect(rootSerials(victimBundle)).toEqual(victimRoots);
    expect((await readSchedule(c, tenantNs, 'steal')).status?.phase).not.toBe('Verifying');
  }, 240_000);

  it("rotates it once an administrator lists the namespace, and writes no bundle of a namespace not on the issuer", async () => {
    const granted = `e2e-tca-granted-${suffix}`;
    await sharedCa(granted, { [ANNOTATION_ROTATION_ALLOWED_NAMESPACES]: `other,${tenantNs}` });
    tenantApplies(service(tenantNs, 'granted', { clusterIssuer: granted }) as unknown as KubernetesObject);
    await issued(tenantNs, 'granted');
    const workload = new TlsWorkload(c, tenantNs, 'granted', workloadAddress());
    await workload.start();
    workloads.push(workload);
    for (const obj of workload.objects()) await applyAsUser(c, obj);
    const victimRoots = rootSerials(await bundle(victimNs));
    const before = (await issuer(granted)).spec?.ca?.secretName;

    tenantApplies(schedule('rotate-granted', {
      targets: { names: ['granted'] }, rotate: ['ca', 'certificates'], emergency: true,
      ca: { issuerRef: { name: granted, kind: 'ClusterIssuer' }, overlap: '1h' },
      strategy: { canarySteps: [100], autoRollback: false, verification: { timeout: '60s' } },
    }) as unknown as KubernetesObject);
    const rs = await waitForSchedule(c, tenantNs, 'rotate-granted', 'a finished rotation', (r) => r.status?.history?.[0]?.outcome !== undefined, 240_000);
    expect(rs.status?.history?.[0]).toMatchObject({ outcome: 'Completed' });
    expect((await issuer(granted)).spec?.ca?.secretName).toBe(rs.status?.ca?.secretName);
    expect(rs.status?.ca?.secretName).not.toBe(before);
    // The victim's namespace has no service on this issuer: its bundle is not touched.
    expect(rootSerials(await bundle(victimNs))).toEqual(victimRoots);
  }, 300_000);
});

describe('finding 6a: a RotationSchedule and a KeyPolicy in another namespace', () => {
  it("refuses to ask another namespace's KeyPolicy for a KEK rotation, and says why", async () => {
    const shared = policy(victimNs, 'shared', { allowed: { namespaces: [victimNs, tenantNs] } });
    await applyAsUser(c, shared as unknown as KubernetesObject);
    const activeKid = await eventually('shared KeyPolicy has keys', async () => ((await readPolicy(victimNs, 'shared')).status?.activeKid), 60_000);
    tenantApplies(service(tenantNs, 'keyed', { keyPolicy: { name: 'shared', namespace: victimNs } }) as unknown as KubernetesObject);
    tenantApplies(schedule('kek', { targets: { names: ['keyed'] }, rotate: ['keyEncryptionKeys'], strategy: { canarySteps: [100], verification: { timeout: '20s' } } }) as unknown as KubernetesObject);
    const rs = await waitForSchedule(c, tenantNs, 'kek', 'a finished rotation', (r) => r.status?.history?.[0]?.outcome !== undefined, 90_000);
    expect(rs.status?.failure?.reason).toBe('KeyPolicyInOtherNamespace');
    expect(rs.status?.failure?.message).toContain(`KeyPolicy ${victimNs}/shared is in another namespace`);
    const after = await readPolicy(victimNs, 'shared');
    expect(Object.keys(after.metadata.annotations ?? {}).filter((k) => k.startsWith('lockstep.dev/'))).toEqual([]);
    expect(after.status?.activeKid).toBe(activeKid);
  }, 180_000);
});

async function readPolicy(namespace: string, name: string): Promise<KeyPolicy> {
  return (await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', namespace, plural: 'keypolicies', name })) as KeyPolicy;
}

