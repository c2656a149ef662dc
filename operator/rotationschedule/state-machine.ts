// The rotation state machine as pure transitions over status. The reconciler observes the world,
// performs at most the side effects a transition calls for, and persists the new status; since
// everything it needs to continue is in status, a restarted operator resumes where status says.
//
// A rotation: Rotating (targets of the current step begin, at most maxInFlight at a time:
// Pending -> Rotating -> Verifying -> Succeeded | Failed) -> Verifying (every target of the step
// issued, checks running) -> next step after pauseBetweenSteps (or Paused when paused) ->
// Completed. The first failed target stops the rotation from beginning more targets; once none is
// in flight it ends RolledBack (failed targets restored) or Failed (autoRollback false).
import {
  MAX_HISTORY,
  type RotationOutcome, type RotationPhase, type RotationScheduleStatus, type RotationTrigger, type Rotatable,
  type TargetPhase, type TargetProgress,
} from '../api/v1alpha1/index.js';
import { planTargets } from './plan.js';

export const timestamp = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface BeginInput {
  trigger: RotationTrigger;
  namespace: string;
  /** Sorted target names (plan.ts selectTargets). */
  names: readonly string[];
  canarySteps: readonly number[];
  now: number;
  rotateNow?: string;
  /** Set for emergency rotations: the generation whose emergency this is. */
  generation?: number;
}

/** Whether a rotation is open (started and not finished), including one paused between steps. */
export function inRotation(status: RotationScheduleStatus): boolean {
  return status.startedAt !== undefined && (status.phase === 'Rotating' || status.phase === 'Verifying' || status.phase === 'Paused');
}

export function beginRotation(status: RotationScheduleStatus, input: BeginInput): RotationScheduleStatus {
  const next: RotationScheduleStatus = {
    ...status,
    phase: 'Rotating',
    rotationId: `${input.trigger.toLowerCase()}-${timestamp(input.now).replace(/[-:]/g, '').toLowerCase()}`,
    trigger: input.trigger,
    startedAt: timestamp(input.now),
    currentStep: 0,
    stepStartedAt: timestamp(input.now),
    targets: planTargets(input.namespace, input.names, input.canarySteps),
  };
  delete next.failure;
  delete next.nextRotation;
  if (input.rotateNow !== undefined) next.lastRotateNow = input.rotateNow;
  if (input.generation !== undefined) next.emergencyGeneration = input.generation;
  return next;
}

export function targetsOfStep(status: RotationScheduleStatus, step = status.currentStep ?? 0): TargetProgress[] {
  return (status.targets ?? []).filter((t) => t.step === step);
}

const inFlightPhases: readonly (TargetPhase | undefined)[] = ['Rotating', 'Verifying'];

export function inFlight(status: RotationScheduleStatus): TargetProgress[] {
  return (status.targets ?? []).filter((t) => inFlightPhases.includes(t.phase));
}

export function failedTargets(status: RotationScheduleStatus): TargetProgress[] {
  return (status.targets ?? []).filter((t) => t.phase === 'Failed');
}

/**
 * Targets of the current step to begin now: none once a target failed or while the step has not
 * started (pause between steps), otherwise Pending ones up to maxInFlight targets in flight.
 */
export function targetsToBegin(status: RotationScheduleStatus, maxInFlight: number, now: number): TargetProgress[] {
  if (status.phase !== 'Rotating' || failedTargets(status).length > 0) return [];
  if (status.stepStartedAt && Date.parse(status.stepStartedAt) > now) return [];
  const room = maxInFlight - inFlight(status).length;
  if (room <= 0) return [];
  return targetsOfStep(status).filter((t) => t.phase === 'Pending').slice(0, room);
}

/** `status` with one target's entry changed; updatedAt moves only when its phase does. */
export function updateTarget(status: RotationScheduleStatus, name: string, change: Partial<TargetProgress>, now: number): RotationScheduleStatus {
  return {
    ...status,
    targets: (status.targets ?? []).map((t) => {
      if (t.name !== name) return t;
      const moved = change.phase !== undefined && change.phase !== t.phase;
      return { ...t, ...change, ...(moved ? { updatedAt: timestamp(now) } : {}) };
    }),
  };
}

/** Rotating while the step still has targets to begin or re-issue; Verifying once all are issued. */
export function stepPhase(status: RotationScheduleStatus): RotationPhase {
  const step = targetsOfStep(status);
  return step.some((t) => t.phase === 'Pending' || t.phase === 'Rotating') && failedTargets(status).length === 0 ? 'Rotating' : 'Verifying';
}

export interface StepOptions {
  canarySteps: readonly number[];
  /** ms; 0 in emergency mode. */
  pauseBetweenSteps: number;
  paused: boolean;
}

export type StepOutcome = 'running' | 'next' | 'complete' | 'failed';

/** What the finished-or-not current step leads to (failure wins once nothing is in flight). */
export function stepOutcome(status: RotationScheduleStatus): StepOutcome {
  if (failedTargets(status).length > 0) return inFlight(status).length === 0 ? 'failed' : 'running';
  const step = targetsOfStep(status);
  if (step.some((t) => t.phase !== 'Succeeded')) return 'running';
  return (status.currentStep ?? 0) >= lastStep(status) ? 'complete' : 'next';
}

function lastStep(status: RotationScheduleStatus): number {
  return Math.max(0, ...(status.targets ?? []).map((t) => t.step ?? 0));
}

/** After a verified step: the next one (starting after the pause), or Paused when paused. */
export function advanceStep(status: RotationScheduleStatus, options: StepOptions, now: number): RotationScheduleStatus {
  let nextStep = (status.currentStep ?? 0) + 1;
  // Empty steps (a percentage that adds no target) are passed over.
  while (nextStep < lastStep(status) && targetsOfStep(status, nextStep).length === 0) nextStep++;
  return {
    ...status,
    phase: options.paused ? 'Paused' : 'Rotating',
    currentStep: nextStep,
    stepStartedAt: timestamp(now + (options.paused ? 0 : options.pauseBetweenSteps)),
  };
}

/** A rotation paused between steps continues with the next step now. */
export function resume(status: RotationScheduleStatus, now: number): RotationScheduleStatus {
  return { ...status, phase: 'Rotating', stepStartedAt: timestamp(now) };
}

export interface FinishInput {
  outcome: RotationOutcome;
  now: number;
  message: string;
  rotated: readonly Rotatable[];
}

/** Closes the rotation: outcome phase, lastRotation, and a history entry (newest first, bounded). */
export function finishRotation(status: RotationScheduleStatus, input: FinishInput): RotationScheduleStatus {
  const entry = {
    rotationId: status.rotationId ?? 'unknown',
    ...(status.trigger ? { trigger: status.trigger } : {}),
    rotated: [...input.rotated],
    ...(status.startedAt ? { startedAt: status.startedAt } : {}),
    finishedAt: timestamp(input.now),
    outcome: input.outcome,
    targets: (status.targets ?? []).length,
    message: input.message.slice(0, 1024),
  };
  const next: RotationScheduleStatus = {
    ...status,
    phase: input.outcome,
    lastRotation: timestamp(input.now),
    history: [entry, ...(status.history ?? []).filter((h) => h.rotationId !== entry.rotationId)].slice(0, MAX_HISTORY),
  };
  delete next.startedAt;
  delete next.stepStartedAt;
  return next;
}
