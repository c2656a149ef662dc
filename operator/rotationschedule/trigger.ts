// Whether a rotation starts now, and if not, when to look again. Precedence: emergency (once per
// spec generation that sets it; ignores pauses and windows) > pause > on-demand annotation
// (ignores windows: someone asked for it now) > schedule (cron and/or interval, held for the
// next maintenance window unless a target's certificate would expire before that window opens).
import {
  ANNOTATION_PAUSED, ANNOTATION_ROTATE_NOW, parseDuration,
  type RotationScheduleSpec, type RotationScheduleStatus, type RotationTrigger,
} from '../api/v1alpha1/index.js';
import { nextCronTime, parseCron } from './cron.js';
import { currentWindow, nextWindowStart } from './maintenance-window.js';

export interface TriggerInput {
  /** Spec with CRD defaults applied. */
  spec: RotationScheduleSpec;
  annotations: Record<string, string> | undefined;
  status: RotationScheduleStatus;
  generation: number;
  /** metadata.creationTimestamp: the first interval or cron fire counts from here. */
  createdAt: number;
  now: number;
  /** Earliest notAfter among the targets' served certificates, when known. */
  earliestExpiry?: number;
  /** Time a rotation needs before a certificate expires (the expiry guard starts this early). */
  expiryMargin: number;
}

export type TriggerDecision =
  | { start: true; trigger: RotationTrigger; message: string; rotateNow?: string }
  | { start: false; paused: boolean; message: string; nextRotation?: number; wakeAt?: number };

export function isPaused(spec: RotationScheduleSpec, annotations: Record<string, string> | undefined): boolean {
  return spec.paused === true || annotations?.[ANNOTATION_PAUSED] === 'true';
}

/** When the schedule is next due, from the last rotation (or creation): the earlier of cron and interval. */
export function scheduleDue(spec: RotationScheduleSpec, anchor: number): number | undefined {
  const schedule = spec.schedule;
  if (!schedule) return undefined;
  const candidates: number[] = [];
  if (schedule.cron) {
    const next = nextCronTime(parseCron(schedule.cron), anchor, schedule.timeZone ?? 'UTC');
    if (next !== undefined) candidates.push(next);
  }
  if (schedule.interval) candidates.push(anchor + parseDuration(schedule.interval));
  return candidates.length ? Math.min(...candidates) : undefined;
}

/** A rotate-now value not yet served, if the annotation holds one. */
function pendingRotateNow(input: TriggerInput): string | undefined {
  const value = input.annotations?.[ANNOTATION_ROTATE_NOW];
  return value !== undefined && value !== '' && value !== input.status.lastRotateNow ? value : undefined;
}

export function evaluateTrigger(input: TriggerInput): TriggerDecision {
  const decision = decide(input);
  // Any rotation that starts serves a pending rotate-now request: a schedule that asks for an
  // emergency and a rotate-now together (or whose cron fires while a request waits) rotates once.
  const rotateNow = pendingRotateNow(input);
  return decision.start && rotateNow !== undefined ? { ...decision, rotateNow } : decision;
}

function decide(input: TriggerInput): TriggerDecision {
  const { spec, now } = input;
  if (spec.emergency && input.status.emergencyGeneration !== input.generation) {
    return { start: true, trigger: 'Emergency', message: 'emergency rotation: rotating now, ignoring windows, pauses between steps and lockstep.dev/paused' };
  }
  if (isPaused(spec, input.annotations)) {
    return { start: false, paused: true, message: 'paused (spec.paused or annotation lockstep.dev/paused: "true"): no rotation starts' };
  }
  const rotateNow = pendingRotateNow(input);
  if (rotateNow !== undefined) {
    return { start: true, trigger: 'Manual', rotateNow, message: `on-demand rotation (${ANNOTATION_ROTATE_NOW}=${JSON.stringify(rotateNow)})` };
  }
  const { status } = input;
  const anchor = status.lastRotation ? Date.parse(status.lastRotation) : input.createdAt;
  const due = scheduleDue(spec, anchor);
  if (due === undefined) {
    return { start: false, paused: false, message: `no schedule: rotates on demand (annotation ${ANNOTATION_ROTATE_NOW})` };
  }
  const windows = spec.schedule?.maintenanceWindows ?? [];
  const tz = spec.schedule?.timeZone ?? 'UTC';
  if (windows.length === 0) {
    if (due <= now) return { start: true, trigger: 'Schedule', message: 'scheduled rotation is due' };
    return { start: false, paused: false, nextRotation: due, wakeAt: due, message: `next scheduled rotation at ${iso(due)}` };
  }
  if (due <= now) {
    if (currentWindow(windows, now, tz)) return { start: true, trigger: 'Schedule', message: 'scheduled rotation is due and a maintenance window is open' };
    const windowAt = nextWindowStart(windows, now, tz);
    if (input.earliestExpiry !== undefined && (windowAt === undefined || input.earliestExpiry - input.expiryMargin <= windowAt)) {
      return {
        start: true, trigger: 'Schedule',
        message: `scheduled rotation is due and a certificate expires at ${iso(input.earliestExpiry)}, before the next maintenance window${windowAt === undefined ? '' : ` (${iso(windowAt)})`}: rotating outside the window`,
      };
    }
    if (windowAt === undefined) return { start: false, paused: false, message: 'scheduled rotation is due but no maintenance window ever opens' };
    // Wake before the window too if a certificate would need the expiry guard first.
    const guardAt = input.earliestExpiry === undefined ? windowAt : Math.min(windowAt, input.earliestExpiry - input.expiryMargin);
    return { start: false, paused: false, nextRotation: windowAt, wakeAt: guardAt, message: `scheduled rotation is due; waiting for the maintenance window at ${iso(windowAt)}` };
  }
  const inWindowAtDue = currentWindow(windows, due, tz) !== undefined;
  const nextRotation = inWindowAtDue ? due : (nextWindowStart(windows, due, tz) ?? due);
  return { start: false, paused: false, nextRotation, wakeAt: due, message: `next scheduled rotation at ${iso(nextRotation)}` };
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
