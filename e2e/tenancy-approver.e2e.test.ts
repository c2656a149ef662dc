// Tenancy, finding 2 (last part): cert-manager CertificateRequests for Lockstep identities are
// approved only when they match a declared EncryptedService. A tenant (kubectl --as, bound to
// `edit` plus the cert-manager rights cert-manager's Helm chart aggregates into it) makes a
// Certificate and a raw CertificateRequest claiming another namespace's service identity: both
// are denied with a reason, nothing is signed, the victim service hears of it; declared services,
// the tenant's own included, are still issued. The local cluster runs cert-manager without its
// built-in approver (cluster-up.sh), so the operator's approver is the only one.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { OID } from '../operator/approver/csr.js';
import { buildCsr } from '../operator/approver/test-csr.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, deleteNamespaceAndFinalize, installCrds, waitForCondition } from './harness/lockstep.js';
import { createTestNamespace } from './harness/namespace.js';
import { externalOperator, startInProcess, type RunningOperator } from './harness/operator.js';
import type { Operator } from '../operator/app.js';
import { CERT_MANAGER_EDIT, createCertManagerTenant, runKubectl, type Tenant } from './harness/tenant.js';

const c = clients();
let tenantNs = '';
let shopNs = '';
let tenant: Tenant;
let operator: RunningOperator & { operator?: Operator };

interface Condition { type: string; status: string; reason?: string; message?: string }
interface CertificateRequest extends KubernetesObject {
  spec: { request: string };
  status?: { conditions?: Condition[]; certificate?: string };
}

const CM = { group: 'cert-manager.io', version: 'v1' } as const;


const keyPolicy = (namespace: string) => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'default', namespace }, spec: {},
});

const service = (namespace: string, name: string) => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace },
  spec: {
    workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name },
    ports: [{ name: 'https', port: 8443 }],
    keyPolicyRef: { name: 'default' },
  },
});

const shopNames = () => ['api', `api.${shopNs}`, `api.${shopNs}.svc`, `api.${shopNs}.svc.cluster.local`];
const shopId = () => `spiffe://cluster.local/ns/${shopNs}/sa/api`;

async function requestsOf(namespace: string, certificate: string): Promise<CertificateRequest[]> {
  const list = (await c.custom.listNamespacedCustomObject({ ...CM, plural: 'certificaterequests', namespace })) as { items: CertificateRequest[] };
  return list.items.filter((r) => r.metadata?.annotations?.['cert-manager.io/certificate-name'] === certificate);
}

const conditionOf = (r: CertificateRequest, type: string) => r.status?.conditions?.find((x) => x.type === type);

async function denied(namespace: string, name: string): Promise<CertificateRequest> {
  return eventually(`CertificateRequest ${namespace}/${name} Denied`, async () => {
    const r = (await c.custom.getNamespacedCustomObject({ ...CM, plural: 'certificaterequests', namespace, name })) as CertificateRequest;
    return conditionOf(r, 'Denied')?.status === 'True' ? r : undefined;
  }, 60_000);
}

async function eventsAbout(namespace: string, name: string): Promise<k8s.EventsV1Event[]> {
  return (await c.kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace })).items.filter((e) => e.regarding?.name === name);
}

beforeAll(async () => {
  installCrds();
  tenantNs = await createTestNamespace(c, 'e2e-approver-tenant');
  shopNs = await createTestNamespace(c, 'e2e-approver-shop');
  tenant = await createCertManagerTenant(c, tenantNs);
  operator = startInProcess(c.kc);
  await applyAsUser(c, keyPolicy(shopNs));
  await applyAsUser(c, service(shopNs, 'api'));
});

afterAll(async () => {
  await deleteNamespaceAndFinalize(c, tenantNs);
  await deleteNamespaceAndFinalize(c, shopNs);
  await operator?.stop();
  await c.objects.delete(CERT_MANAGER_EDIT).catch(() => undefined);
});

describe('the approver', () => {
  it('approves what the operator requests for declared services, the tenant\'s own included', async () => {
    await waitForCondition(c, shopNs, 'api', 'TransitReady', 'True', 'CertificateIssued');
    const applied = tenant.apply(keyPolicy(tenantNs), service(tenantNs, 'web'));
    expect(applied.stderr).toBe('');
    await waitForCondition(c, tenantNs, 'web', 'TransitReady', 'True', 'CertificateIssued');
    const [request] = await requestsOf(tenantNs, 'web');
    expect(conditionOf(request!, 'Approved')).toMatchObject({ status: 'True', reason: 'MatchesEncryptedService' });
    expect(conditionOf(request!, 'Approved')?.message).toContain(`EncryptedService ${tenantNs}/web`);
  });

  it('denies a tenant\'s Certificate claiming another namespace\'s SPIFFE ID and DNS names: nothing is signed', async () => {
    const made = tenant.apply({
      apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name: 'stolen', namespace: tenantNs },
      spec: {
        secretName: 'stolen-tls', duration: '24h', dnsNames: shopNames(), uris: [shopId()],
        usages: ['digital signature', 'server auth', 'client auth'],
        privateKey: { algorithm: 'ECDSA', size: 256 },
        issuerRef: { group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'lockstep-ca' },
      },
    } as KubernetesObject);
    expect(made.stderr).toBe('');
    expect(made.status).toBe(0);
    const name = (await eventually('a request for Certificate stolen', async () => (await requestsOf(tenantNs, 'stolen'))[0]?.metadata?.name))!;
    const request = await denied(tenantNs, name);
    const why = conditionOf(request, 'Denied')!;
    expect(why.reason).toBe('NotFromDeclaredService');
    expect(why.message).toContain(`SPIFFE ID ${shopId()}`);
    expect(why.message).toContain(`DNS name api.${shopNs}.svc of EncryptedService ${shopNs}/api`);
    // cert-manager fails the request for good and signs nothing; no TLS Secret appears.
    await eventually('the request failed as denied', async () => {
      const r = (await c.custom.getNamespacedCustomObject({ ...CM, plural: 'certificaterequests', namespace: tenantNs, name })) as CertificateRequest;
      return conditionOf(r, 'Ready')?.reason === 'Denied' ? r : undefined;
    });
    const after = (await c.custom.getNamespacedCustomObject({ ...CM, plural: 'certificaterequests', namespace: tenantNs, name })) as CertificateRequest;
    expect(after.status?.certificate ?? '').toBe('');
    expect(conditionOf(after, 'Approved')).toBeUndefined();
    await expect(c.core.readNamespacedSecret({ name: 'stolen-tls', namespace: tenantNs }).then((s) => s.data?.['tls.crt'] ?? '')).rejects.toMatchObject({ code: 404 });
    // Reported where the tenant and the victim each look.
    await eventually('a Warning Event on the request', async () =>
      (await eventsAbout(tenantNs, name)).find((e) => e.type === 'Warning' && e.reason === 'NotFromDeclaredService'));
    await eventually('a Warning Event on the claimed service', async () =>
      (await eventsAbout(shopNs, 'api')).find((e) => e.reason === 'IdentityClaimDenied' && (e.note ?? '').includes(`${tenantNs}/${name}`)));
    if (!externalOperator) {
      const metrics = await operator.operator!.metrics.registry.metrics();
      expect(metrics).toMatch(/lockstep_certificaterequest_decisions_total\{decision="denied",reason="NotFromDeclaredService"\} [1-9]/);
    }
  });

  it('denies a raw CertificateRequest for the same identity, which the tenant cannot approve itself', async () => {
    const csr = buildCsr({ dnsNames: shopNames(), uris: [shopId()], keyUsages: ['digital signature'], extKeyUsages: [OID.serverAuth, OID.clientAuth] });
    const made = tenant.apply({
      apiVersion: 'cert-manager.io/v1', kind: 'CertificateRequest', metadata: { name: 'raw', namespace: tenantNs },
      spec: {
        request: Buffer.from(csr).toString('base64'), duration: '24h', usages: ['digital signature', 'server auth', 'client auth'],
        issuerRef: { group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'lockstep-ca' },
      },
    } as KubernetesObject);
    expect(made.stderr).toBe('');
    const approve = tenant.kubectl(['patch', 'certificaterequest', 'raw', '-n', tenantNs, '--subresource', 'status', '--type', 'merge',
      '-p', '{"status":{"conditions":[{"type":"Approved","status":"True","reason":"self","message":"self-approved"}]}}']);
    expect(approve.status).not.toBe(0);
    expect(approve.stderr).toMatch(/forbidden/i);
    const request = await denied(tenantNs, 'raw');
    expect(conditionOf(request, 'Denied')).toMatchObject({ reason: 'NotFromDeclaredService' });
    expect(conditionOf(request, 'Denied')?.message).toContain('was not made by cert-manager for a Certificate the operator generated');
    await eventually('the request failed as denied', async () => {
      const r = (await c.custom.getNamespacedCustomObject({ ...CM, plural: 'certificaterequests', namespace: tenantNs, name: 'raw' })) as CertificateRequest;
      return conditionOf(r, 'Ready')?.reason === 'Denied' ? r : undefined;
    });
  });

  it('denies a Certificate that copies Lockstep\'s labels and owner onto the tenant\'s service with a foreign DNS name', async () => {
    const web = (await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'encryptedservices', namespace: tenantNs, name: 'web' })) as KubernetesObject;
    const made = tenant.apply({
      apiVersion: 'cert-manager.io/v1', kind: 'Certificate',
      metadata: {
        name: 'web-extra', namespace: tenantNs,
        labels: { 'app.kubernetes.io/managed-by': 'lockstep', 'lockstep.dev/encrypted-service': 'web', 'lockstep.dev/component': 'transit' },
        ownerReferences: [{ apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', name: 'web', uid: web.metadata!.uid!, controller: true }],
      },
      spec: {
        secretName: 'web-extra-tls', duration: '24h', dnsNames: ['web', `web.${tenantNs}.svc`, `api.${shopNs}.svc.cluster.local`],
        uris: [`spiffe://cluster.local/ns/${tenantNs}/sa/web`], usages: ['digital signature', 'server auth', 'client auth'],
        privateKey: { algorithm: 'ECDSA', size: 256 }, issuerRef: { group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'lockstep-ca' },
      },
    } as KubernetesObject);
    expect(made.stderr).toBe('');
    const name = (await eventually('a request for Certificate web-extra', async () => (await requestsOf(tenantNs, 'web-extra'))[0]?.metadata?.name))!;
    const request = await denied(tenantNs, name);
    expect(conditionOf(request, 'Denied')).toMatchObject({ reason: 'NotFromDeclaredService' });
    expect(conditionOf(request, 'Denied')?.message).toContain(`Certificate web-extra is not the one generated for a declared EncryptedService in namespace ${tenantNs}`);
  });

  (externalOperator ? it.skip : it)('keeps a denial through an operator restart: a denied request is never approved', async () => {
    const before = (await c.custom.getNamespacedCustomObject({ ...CM, plural: 'certificaterequests', namespace: tenantNs, name: 'raw' })) as CertificateRequest;
    await operator.stop();
    operator = startInProcess(c.kc);
    // The new operator has judged every request once it has issued a fresh one.
    await applyAsUser(c, service(shopNs, 'second'));
    await waitForCondition(c, shopNs, 'second', 'TransitReady', 'True', 'CertificateIssued');
    const after = (await c.custom.getNamespacedCustomObject({ ...CM, plural: 'certificaterequests', namespace: tenantNs, name: 'raw' })) as CertificateRequest;
    expect(after.status?.conditions?.filter((x) => x.type === 'Approved' || x.type === 'Denied'))
      .toEqual(before.status?.conditions?.filter((x) => x.type === 'Approved' || x.type === 'Denied'));
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(runKubectl(['get', 'secret', 'stolen-tls', '-n', tenantNs]).status).not.toBe(0);
  });
});
