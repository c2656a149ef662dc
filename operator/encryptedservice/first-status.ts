// Whether a new service's first status write can wait for its certificate. A new service
// normally converges in two status writes: "waiting for cert-manager", then Ready a few seconds
// later. When everything but issuance is done, the first write says nothing a user must act on,
// and at 1,000 services it is 1,000 of the operator's requests. So a service whose status was
// never written, and whose only unfinished part is a young Certificate, waits up to
// FIRST_STATUS_GRACE_MS for issuance before it reports; a slow or broken issuer is still
// reported once the grace is over.
import { EncryptedServiceConditions as C, Reasons, type EncryptedServiceStatus } from '../api/v1alpha1/index.js';
import type { ConditionInput } from '../kube/conditions.js';

/** How long a new service's status may stay unwritten while cert-manager issues its certificate. */
export const FIRST_STATUS_GRACE_MS = 30_000;

export interface FirstStatusInput {
  /** The status as it is on the object (never written by this operator: no observedGeneration). */
  status: EncryptedServiceStatus | undefined;
  /** The conditions this reconcile computed, Ready included. */
  conditions: ConditionInput[];
  /** When the Certificate was created; undefined when this reconcile has just created it. */
  certificateCreatedAt: Date | undefined;
  now: Date;
}

/** Milliseconds to wait before writing the first status, or undefined to write it now. */
export function firstStatusDelay(input: FirstStatusInput): number | undefined {
  if (input.status?.observedGeneration !== undefined || (input.status?.conditions?.length ?? 0) > 0) return undefined;
  const unfinished = input.conditions.filter((c) => c.type !== C.Ready && c.type !== C.Degraded && c.status !== 'True');
  const degraded = input.conditions.find((c) => c.type === C.Degraded);
  if (degraded?.status !== 'False') return undefined;
  if (unfinished.length !== 1 || unfinished[0]!.type !== C.TransitReady || unfinished[0]!.reason !== Reasons.CertificatePending) return undefined;
  const age = input.certificateCreatedAt ? input.now.getTime() - input.certificateCreatedAt.getTime() : 0;
  const left = FIRST_STATUS_GRACE_MS - age;
  return left > 0 ? left : undefined;
}
