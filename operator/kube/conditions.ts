// metav1.Condition bookkeeping shared by the controllers: lastTransitionTime moves only when a
// condition's status flips, and observedGeneration is always stamped.
import type { Condition, ConditionStatus, Reason } from '../api/v1alpha1/index.js';

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: Reason;
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

/**
 * The conditions this replica last wrote for each object, by uid. A reconcile that read a cached
 * object older than its own last status write (the watch event of that write not in yet, e.g. a
 * reconcile woken by the finalizer it just added) sees the same transitions again: asking here
 * first keeps their Events from being recorded twice. Forget an object when it is finalized.
 */
export class WrittenConditions {
  private readonly byUid = new Map<string, string>();

  /** Whether `conditions` (type, status and reason) are what was last written for `uid`; remembers them. */
  alreadyWritten(uid: string | undefined, conditions: readonly Pick<Condition, 'type' | 'status' | 'reason'>[]): boolean {
    if (!uid) return false;
    const signature = conditions.map((c) => `${c.type}=${c.status}/${c.reason}`).sort().join(',');
    const same = this.byUid.get(uid) === signature;
    this.byUid.set(uid, signature);
    return same;
  }

  forget(uid: string | undefined): void {
    if (uid) this.byUid.delete(uid);
  }
}
