// The tenant boundary on the CA side, on the real API server: a tenant (impersonated, bound to
// `edit` plus Lockstep's kinds in its own namespace) tries to reach shared CA state through
// Lockstep — rotate a shared ClusterIssuer, force another namespace's KeyPolicy to rotate, take
// over another tenant's managed CA by a colliding name, inject a root through the bundle's
// added-roots annotation — and each attempt changes nothing while the operator says why. Then
// an administrator's grant lets a namespace rotate a ClusterIssuer, and only what the grant
// implies is written.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject, V1ConfigMap } from '@kubernetes/client-node';
import {
  ANNOTATION_ALLOWED_NAMESPACES, ANNOTATION_ROTATION_ALLOWED_NAMESPACES, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY,
  withKeyPolicyDefaults, type EncryptedService, type KeyPolicy, type RotationSchedule,
} from '../operator/api/v1alpha1/index.js';
import { buildStorageClass } from '../operator/encryptedservice/storage.js';
import { buildManagedCA } from '../operator/keypolicy/managed-ca.js';
import { legacyManagedCANames, managedCACertificateName, managedCAIssuerName } from '../operator/keypolicy/names.js';
import { issuedBy } from '../operator/rotationschedule/ca-rotation.js';
import { LABEL_ROTATION_SCHEDULE } from '../operator/rotationschedule/leaf-certificates.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, exists, installCrds, readSchedule, waitForSchedule } from './harness/lockstep.js';
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

/** The KeyPolicy decides which issuers its services may name: the test's shared ClusterIssuers. */
const testIssuers = { allowedIssuers: ['shared', 'granted'].map((n) => ({ name: `e2e-tca-${n}-${suffix}`, kind: 'ClusterIssuer' })) };

function policy(namespace: string, name: string, spec: object = {}): KeyPolicy {
  return { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name, namespace }, spec: { keyWrap: { algorithm: 'A256KW' }, certificates: testIssuers, ...spec } } as KeyPolicy;
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

/**
 * Deletes as the tenant and waits for the operator to finalize. Never `kubectl --wait`: kubectl
 * runs synchronously and would freeze this process, and with it the in-process operator.
 */
async function tenantDeletes(resource: string, name: string): Promise<void> {
  const deleted = tenant.kubectl(['delete', resource, name, '-n', tenantNs, '--wait=false']);
  expect(deleted.stderr).toBe('');
  await eventually(`${resource} ${name} finalized`, async () => (tenant.kubectl(['get', resource, name, '-n', tenantNs]).status !== 0 ? true : undefined), 60_000);
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

describe('finding 4: cluster-scoped names are unique per owner, never taken over or deleted', () => {
  const managed = { certificates: { defaultIssuer: { managedCA: { commonName: 'e2e tenancy root' } } } };
  type Labelled = { metadata?: { labels?: Record<string, string> }; spec?: { ca?: { secretName?: string } } };
  const readIssuer = async (name: string) => (await c.custom.getClusterCustomObject({ ...CM, plural: 'clusterissuers', name })) as Labelled;
  const keyPolicyCondition = async (namespace: string, name: string, type: string) => (await readPolicy(namespace, name)).status?.conditions?.find((x) => x.type === type);

  it("a tenant's policy whose namespace-name reads like another tenant's gets its own CA, and deleting it leaves the other's", async () => {
    // `<tenant>-a/prod` and `<tenant>/a-prod` both read `<tenant>-a-prod`.
    const victimA = `${tenantNs}-a`;
    await c.core.createNamespace({ body: { metadata: { name: victimA, labels: { 'lockstep.dev/e2e': 'true' } } } });
    try {
      await applyAsUser(c, policy(victimA, 'prod', managed) as unknown as KubernetesObject);
      const victimIssuer = managedCAIssuerName(victimA, 'prod');
      await eventually('the victim\'s managed CA ready', async () => ((await keyPolicyCondition(victimA, 'prod', 'Ready'))?.status === 'True' ? true : undefined), 90_000);
      const before = await readIssuer(victimIssuer);

      tenantApplies(policy(tenantNs, 'a-prod', managed) as unknown as KubernetesObject);
      const tenantIssuer = managedCAIssuerName(tenantNs, 'a-prod');
      expect(tenantIssuer).not.toBe(victimIssuer);
      await eventually('the tenant\'s own managed CA ready', async () => ((await keyPolicyCondition(tenantNs, 'a-prod', 'Ready'))?.status === 'True' ? true : undefined), 90_000);
      expect((await readPolicy(tenantNs, 'a-prod')).status?.issuer?.name).toBe(tenantIssuer);
      const after = await readIssuer(victimIssuer);
      expect(after.metadata?.labels).toEqual(before.metadata?.labels);
      expect(after.spec?.ca?.secretName).toBe(before.spec?.ca?.secretName);

      await tenantDeletes('keypolicy', 'a-prod');
      expect(await exists(c, { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: tenantIssuer } })).toBe(false);
      expect(await exists(c, { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: victimIssuer } })).toBe(true);
      expect(await exists(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: managedCACertificateName(victimA, 'prod'), namespace: CLUSTER_RESOURCE_NAMESPACE } })).toBe(true);
    } finally {
      await c.custom.deleteNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', namespace: victimA, plural: 'keypolicies', name: 'prod' }).catch(() => undefined);
      await eventually('victim policy finalized', async () => ((await exists(c, { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'prod', namespace: victimA } })) ? undefined : true), 60_000).catch(() => undefined);
      await deleteTestNamespace(c, victimA);
    }
  }, 240_000);

  it('reports a name someone else holds (NameTaken), applies nothing over it and never deletes it', async () => {
    const squatted = managedCAIssuerName(tenantNs, 'squat');
    const foreign = cm('ClusterIssuer', squatted, { selfSigned: {} });
    await applyAsUser(c, foreign);
    clusterObjects.push(foreign);
    tenantApplies(policy(tenantNs, 'squat', managed) as unknown as KubernetesObject);
    const ready = await eventually('KeyPolicy squat Ready=False NameTaken', async () => {
      const x = await keyPolicyCondition(tenantNs, 'squat', 'Ready');
      return x?.reason === 'NameTaken' ? x : undefined;
    }, 60_000);
    expect(ready.message).toContain(`ClusterIssuer ${squatted} already exists and was not made by Lockstep for KeyPolicy ${tenantNs}/squat`);
    const live = await readIssuer(squatted);
    expect(live.metadata?.labels ?? {}).toEqual({});
    expect(live.spec).toEqual({ selfSigned: {} });
    await tenantDeletes('keypolicy', 'squat');
    expect(await exists(c, foreign)).toBe(true);
  }, 180_000);

  it('keeps a managed CA issued under the old name working: the new issuer signs with the same root', async () => {
    // What an older operator left for KeyPolicy <tenant>/legacy: objects under the unhashed names, with its labels.
    const legacy = legacyManagedCANames(tenantNs, 'legacy');
    const built = buildManagedCA({ ...policy(tenantNs, 'legacy'), spec: withKeyPolicyDefaults(policy(tenantNs, 'legacy', managed).spec) }, CLUSTER_RESOURCE_NAMESPACE, { legacyRoot: true });
    if (!built) throw new Error('no managed CA built');
    const old = [built.selfSigned, built.root, { ...built.issuer, metadata: { ...built.issuer.metadata, name: legacy.issuer } }] as KubernetesObject[];
    for (const o of old) await applyAsUser(c, o);
    const rootSecret = async () => c.core.readNamespacedSecret({ namespace: CLUSTER_RESOURCE_NAMESPACE, name: legacy.root }).catch(() => undefined);
    const rootPem = await eventually('legacy root issued', async () => (await rootSecret())?.data?.['tls.crt'], 60_000);

    tenantApplies(policy(tenantNs, 'legacy', managed) as unknown as KubernetesObject,
      service(tenantNs, 'legacy-svc', { keyPolicy: { name: 'legacy' } }) as unknown as KubernetesObject);
    const issuerName = managedCAIssuerName(tenantNs, 'legacy');
    await eventually('the new issuer signs with the legacy root', async () => ((await readIssuer(issuerName).catch(() => undefined))?.spec?.ca?.secretName === legacy.root ? true : undefined), 60_000);
    await issued(tenantNs, 'legacy-svc');
    const material = await readMaterial(c, tenantNs, 'legacy-svc');
    // The service's leaf verifies against the root issued under the old name.
    expect(material && issuedBy(material.cert, Buffer.from(rootPem, 'base64').toString('utf8'))).toBe(true);
    // No second root was made under the new name.
    expect(await exists(c, cm('Certificate', managedCACertificateName(tenantNs, 'legacy'), {}, { namespace: CLUSTER_RESOURCE_NAMESPACE }))).toBe(false);
    // Deleting the policy removes what carries its labels, under either name.
    await tenantDeletes('encryptedservice', 'legacy-svc');
    await tenantDeletes('keypolicy', 'legacy');
    for (const o of [...old, cm('ClusterIssuer', issuerName, {})]) expect(`${o.kind} ${o.metadata?.name} ${await exists(c, o)}`).toBe(`${o.kind} ${o.metadata?.name} false`);
  }, 240_000);
});

describe('finding 4: shared StorageClasses', () => {
  const withVolume = (name: string, size: string) => {
    const es = service(tenantNs, name);
    return { ...es, spec: { ...es.spec, atRest: { volumes: [{ name: 'data', provider: 'aws-ebs', size, aws: { type: 'gp3' } }] } } } as EncryptedService;
  };
  const className = (es: EncryptedService) => buildStorageClass(es, es.spec.atRest!.volumes![0]!).metadata!.name!;
  const storageClass = (name: string) => ({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name } }) as KubernetesObject;

  it("a tenant deleting its service does not take away a class another namespace's claim is on", async () => {
    const es = withVolume('vol', '1Gi');
    tenantApplies(es as unknown as KubernetesObject);
    const name = className(es);
    await eventually(`StorageClass ${name} made`, async () => ((await exists(c, storageClass(name))) ? true : undefined), 60_000);
    const claim = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'theirs', namespace: victimNs }, spec: { accessModes: ['ReadWriteOnce'], storageClassName: name, resources: { requests: { storage: '1Gi' } } } } as KubernetesObject;
    await applyAsUser(c, claim);
    try {
      await tenantDeletes('encryptedservice', 'vol');
      expect(await exists(c, storageClass(name))).toBe(true);
    } finally {
      await c.objects.delete(claim).catch(() => undefined);
      await c.core.patchNamespacedPersistentVolumeClaim({ namespace: victimNs, name: 'theirs', body: [{ op: 'remove', path: '/metadata/finalizers' }] },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch)).catch(() => undefined);
      await c.objects.delete(storageClass(name)).catch(() => undefined);
    }
  }, 180_000);

  it('does not take over a class of that name someone else made, and reports it (NameTaken)', async () => {
    const es = withVolume('squat-vol', '2Gi');
    const name = className(es);
    const foreign = { ...storageClass(name), provisioner: 'example.com/other', reclaimPolicy: 'Delete' } as KubernetesObject;
    await applyAsUser(c, foreign);
    clusterObjects.push(foreign);
    tenantApplies(es as unknown as KubernetesObject);
    const degraded = await eventually('squat-vol Degraded NameTaken', async () => {
      const live = (await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', namespace: tenantNs, plural: 'encryptedservices', name: 'squat-vol' })) as EncryptedService;
      return live.status?.conditions?.find((x) => x.reason === 'NameTaken');
    }, 60_000);
    expect(degraded.message).toContain(`StorageClass ${name} exists and was not made by Lockstep`);
    const live = await c.kc.makeApiClient(k8s.StorageV1Api).readStorageClass({ name });
    expect(live.metadata?.labels ?? {}).toEqual({});
    expect(live.provisioner).toBe('example.com/other');
    expect(await exists(c, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'squat-vol-data', namespace: tenantNs } })).toBe(false);
    await tenantDeletes('encryptedservice', 'squat-vol');
    expect(await exists(c, foreign)).toBe(true);
  }, 180_000);
});

describe('finding 6e: a root added through the bundle ConfigMap', () => {
  it("a tenant's lockstep.dev/added-roots annotation puts no root into the bundle; the tenant cannot write the operator's record", async () => {
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null',
      '-subj', '/CN=e2e injected root', '-days', '1', '-addext', 'basicConstraints=critical,CA:TRUE'], { encoding: 'utf8' });
    const evil = made.stdout;
    expect(evil).toContain('BEGIN CERTIFICATE');
    await eventually('a bundle in the tenant namespace', async () => ((await bundle(tenantNs)) ? true : undefined), 60_000);
    const annotated = tenant.kubectl(['annotate', '--overwrite', 'configmap', TRUST_BUNDLE_CONFIGMAP, '-n', tenantNs, `lockstep.dev/added-roots=${evil}`]);
    expect(annotated.stderr).toBe('');
    expect(annotated.status).toBe(0);
    // Make every service of the namespace reconcile its bundle.
    expect(tenant.kubectl(['label', '--overwrite', 'encryptedservice', 'app', '-n', tenantNs, `e2e.lockstep.dev/touch=${Date.now()}`]).status).toBe(0);
    await new Promise((r) => setTimeout(r, 5_000));
    expect(rootSerials(await bundle(tenantNs))).not.toContain(serialOfPem(evil));
    const record = tenant.kubectl(['create', 'configmap', `lockstep-trust-changes-${tenantNs}`, '-n', 'lockstep-system', `--from-literal=added-roots=${evil}`]);
    expect(record.status).not.toBe(0);
    expect(record.stderr).toMatch(/forbidden/i);
  }, 120_000);
});

async function readPolicy(namespace: string, name: string): Promise<KeyPolicy> {
  return (await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', namespace, plural: 'keypolicies', name })) as KeyPolicy;
}

