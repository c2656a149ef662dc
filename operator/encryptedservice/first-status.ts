// Whether a new service's first status write can wait for its certificate. A new service
// normally converges in two status writes: "waiting for cert-manager", then Ready a few seconds
// later. When the operator is behind (many services wait for a worker) and everything but
// issuance is done, the first write says nothing a user must act on and delays every service
// queued behind it: at 1,000 new services it is 1,000 of the operator's requests. Such a service
// waits up to FIRST_STATUS_GRACE_MS for issuance before it reports; a slow or broken issuer is
// still reported once the grace is over. Without a backlog the first status is written at once:
// tools that judge an object without status as done (kstatus, so Flux) must see it early.
import { EncryptedServiceConditions as C, Reasons, type EncryptedServiceStatus } from '../api/v1alpha1/index.js';
import type { ConditionInput } from '../kube/conditions.js';

/** How long a new service's status may stay unwritten while cert-manager issues its certificate. */
export const FIRST_STATUS_GRACE_MS = 30_000;
/** Services waiting for a worker from which the operator counts as behind (about 3 s of work at the default client QPS). */
export const FIRST_STATUS_BACKLOG = 20;

export interface FirstStatusInput {
  /** The status as it is on the object (never written by this operator: no observedGeneration). */
  status: EncryptedServiceStatus | undefined;
  /** The conditions this reconcile computed, Ready included. */
  conditions: ConditionInput[];
  /** When the Certificate was created; undefined when this reconcile has just created it. */
  certificateCreatedAt: Date | undefined;
  now: Date;
  /** Services waiting for a worker now. */
  backlog: number;
  /** Whether an earlier reconcile of this service already chose to wait: it goes on waiting. */
  waiting: boolean;
}

/** Milliseconds to wait before writing the first status, or undefined to write it now. */
export function firstStatusDelay(input: FirstStatusInput): number | undefined {
  if (input.status?.observedGeneration !== undefined || (input.status?.conditions?.length ?? 0) > 0) return undefined;
  const unfinished = input.conditions.filter((c) => c.type !== C.Ready && c.type !== C.Degraded && c.status !== 'True');
  const degraded = input.conditions.find((c) => c.type === C.Degraded);
  if (degraded?.status !== 'False') return undefined;
  if (unfinished.length !== 1 || unfinished[0]!.type !== C.TransitReady || unfinished[0]!.reason !== Reasons.CertificatePending) return undefined;
  if (!input.waiting && input.backlog < FIRST_STATUS_BACKLOG) return undefined;
  const age = input.certificateCreatedAt ? input.now.getTime() - input.certificateCreatedAt.getTime() : 0;
  const left = FIRST_STATUS_GRACE_MS - age;
  return left > 0 ? left : undefined;
}
