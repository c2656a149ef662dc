// kstatus conditions (sigs.k8s.io/cli-utils' "CRD status convention"), which Flux, kpt and
// `kubectl wait`-style tools read to know whether an object is still converging or needs a person:
// `Reconciling` True while the operator works towards the spec, `Stalled` True when it cannot
// get there without a change from the user. Both are "abnormal-true": present only while True.
// They are derived from the conditions each kind already reports (Ready, Degraded, Rotating), so
// the three kinds cannot disagree with themselves.
import type { Condition, Reason } from '../api/v1alpha1/index.js';
import { Reasons, isReason } from '../api/v1alpha1/index.js';
import { findCondition, setConditions, type ConditionInput } from './conditions.js';

export const Reconciling = 'Reconciling';
export const Stalled = 'Stalled';

/**
 * Reasons that make an object Degraded while it waits for something that is expected to come
 * without anyone changing this object: a referenced object created later in the same apply, a
 * dependency still starting, an API error that a retry clears. The object is Reconciling, not
 * Stalled — a GitOps tool keeps waiting instead of failing the sync. Every other Degraded reason
 * (a refusal, a conflict, content the operator will not use) needs the user: Stalled.
 */
const WAITING_REASONS: ReadonlySet<string> = new Set([
  Reasons.KeyPolicyNotFound,
  Reasons.KeyPolicyNotReady,
  Reasons.IssuerNotFound,
  Reasons.PeerNotFound,
  Reasons.WorkloadNotFound,
  Reasons.CertificatePending,
  Reasons.RenewalPropagating,
  Reasons.RotationWaiting,
  Reasons.NoEndpoints,
  Reasons.Unreachable,
  Reasons.VolumePending,
  Reasons.RewrapPending,
  Reasons.KeysInUse,
  Reasons.ReconcileError,
  'SecretNotFound',
]);

/** Whether a Degraded reason waits for something to arrive (Reconciling) rather than for the user (Stalled). */
export function isWaitingReason(reason: string): boolean {
  return WAITING_REASONS.has(reason);
}

/** The reason as read back; one this operator does not write (an older version's) reads as `otherwise`. */
const registered = (reason: string | undefined, otherwise: Reason): Reason => (isReason(reason) ? reason : otherwise);

/** The kstatus conditions `conditions` imply, each only when True. */
export function kstatusConditions(conditions: readonly Condition[]): ConditionInput[] {
  const ready = findCondition(conditions, 'Ready');
  const degraded = findCondition(conditions, 'Degraded');
  const rotating = findCondition(conditions, 'Rotating');
  if (ready?.status === 'False' && degraded?.status === 'True' && !isWaitingReason(degraded.reason)) {
    return [{ type: Stalled, status: 'True', reason: registered(degraded.reason, Reasons.ReconcileError), message: degraded.message }];
  }
  if (rotating?.status === 'True') return [{ type: Reconciling, status: 'True', reason: registered(rotating.reason, Reasons.Progressing), message: rotating.message }];
  if (ready?.status !== 'True') {
    return [{ type: Reconciling, status: 'True', reason: registered(ready?.reason, Reasons.Progressing), message: ready?.message ?? 'not reconciled yet' }];
  }
  return [];
}

/** `conditions` with Reconciling and Stalled set from them: present while True, removed otherwise. */
/** setConditions, then the kstatus conditions the result implies, at one `now`: what each reconciler writes. */
export function setConditionsWithKstatus(
  previous: readonly Condition[] | undefined, next: readonly ConditionInput[], generation: number | undefined, now: Date,
): Condition[] {
  return withKstatus(setConditions(previous, next, generation, now), generation, now);
}

export function withKstatus(conditions: readonly Condition[], generation: number | undefined, now: Date): Condition[] {
  const isKstatus = (c: Condition) => c.type === Reconciling || c.type === Stalled;
  const rest = conditions.filter((c) => !isKstatus(c));
  const next = kstatusConditions(rest);
  // setConditions keeps lastTransitionTime while a condition stays True across writes.
  const derived = setConditions(conditions.filter(isKstatus), next, generation, now).filter((c) => next.some((n) => n.type === c.type));
  return [...rest, ...derived];
}
