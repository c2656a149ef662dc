// Anomaly detection on certificate requests (issue 14, part 4), on the real API server with
// cert-manager. A tenant (kubectl --as, bound to `edit` plus cert-manager's aggregated rights)
// makes hand-made CertificateRequests: one claiming a Lockstep SPIFFE ID no service declares, one
// claiming another namespace's service with an extra SAN, and a burst for that service's identity.
// The approver denies them all; each is reported by a Warning Event in the right namespace and by
// the counters; each alert of the monitoring pack fires on the recorded scrapes (e2e/promrules),
// while a quiet service's ordinary issuance raises nothing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OID } from '../operator/approver/csr.js';
import { buildCsr } from '../operator/approver/test-csr.js';
import { buildPromrules, evaluate, everActive, everFiring, heldBefore, scrape, type Scrape } from './harness/alert-rules.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, deleteNamespaceAndFinalize, installCrds, waitForCondition } from './harness/lockstep.js';
import { createTestNamespace } from './harness/namespace.js';
import { externalOperator, startInProcess, type RunningOperator } from './harness/operator.js';
import type { Operator } from '../operator/app.js';
import { CERT_MANAGER_EDIT, createCertManagerTenant, type Tenant } from './harness/tenant.js';

const c = clients();
let tenantNs = '';
let shopNs = '';
let tenant: Tenant;
let work = '';
let promrules = '';
let operator: RunningOperator & { operator?: Operator };

const CM = { group: 'cert-manager.io', version: 'v1' } as const;
const BURST = 7;


const service = (name: string) => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace: shopNs },
  spec: { workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name }, ports: [{ name: 'https', port: 8443 }], keyPolicyRef: { name: 'default' } },
} as KubernetesObject);

const apiNames = () => ['api', `api.${shopNs}`, `api.${shopNs}.svc`, `api.${shopNs}.svc.cluster.local`];
const spiffe = (sa: string) => `spiffe://cluster.local/ns/${shopNs}/sa/${sa}`;

/** A hand-made request as cert-manager's Certificate controller would make one, with these SANs. */
function request(name: string, dnsNames: string[], uris: string[]): KubernetesObject {
  const csr = buildCsr({ dnsNames, uris, keyUsages: ['digital signature'], extKeyUsages: [OID.serverAuth, OID.clientAuth] });
  return {
    apiVersion: 'cert-manager.io/v1', kind: 'CertificateRequest', metadata: { name, namespace: tenantNs },
    spec: {
      request: Buffer.from(csr).toString('base64'), duration: '24h', usages: ['digital signature', 'server auth', 'client auth'],
      issuerRef: { group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'lockstep-ca' },
    },
  } as KubernetesObject;
}

interface Condition { type: string; status: string; reason?: string }
async function deniedAll(names: string[]): Promise<void> {
  await eventually(`${names.length} requests denied`, async () => {
    const list = (await c.custom.listNamespacedCustomObject({ ...CM, plural: 'certificaterequests', namespace: tenantNs })) as { items: (KubernetesObject & { status?: { conditions?: Condition[] } })[] };
    const denied = list.items.filter((r) => r.status?.conditions?.some((x) => x.type === 'Denied' && x.status === 'True'));
    return names.every((n) => denied.some((r) => r.metadata?.name === n)) ? true : undefined;
  }, 60_000, 500);
}

async function events(namespace: string): Promise<k8s.EventsV1Event[]> {
  return (await c.kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace })).items;
}

const metricsNow = async () => (await scrape(operator.operator?.manager.healthPort())).text;
const ANOMALY_REASONS = ['UnmatchedLockstepIdentity', 'SANsOutsideService', 'CertificateRequestBurst'];

beforeAll(async () => {
  if (externalOperator) return;
  work = mkdtempSync(join(tmpdir(), 'lockstep-anomalies-'));
  promrules = buildPromrules();
  installCrds();
  tenantNs = await createTestNamespace(c, 'e2e-anomaly-tenant');
  shopNs = await createTestNamespace(c, 'e2e-anomaly-shop');
  tenant = await createCertManagerTenant(c, tenantNs);
  operator = startInProcess(c.kc);
  await applyAsUser(c, { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'default', namespace: shopNs }, spec: {} } as KubernetesObject);
  await applyAsUser(c, service('api'));
  await applyAsUser(c, service('quiet'));
}, 600_000);

afterAll(async () => {
  if (externalOperator) return;
  await deleteNamespaceAndFinalize(c, tenantNs);
  await deleteNamespaceAndFinalize(c, shopNs);
  await operator?.stop();
  await c.objects.delete(CERT_MANAGER_EDIT).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

describe('anomalous CertificateRequests', () => {
  (externalOperator ? it.skip : it)('are denied, reported by Events where they belong and by counters, and each alert fires; a quiet service stays quiet', async () => {
    await waitForCondition(c, shopNs, 'api', 'TransitReady', 'True', 'CertificateIssued');
    await waitForCondition(c, shopNs, 'quiet', 'TransitReady', 'True', 'CertificateIssued');
    const identity = (svc: string, n: number) => `lockstep_certificaterequest_identity_requests_total{namespace="${shopNs}",service="${svc}"} ${n}`;
    await eventually('each service counted its own approved request', async () => {
      const text = await metricsNow();
      return text.includes(identity('api', 1)) && text.includes(identity('quiet', 1)) ? true : undefined;
    }, 30_000, 500);
    const before: Scrape[] = [await scrape(operator.operator?.manager.healthPort())];
    const attackMs = Date.now();

    const burst = Array.from({ length: BURST }, (_, i) => `burst-${i}`);
    const made = tenant.apply(
      request('ghost', [], [spiffe('ghost')]),
      request('extra-san', [...apiNames(), 'evil.example.com'], [spiffe('api')]),
      ...burst.map((name) => request(name, apiNames(), [spiffe('api')])),
    );
    expect(made.stderr).toBe('');
    expect(made.status).toBe(0);
    await deniedAll(['ghost', 'extra-san', ...burst]);

    // Events: on the request in the tenant's namespace when no service matches, else on the service in its own.
    const tenantEvents = await eventually('UnmatchedLockstepIdentity on the ghost request', async () => {
      const list = await events(tenantNs);
      return list.some((e) => e.reason === 'UnmatchedLockstepIdentity' && e.regarding?.name === 'ghost') ? list : undefined;
    });
    const ghost = tenantEvents.find((e) => e.reason === 'UnmatchedLockstepIdentity')!;
    expect(ghost).toMatchObject({ type: 'Warning', regarding: { kind: 'CertificateRequest', namespace: tenantNs } });
    expect(ghost.note).toContain('spec.username is empty');
    const shopEvents = await eventually('SANsOutsideService and CertificateRequestBurst on api', async () => {
      const list = (await events(shopNs)).filter((e) => e.regarding?.name === 'api');
      return list.some((e) => e.reason === 'SANsOutsideService') && list.some((e) => e.reason === 'CertificateRequestBurst') ? list : undefined;
    });
    const outside = shopEvents.find((e) => e.reason === 'SANsOutsideService')!;
    expect(outside).toMatchObject({ type: 'Warning', regarding: { kind: 'EncryptedService', namespace: shopNs } });
    expect(outside.note).toContain(`CertificateRequest ${tenantNs}/extra-san`);
    expect(outside.note).toContain('1 (DNS 1)');
    expect(outside.note).not.toContain('evil.example.com');
    const spike = shopEvents.find((e) => e.reason === 'CertificateRequestBurst')!;
    expect(spike.note).toContain(`latest from namespace ${tenantNs}`);
    // Only the ghost request's Event sits in the tenant's namespace; nothing about quiet anywhere.
    expect(tenantEvents.filter((e) => ANOMALY_REASONS.includes(e.reason ?? '')).map((e) => e.regarding?.name)).toEqual(['ghost']);
    expect((await events(shopNs)).filter((e) => ANOMALY_REASONS.includes(e.reason ?? '') && e.regarding?.name !== 'api')).toEqual([]);
    for (const e of [...tenantEvents, ...shopEvents]) expect(e.note ?? '').not.toMatch(/BEGIN|MII[A-Za-z0-9+/]{20}/);

    // Counters: bounded labels (request namespace; declared services), never the claimed ghost.
    const text = await metricsNow();
    expect(text).toContain(`lockstep_certificaterequest_unmatched_identity_total{namespace="${tenantNs}"} 1`);
    expect(text).toContain(`lockstep_certificaterequest_sans_outside_total{namespace="${shopNs}",service="api"} 1`);
    expect(text).toContain(identity('api', 2 + BURST));
    expect(text).toContain(identity('quiet', 1));
    expect(text).not.toContain('ghost');

    // The alerts, on a quiet hour before (the first scrape held), the recording, and 10 minutes after.
    const after: Scrape[] = [await scrape(operator.operator?.manager.healthPort())];
    await new Promise((r) => setTimeout(r, 2_000));
    after.push(await scrape(operator.operator?.manager.healthPort()));
    const evals = evaluate(promrules, work, [...heldBefore(before[0]!, 60 * 60_000), ...before, ...after], 10 * 60_000);
    const quietHour = evals.filter((e) => e.timeMs < attackMs);
    for (const name of ['LockstepCertificateRequestUnmatchedIdentity', 'LockstepCertificateRequestSANsOutsideService', 'LockstepCertificateRequestBurst']) {
      expect([name, everActive(quietHour, name)]).toEqual([name, false]);
      expect([name, everActive(evals, name, { namespace: shopNs, service: 'quiet' })]).toEqual([name, false]);
    }
    expect(everFiring(evals, 'LockstepCertificateRequestUnmatchedIdentity', { namespace: tenantNs })).toBe(true);
    expect(everActive(evals, 'LockstepCertificateRequestUnmatchedIdentity', { namespace: shopNs })).toBe(false);
    expect(everFiring(evals, 'LockstepCertificateRequestSANsOutsideService', { namespace: shopNs, service: 'api' })).toBe(true);
    expect(everFiring(evals, 'LockstepCertificateRequestBurst', { namespace: shopNs, service: 'api' })).toBe(true);
  }, 180_000);
});
