// What a tenant's certificate may claim, attacked by a tenant (kubectl --as: `edit` plus the
// Lockstep kinds in its own namespace) on the real API server and cert-manager. The KeyPolicy
// decides the issuers, DNS names and trust domain; the administrator grants ClusterIssuers per
// namespace; the pods a service selects must run as the account its SPIFFE ID names. Every
// refusal is a condition with its reason and an Event, and no Certificate claims the identity.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EncryptedService, KeyPolicy } from '../operator/api/v1alpha1/index.js';
import { managedCAIssuerName } from '../operator/keypolicy/names.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, condition, deleteNamespaceAndFinalize, exists, installCrds, waitForCondition } from './harness/lockstep.js';
import { createTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';
import { createTenant, type Tenant } from './harness/tenant.js';

const c = clients();
let own = '';
let shop = '';
let tenant: Tenant;
let operator: RunningOperator;
let shared = '';

type Certificate = KubernetesObject & { spec: { dnsNames?: string[]; uris?: string[]; issuerRef?: Record<string, string> } };

const keyPolicy = (name: string, spec: KeyPolicy['spec'], namespace = own): KeyPolicy =>
  ({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name, namespace }, spec: { keyWrap: { algorithm: 'A256KW' }, ...spec } });

function service(name: string, policy: string, extra: Partial<EncryptedService['spec']> = {}, sa = name): EncryptedService {
  return {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace: own },
    spec: {
      workload: { selector: { matchLabels: { app: name } }, serviceAccountName: sa },
      ports: [{ name: 'https', port: 8443 }], keyPolicyRef: { name: policy }, ...extra,
    },
  };
}

const pod = (name: string, app: string, serviceAccountName: string): KubernetesObject => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: own, labels: { app } },
  spec: { serviceAccountName, containers: [{ name: 'app', image: 'registry.invalid/app:never-pulled' }] },
} as KubernetesObject);

/** As the tenant; fails the test when the API server refuses (the attack must reach the operator). */
function asTenant(...objects: KubernetesObject[]): void {
  const result = tenant.apply(...objects);
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
}

async function certificates(): Promise<Certificate[]> {
  const list = await c.custom.listNamespacedCustomObject({ group: 'cert-manager.io', version: 'v1', namespace: own, plural: 'certificates' });
  return (list as { items: Certificate[] }).items;
}

/** The refusal as a user sees it: TransitReady and Ready False with the reason, and a Warning Event. */
async function expectRefused(name: string, reason: string, message: string): Promise<void> {
  const es = await waitForCondition(c, own, name, 'TransitReady', 'False', reason);
  expect(condition(es, 'TransitReady')?.message).toContain(message);
  expect(condition(es, 'Ready')?.status).toBe('False');
  expect(condition(es, 'Degraded')).toMatchObject({ status: 'True', reason });
  expect(es.status?.spiffeID).toBeUndefined();
  const events = c.kc.makeApiClient(k8s.EventsV1Api);
  const event = await eventually(`a ${reason} Event on ${name}`, async () =>
    (await events.listNamespacedEvent({ namespace: own })).items.find((e) =>
      e.regarding?.name === name && e.regarding.kind === 'EncryptedService' && e.reason === reason));
  expect(event.type).toBe('Warning');
  expect(event.note).toContain(message);
  expect(await exists(c, { apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name, namespace: own } })).toBe(false);
}

const issued = (name: string) => waitForCondition(c, own, name, 'TransitReady', 'True', 'CertificateIssued', 120_000);
const readCertificate = async (name: string) =>
  (await c.objects.read({ apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name, namespace: own } })) as Certificate;

beforeAll(async () => {
  installCrds();
  own = await createTestNamespace(c, 'e2e-tenant-iss');
  shop = await createTestNamespace(c, 'e2e-shop');
  tenant = await createTenant(c, own);
  shared = `e2e-shared-${own}`;
  operator = startInProcess(c.kc);
  // What the administrator set up: shop's KeyPolicy with its own managed CA, a ClusterIssuer not
  // granted to anyone yet, and an Issuer in the tenant's namespace.
  await applyAsUser(c, keyPolicy('shop', { certificates: { defaultIssuer: { managedCA: {} } } }, shop));
  await applyAsUser(c, { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: shared }, spec: { ca: { secretName: 'lockstep-root-ca' } } } as KubernetesObject);
  await applyAsUser(c, { apiVersion: 'cert-manager.io/v1', kind: 'Issuer', metadata: { name: 'team-ca', namespace: own }, spec: { selfSigned: {} } } as KubernetesObject);
  await eventually('shop\'s managed CA ClusterIssuer', async () =>
    ((await exists(c, { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: managedCAIssuerName(shop, 'shop') } })) ? true : undefined), 60_000);
  // The tenant's own policy: it may list whatever it likes, the grant and the hard rules still hold.
  asTenant(keyPolicy('tenant', {
    certificates: {
      allowedIssuers: [{ name: managedCAIssuerName(shop, 'shop'), kind: 'ClusterIssuer' }, { name: shared, kind: 'ClusterIssuer' }],
      allowedDNSNames: [`*.${shop}.svc.cluster.local`, 'api.tenant.example'],
    },
  }));
});

afterAll(async () => {
  await deleteNamespaceAndFinalize(c, own);
  await deleteNamespaceAndFinalize(c, shop);
  await c.objects.delete({ apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: shared } } as KubernetesObject).catch(() => undefined);
  await operator?.stop();
});

describe('issuers', () => {
  it('another namespace\'s managed CA cannot be named, even when the tenant\'s policy lists it', async () => {
    asTenant(service('steal-ca', 'tenant', { transit: { issuerRef: { name: managedCAIssuerName(shop, 'shop'), kind: 'ClusterIssuer' } } }));
    await expectRefused('steal-ca', 'IssuerNotAllowed', `is the managed CA of KeyPolicy ${shop}/shop; only that policy's services may use it`);
  });

  it('a ClusterIssuer needs the administrator\'s grant for the namespace; once granted, it issues', async () => {
    asTenant(service('shared-user', 'tenant', { transit: { issuerRef: { name: shared, kind: 'ClusterIssuer' } } }));
    await expectRefused('shared-user', 'IssuerNotAllowed', `ClusterIssuer ${shared} is not granted to namespace ${own}`);
    // A tenant cannot grant itself: the annotation is on a cluster-scoped object.
    const selfGrant = tenant.kubectl(['annotate', 'clusterissuer', shared, `lockstep.dev/allowed-namespaces=${own}`]);
    expect(selfGrant.status).not.toBe(0);
    expect(selfGrant.stderr).toMatch(/forbidden/i);

    await c.objects.patch(
      { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: shared, annotations: { 'lockstep.dev/allowed-namespaces': `other, ${own}` } } } as KubernetesObject,
      undefined, undefined, 'lockstep-e2e-admin', undefined, 'application/merge-patch+json');
    await issued('shared-user');
    expect((await readCertificate('shared-user')).spec.issuerRef).toMatchObject({ name: shared, kind: 'ClusterIssuer' });
  });

  it('an issuer the policy does not list is refused; listed by the policy, it issues', async () => {
    asTenant(keyPolicy('strict', {}));
    asTenant(service('team', 'strict', { transit: { issuerRef: { name: 'team-ca', kind: 'Issuer' } } }));
    await expectRefused('team', 'IssuerNotAllowed', `KeyPolicy ${own}/strict does not allow Issuer team-ca: use its default issuer (ClusterIssuer lockstep-ca) or add it to the policy's spec.certificates.allowedIssuers`);

    asTenant(keyPolicy('strict', { certificates: { allowedIssuers: [{ name: 'team-ca', kind: 'Issuer' }] } }));
    await issued('team');
    expect((await readCertificate('team')).spec.issuerRef).toMatchObject({ name: 'team-ca', kind: 'Issuer' });
  });
});

describe('DNS names and trust domain', () => {
  it('another namespace\'s Service name is refused, whatever the policy permits', async () => {
    const claimed = `api.${shop}.svc.cluster.local`;
    asTenant(service('shop-api', 'tenant', { transit: { extraDNSNames: [claimed] } }));
    await expectRefused('shop-api', 'DNSNameNotAllowed', `extraDNSNames ${claimed} (namespace ${shop}) name Services of another namespace`);
    expect((await certificates()).filter((x) => x.spec.dnsNames?.includes(claimed))).toEqual([]);
  });

  it('a wildcard or foreign name needs a policy pattern that permits it', async () => {
    asTenant(service('wild', 'tenant', { transit: { extraDNSNames: ['*.tenant.example'] } }));
    await expectRefused('wild', 'DNSNameNotAllowed', `KeyPolicy ${own}/tenant does not permit extraDNSNames *.tenant.example`);
    expect((await certificates()).filter((x) => x.spec.dnsNames?.includes('*.tenant.example'))).toEqual([]);

    // The policy's exact name is permitted; the wildcard SAN only by the identical wildcard pattern.
    asTenant(service('named', 'tenant', { transit: { extraDNSNames: ['api.tenant.example'] } }));
    await issued('named');
    expect((await readCertificate('named')).spec.dnsNames).toContain('api.tenant.example');
  });

  it('a trust domain other than the policy\'s is refused; the policy\'s own issues', async () => {
    asTenant(service('foreign-td', 'tenant', { transit: { trustDomain: 'shop.example' } }));
    await expectRefused('foreign-td', 'TrustDomainNotAllowed', `transit.trustDomain shop.example is not KeyPolicy ${own}/tenant's trust domain cluster.local`);
    expect((await certificates()).filter((x) => x.spec.uris?.some((u) => u.startsWith('spiffe://shop.example/')))).toEqual([]);

    asTenant(keyPolicy('td', { certificates: { trustDomain: 'tenant.example' } }));
    asTenant(service('own-td', 'td', { transit: { trustDomain: 'tenant.example' } }));
    await issued('own-td');
    expect((await readCertificate('own-td')).spec.uris).toEqual([`spiffe://tenant.example/ns/${own}/sa/own-td`]);
  });
});

describe('the service account is checked against the selected pods', () => {
  const claimed = () => `spiffe://cluster.local/ns/${own}/sa/payments`;

  beforeAll(() => {
    asTenant(keyPolicy('accounts', { allowed: { namespaces: [own], serviceAccounts: [`${own}/payments`] } }));
    // On a cluster with a node the ServiceAccount admission plugin needs the accounts to exist.
    asTenant(...['payments', 'imposter'].map((name) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: own } }) as KubernetesObject));
  });

  it('an allowed account\'s SPIFFE ID is refused while the selected pods run as another account', async () => {
    asTenant(pod('imposter-0', 'imposter', 'imposter'));
    asTenant(service('imposter', 'accounts', {}, 'payments'));
    await expectRefused('imposter', 'IdentityMismatch', 'selected pods do not run as the declared service account payments (imposter-0 runs as imposter)');
    expect((await certificates()).filter((x) => x.spec.uris?.includes(claimed()))).toEqual([]);
  });

  it('without pods a restricted identity waits; pods running as the account get it; a later impostor freezes it', async () => {
    asTenant(service('payments', 'accounts', {}, 'payments'));
    await expectRefused('payments', 'WorkloadNotFound', 'no pod matches spec.workload.selector yet');

    asTenant(pod('payments-0', 'payments', 'payments'));
    await issued('payments');
    const before = await readCertificate('payments');
    expect(before.spec.uris).toEqual([claimed()]);
    const tlsCrt = async () => (await c.core.readNamespacedSecret({ name: 'payments-tls', namespace: own })).data?.['tls.crt'];
    const leaf = await tlsCrt();

    // A pod running as another account joins the selector: nothing is issued for it, and the
    // Certificate and Secret the running pods use stay exactly as they were.
    asTenant(pod('payments-evil', 'payments', 'imposter'));
    const es = await waitForCondition(c, own, 'payments', 'TransitReady', 'False', 'IdentityMismatch');
    expect(condition(es, 'TransitReady')?.message).toContain('payments-evil runs as imposter');
    expect(es.status?.certificate?.serialNumber).toBeDefined();
    expect((await readCertificate('payments')).spec).toEqual(before.spec);
    expect(await tlsCrt()).toBe(leaf);

    expect(tenant.kubectl(['delete', 'pod', 'payments-evil', '-n', own, '--wait=false']).status).toBe(0);
    await issued('payments');
  });
});
