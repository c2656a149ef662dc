// The CertificateRequest approver (app.ts adds it; leader-only like every controller). It reads
// the request from its cache and its Certificate from the API server, lets decide.ts judge, and
// writes the one condition cert-manager waits for. The write carries the resourceVersion it
// judged, so a request someone else approved or denied meanwhile is never overwritten: a denied
// request is never approved, an approved one never denied.
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import {
  LABEL_KEY_POLICY, LABEL_MANAGED_BY, MANAGED_BY_VALUE, type EncryptedService, type IssuerRef, type KeyPolicy,
} from '../api/v1alpha1/index.js';
import { dnsNamesDenied, issuerDenied, trustDomainDenied, workloadIdentityDenied } from '../encryptedservice/claims.js';
import type { Problem } from '../encryptedservice/policy.js';
import type { Caches } from '../encryptedservice/reconciler.js';
import { isNotFound } from '../runtime/api-error.js';
import { Controller } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import type { Informer, ResourceRef } from '../runtime/informer.js';
import { splitKey } from '../runtime/keys.js';
import { systemClock, type Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import { csrDer, parseCsr } from './csr.js';
import {
  CERT_MANAGER_GROUP, decide, type CertificateLike, type CertificateRequestCondition, type CertificateRequestObject,
  type Decision, type DecisionInputs,
} from './decide.js';
import { BURST_LIMIT, BURST_WINDOW_MS } from './anomalies.js';
import { expectedCertificate } from './expected.js';
import { reportAnomalies, type AnomalyReportParts } from './report.js';
import { RequestBurst } from './request-burst.js';

/** Who approved or denied, in the condition and in Events (cert-manager's own says cert-manager.io). */
export const APPROVER_NAME = 'lockstep.dev';

export interface ApproverParts {
  kc: k8s.KubeConfig;
  /** Writes (leader-guarded). */
  writer: k8s.KubeConfig;
  caches: Caches;
  informer: <T extends KubernetesObject>(name: string, ref: ResourceRef, transform?: (obj: KubernetesObject) => T) => Informer<T>;
  approveOthers: boolean;
  defaultIssuer?: IssuerRef;
  events: EventRecorder;
  metrics: OperatorMetrics;
  logger: Logger;
  clock?: Clock;
}

const CM = { group: CERT_MANAGER_GROUP, version: 'v1' } as const;

export function conditionOf(cr: CertificateRequestObject, type: string): CertificateRequestCondition | undefined {
  return cr.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

/** Already decided by anyone, or already signed or failed: cert-manager's approver stops there too. */
export function settled(cr: CertificateRequestObject): boolean {
  const ready = cr.status?.conditions?.find((c) => c.type === 'Ready');
  return conditionOf(cr, 'Approved') !== undefined || conditionOf(cr, 'Denied') !== undefined
    || ready?.reason === 'Issued' || ready?.reason === 'Failed';
}

/**
 * What the cache keeps of a CertificateRequest. The approver must see every request in the
 * cluster (any one may claim a Lockstep identity), so this cache grows with cert-manager's
 * traffic, not with Lockstep's: it keeps what the decision and the write read, and drops the
 * issued certificate and CA (never read) and, once settled, the CSR (a settled request is
 * never judged again).
 */
export function approverView(obj: KubernetesObject): CertificateRequestObject & KubernetesObject {
  const cr = obj as CertificateRequestObject & KubernetesObject & { status?: { certificate?: string; ca?: string } };
  const { certificate: _issued, ca: _ca, ...status } = cr.status ?? {};
  const { request: _csr, ...judged } = cr.spec ?? {};
  return { ...cr, spec: settled(cr) ? judged : cr.spec, ...(cr.status ? { status } : {}) };
}

export function buildApproverController(parts: ApproverParts): Controller {
  const requests = parts.informer<CertificateRequestObject & KubernetesObject>('certificaterequests', { ...CM, plural: 'certificaterequests' }, approverView);
  const custom = parts.kc.makeApiClient(k8s.CustomObjectsApi);
  const writer = parts.writer.makeApiClient(k8s.CustomObjectsApi);
  const log = parts.logger.child('approver');
  const decisions = parts.metrics.certificateRequestDecisions;

  // The operator's own Certificates are in its cache: the same object when the uid is the one
  // the request names (one read less per issuance). Anything else is read directly: a hand-made
  // Certificate carries no label the cache selects on.
  const certificateOf = async (cr: CertificateRequestObject): Promise<CertificateLike | undefined> => {
    const ref = cr.metadata.ownerReferences?.find((r) => r.controller === true && r.kind === 'Certificate');
    if (!ref) return undefined;
    const cached = parts.caches.certificates.get(cr.metadata.namespace, ref.name);
    if (cached && cached.metadata?.uid === ref.uid) return cached as CertificateLike;
    try {
      return (await custom.getNamespacedCustomObject({ ...CM, plural: 'certificates', namespace: cr.metadata.namespace ?? '', name: ref.name })) as CertificateLike;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  const isManagedCA = (issuer: Required<IssuerRef>): boolean => {
    // Cluster-scoped and labelled by the operator: a tenant can neither create nor label one.
    const obj = parts.caches.clusterIssuers.get(undefined, issuer.name) as (KubernetesObject & { spec?: { ca?: unknown } }) | undefined;
    const labels = obj?.metadata?.labels ?? {};
    return labels[LABEL_MANAGED_BY] === MANAGED_BY_VALUE && labels[LABEL_KEY_POLICY] !== undefined && obj?.spec?.ca !== undefined;
  };

  // The same refusals as the reconciler's (EncryptedServiceReconciler.refusedClaim).
  const refused = (es: EncryptedService, policy: KeyPolicy, issuer: Required<IssuerRef>): Problem | undefined => {
    const issuerObj = issuer.kind === 'ClusterIssuer' ? parts.caches.clusterIssuers.get(undefined, issuer.name) : undefined;
    return issuerDenied(es, policy, issuer, {
      ...(issuerObj ? { clusterIssuer: issuerObj } : {}),
      ...(parts.defaultIssuer ? { operatorDefault: parts.defaultIssuer } : {}),
    })
      ?? trustDomainDenied(es, policy)
      ?? dnsNamesDenied(es, policy)
      ?? workloadIdentityDenied(es, policy, parts.caches.pods.list(es.metadata.namespace));
  };

  const expected = (es: EncryptedService) => expectedCertificate(es, (ns, n) => parts.caches.keyPolicies.get(ns, n), parts.defaultIssuer, refused);
  const service = (ref: { namespace: string; name: string }) => parts.caches.encryptedServices.get(ref.namespace, ref.name);
  const anomalies: AnomalyReportParts = {
    events: parts.events,
    metrics: parts.metrics,
    burst: new RequestBurst(BURST_LIMIT, BURST_WINDOW_MS, parts.clock ?? systemClock),
    service,
    namesOf: (ref) => {
      const es = service(ref);
      const want = es && expected(es);
      if (!want || 'problem' in want) return undefined;
      const spec = want.certificate.spec as { dnsNames?: string[]; uris?: string[] };
      return [...(spec.dnsNames ?? []), ...(spec.uris ?? [])];
    },
  };

  async function reconcile(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const cr = requests.get(namespace, name);
    if (!cr || settled(cr)) return;
    let csr: DecisionInputs['csr'];
    try {
      csr = parseCsr(csrDer(Buffer.from(cr.spec.request ?? '', 'base64').toString('latin1')));
    } catch (err) {
      csr = { error: (err as Error).message };
    }
    const decision = decide(cr, {
      csr,
      certificate: await certificateOf(cr),
      services: parts.caches.encryptedServices.list(),
      expected,
      isManagedCA,
      approveOthers: parts.approveOthers,
    });
    if (decision.verdict === 'ignore') return;
    await write(cr, decision);
    decisions.inc({ decision: decision.verdict === 'approve' ? 'approved' : 'denied', reason: decision.reason });
    reportAnomalies(anomalies, cr, decision, 'error' in csr ? undefined : csr);
    const request = `CertificateRequest ${namespace}/${name}`;
    if (decision.verdict === 'approve') {
      parts.events.record(cr, 'Normal', decision.reason, decision.message, 'Approve');
      log.info('approved', { object: key, reason: decision.reason, service: decision.service });
      return;
    }
    parts.events.record(cr, 'Warning', decision.reason, `denied: ${decision.message}`, 'Deny');
    // The service whose identity was claimed hears of it too, in its own namespace.
    for (const ref of decision.claimed) {
      const es = parts.caches.encryptedServices.get(ref.namespace, ref.name);
      if (es) parts.events.record(es, 'Warning', 'IdentityClaimDenied', `${request} claimed this service's identity and was denied: ${decision.reason}`, 'Deny');
    }
    log.warn('denied', { object: key, reason: decision.reason, message: decision.message, claimed: decision.claimed });
  }

  async function write(cr: CertificateRequestObject, decision: Exclude<Decision, { verdict: 'ignore' }>): Promise<void> {
    const condition: CertificateRequestCondition = {
      type: decision.verdict === 'approve' ? 'Approved' : 'Denied',
      status: 'True',
      reason: decision.reason,
      message: `${APPROVER_NAME}: ${decision.message}`,
      lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    };
    // A merge patch carrying the resourceVersion judged: 409 if the request changed since, and
    // the retry judges the new state (which may already be decided) instead of overwriting it.
    await writer.patchNamespacedCustomObjectStatus(
      {
        ...CM, plural: 'certificaterequests', namespace: cr.metadata.namespace ?? '', name: cr.metadata.name ?? '',
        body: { metadata: { resourceVersion: cr.metadata.resourceVersion }, status: { conditions: [...(cr.status?.conditions ?? []), condition] } },
        fieldManager: 'lockstep-approver',
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }

  return new Controller({
    name: 'approver',
    reconcile,
    logger: parts.logger,
    metrics: parts.metrics,
    watches: [{ informer: requests }],
  });
}
