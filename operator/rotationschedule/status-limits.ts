// The CRD caps every free-text status field (maxLength); a status write with one character too
// many is rejected whole, and a rotation whose messages grew (one problem per endpoint) would stop
// moving with nothing but a reconcile error to show for it. Every status is bounded here, once,
// just before it is written.
import type { RotationScheduleStatus } from '../api/v1alpha1/index.js';

export const STATUS_LIMITS = { message: 1024, failureMessage: 4096, failureTarget: 317, lastError: 4096, waiting: 1024 } as const;

export function bound(text: string, max: number): string {
  if (text.length <= max) return text;
  const marker = ' …(truncated)';
  return text.slice(0, max - marker.length) + marker;
}

export function boundStatus(status: RotationScheduleStatus): RotationScheduleStatus {
  const next: RotationScheduleStatus = { ...status };
  if (next.ca?.message !== undefined) next.ca = { ...next.ca, message: bound(next.ca.message, STATUS_LIMITS.message) };
  if (next.targets) next.targets = next.targets.map((t) => (t.message === undefined ? t : { ...t, message: bound(t.message, STATUS_LIMITS.message) }));
  if (next.history) next.history = next.history.map((h) => (h.message === undefined ? h : { ...h, message: bound(h.message, STATUS_LIMITS.message) }));
  if (next.failure) {
    next.failure = {
      ...next.failure,
      ...(next.failure.message !== undefined ? { message: bound(next.failure.message, STATUS_LIMITS.failureMessage) } : {}),
      ...(next.failure.target !== undefined ? { target: bound(next.failure.target, STATUS_LIMITS.failureTarget) } : {}),
    };
  }
  if (next.lastError !== undefined) next.lastError = bound(next.lastError, STATUS_LIMITS.lastError);
  if (next.waiting !== undefined) next.waiting = bound(next.waiting, STATUS_LIMITS.waiting);
  return next;
}
