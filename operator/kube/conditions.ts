// metav1.Condition bookkeeping shared by the controllers: lastTransitionTime moves only when a
// condition's status flips, and observedGeneration is always stamped.
import type { Condition, ConditionStatus } from '../api/v1alpha1/index.js';

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

/** `previous` with each of `next` set; conditions not named in `next` are kept as they were. */
export function setConditions(
  previous: readonly Condition[] | undefined,
  next: readonly ConditionInput[],
  generation: number | undefined,
  now: Date,
): Condition[] {
  const byType = new Map((previous ?? []).map((c) => [c.type, c]));
  for (const n of next) {
    const old = byType.get(n.type);
    const lastTransitionTime = old && old.status === n.status ? old.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    byType.set(n.type, {
      type: n.type,
      status: n.status,
      reason: n.reason,
      message: n.message,
      lastTransitionTime,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    });
  }
  return [...byType.values()];
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}
