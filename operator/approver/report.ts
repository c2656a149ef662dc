// Reports what anomalies.ts finds in a judged request: counters (bounded by declared services
// and namespaces) and a Warning Event per anomalous request, on the EncryptedService whose
// identity was asked for, else on the request itself, always in that object's own namespace.
// Notes name the request and who made it, never the CSR or the names it asks for (the request's
// Denied condition lists those for whoever may read it).
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EncryptedService } from '../api/v1alpha1/index.js';
import type { EventRecorder } from '../runtime/events.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import { anomaliesOf, BURST_LIMIT, BURST_WINDOW_MS, describeOutside } from './anomalies.js';
import type { ParsedCsr } from './csr.js';
import type { CertificateRequestObject, Decision, ServiceRef } from './decide.js';
import type { RequestBurst } from './request-burst.js';

export const AnomalyReasons = {
  UnmatchedIdentity: 'UnmatchedLockstepIdentity',
  SANsOutsideService: 'SANsOutsideService',
  RequestBurst: 'CertificateRequestBurst',
} as const;

export interface AnomalyReportParts {
  events: EventRecorder;
  metrics: OperatorMetrics;
  burst: RequestBurst;
  service(ref: ServiceRef): EncryptedService | undefined;
  /** The DNS names and URIs the service's certificate carries, or undefined when it gets none. */
  namesOf(ref: ServiceRef): readonly string[] | undefined;
}

/**
 * cert-manager's webhook sets spec.username from the authenticated creator; without the webhook
 * (or before it ran) the field is whatever the creator wrote, so the note says where it came from.
 */
function requester(cr: CertificateRequestObject): string {
  const user = cr.spec.username;
  return user ? `requested by ${user} (spec.username)` : 'requester not recorded (spec.username is empty)';
}

export function reportAnomalies(parts: AnomalyReportParts, cr: CertificateRequestObject & KubernetesObject, decision: Decision, csr: ParsedCsr | undefined): void {
  const found = anomaliesOf(decision, csr, parts.namesOf);
  const request = `CertificateRequest ${cr.metadata.namespace}/${cr.metadata.name}`;
  const by = requester(cr);
  if (found.unmatched) {
    parts.metrics.certificateRequestsUnmatched.inc({ namespace: cr.metadata.namespace ?? '' });
    parts.events.record(cr, 'Warning', AnomalyReasons.UnmatchedIdentity,
      `claims a Lockstep identity that no EncryptedService declares and was denied; ${by}`, 'Detect');
  }
  for (const ref of found.identities) {
    parts.metrics.countIdentityRequest(ref.namespace, ref.name);
    const es = parts.service(ref);
    // One note per requester and window: the recorder counts repeats into one Event's series, so a
    // flood costs one Event write per interval, not one per request.
    if (parts.burst.record(`${ref.namespace}/${ref.name}`) && es) {
      parts.events.record(es, 'Warning', AnomalyReasons.RequestBurst,
        `more than ${BURST_LIMIT} CertificateRequests asked for this service's identity within ${BURST_WINDOW_MS / 60_000} minutes (renewals make one per certificate lifetime); latest from namespace ${cr.metadata.namespace}, ${by}`, 'Detect');
    }
  }
  for (const { service: ref, counts } of found.outside) {
    parts.metrics.countSansOutside(ref.namespace, ref.name);
    const es = parts.service(ref);
    if (es) {
      parts.events.record(es, 'Warning', AnomalyReasons.SANsOutsideService,
        `${request} claimed this service's identity with ${describeOutside(counts)} SANs outside its names and was denied; ${by}`, 'Detect');
    }
  }
}
