// Which EncryptedServices a rotation covers and in which canary step each one goes. Targets are
// ordered by name so every replica, and every restart, plans the same steps.
import type { EncryptedService, RotationTargets, TargetProgress } from '../api/v1alpha1/index.js';
import { matchesSelector } from '../kube/label-selector.js';

/**
 * What is wrong with spec.targets in `namespace`, or undefined: names no EncryptedService there
 * carries (a schedule rotates services of its own namespace only), or a selector matching none.
 */
export function targetsProblem(targets: RotationTargets, namespace: string, services: readonly EncryptedService[]): string | undefined {
  const live = services.filter((s) => !s.metadata.deletionTimestamp);
  if (targets.names) {
    const missing = targets.names.filter((n) => !live.some((s) => s.metadata.name === n));
    if (missing.length === 0) return undefined;
    return `no EncryptedService ${missing.join(', ')} in namespace ${namespace} (a RotationSchedule rotates services of its own namespace): fix spec.targets.names or create them`;
  }
  if (live.some((s) => matchesSelector(targets.selector ?? {}, s.metadata.labels))) return undefined;
  return `spec.targets.selector matches no EncryptedService in namespace ${namespace}, so nothing rotates: fix the selector or label the services`;
}

/** Names of the selected, not-deleting EncryptedServices, sorted. Names listed but missing are skipped. */
export function selectTargets(targets: RotationTargets, services: readonly EncryptedService[]): string[] {
  const live = services.filter((s) => !s.metadata.deletionTimestamp);
  const chosen = targets.names
    ? live.filter((s) => targets.names!.includes(s.metadata.name ?? ''))
    : live.filter((s) => matchesSelector(targets.selector ?? {}, s.metadata.labels));
  return chosen.map((s) => s.metadata.name ?? '').sort();
}

/**
 * Cumulative number of targets rotated after each step: ceil(percent × count), at least 1 in the
 * first step so a canary always goes first, never above count, and all of them at 100%.
 */
export function cumulativeCounts(count: number, canarySteps: readonly number[]): number[] {
  if (count === 0) return canarySteps.map(() => 0);
  return canarySteps.map((percent, i) => {
    if (i === canarySteps.length - 1 || percent >= 100) return count;
    return Math.min(count, Math.max(1, Math.ceil((percent * count) / 100)));
  });
}

/** One Pending entry per target, tagged with the step (index into canarySteps) that rotates it. */
export function planTargets(namespace: string, names: readonly string[], canarySteps: readonly number[]): TargetProgress[] {
  const counts = cumulativeCounts(names.length, canarySteps);
  return names.map((name, index) => ({
    namespace,
    name,
    phase: 'Pending' as const,
    step: counts.findIndex((c) => index < c),
  }));
}
