// RotationSchedule: "rotate these, this way, then". Mirrors crds/rotationschedules.lockstep.dev.yaml.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { Condition, IssuerRef, LabelSelector } from './common-types.js';

export interface RotationSchedule {
  apiVersion?: string;
  kind?: string;
  metadata: V1ObjectMeta;
  spec: RotationScheduleSpec;
  status?: RotationScheduleStatus;
}

export const ROTATABLES = ['certificates', 'dataKeys', 'keyEncryptionKeys', 'ca'] as const;
export type Rotatable = (typeof ROTATABLES)[number];

/** Exactly one of selector and names. */
export interface RotationTargets {
  selector?: LabelSelector;
  names?: string[];
}

export interface CARotationSpec {
  /** The targets' issuer when omitted. */
  issuerRef?: IssuerRef;
  /** Go duration, required. */
  overlap: string;
  /** Go duration. CRD default: 8760h. */
  duration?: string;
}

export const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface MaintenanceWindow {
  /** Every day when omitted. */
  days?: Weekday[];
  /** HH:MM in the schedule's time zone. */
  start: string;
  /** Go duration, 15m to 24h. */
  duration: string;
}

export interface ScheduleSpec {
  /** 5-field cron expression. */
  cron?: string;
  /** Go duration, at least 1h. */
  interval?: string;
  /** CRD default: UTC. */
  timeZone?: string;
  maintenanceWindows?: MaintenanceWindow[];
}

export interface VerificationSpec {
  /** Go duration. CRD default: 5m. */
  timeout?: string;
  /** CRD default: true. */
  tlsHandshake?: boolean;
  /** CRD default: true. */
  decrypt?: boolean;
}

export interface StrategySpec {
  /** CRD default: [10, 50, 100]. */
  canarySteps?: number[];
  /** CRD default: 5. */
  maxInFlight?: number;
  /** Go duration. CRD default: 1m. */
  pauseBetweenSteps?: string;
  /** CRD default: {}. */
  verification?: VerificationSpec;
  /** CRD default: true. */
  autoRollback?: boolean;
}

export interface RotationScheduleSpec {
  targets: RotationTargets;
  rotate: Rotatable[];
  /** Required when rotate includes ca. */
  ca?: CARotationSpec;
  /** Omitted: on demand only (annotation lockstep.dev/rotate-now). */
  schedule?: ScheduleSpec;
  /** CRD default: {}. */
  strategy?: StrategySpec;
  /** CRD default: false. */
  emergency?: boolean;
  /** CRD default: false. */
  paused?: boolean;
}

export const ROTATION_PHASES = ['Idle', 'Rotating', 'Verifying', 'Paused', 'RolledBack', 'Completed', 'Failed'] as const;
export type RotationPhase = (typeof ROTATION_PHASES)[number];

export type RotationTrigger = 'Schedule' | 'Manual' | 'Emergency';
export type TargetPhase = 'Pending' | 'Rotating' | 'Verifying' | 'Succeeded' | 'Failed' | 'RolledBack';
export type CARotationStage = 'AddRoot' | 'VerifyTrust' | 'ReissueLeaves' | 'VerifyLeaves' | 'Overlap' | 'DropOldRoot' | 'Done';
export type RotationOutcome = 'Completed' | 'RolledBack' | 'Failed';

export interface TargetProgress {
  namespace: string;
  name: string;
  phase?: TargetPhase;
  step?: number;
  previousRevision?: string;
  newRevision?: string;
  message?: string;
  updatedAt?: string;
  /** kubectl.kubernetes.io/restartedAt value written to the target's workload in this rotation. */
  restartedAt?: string;
}

export interface RotationHistoryEntry {
  rotationId: string;
  trigger?: RotationTrigger;
  rotated?: Rotatable[];
  startedAt?: string;
  finishedAt?: string;
  outcome: RotationOutcome;
  targets?: number;
  message?: string;
}

/** The CRD caps status.history at this many entries. */
export const MAX_HISTORY = 20;

export interface CARotationStatus {
  stage?: CARotationStage;
  oldRootSerial?: string;
  newRootSerial?: string;
  overlapEndsAt?: string;
  /** The CA Secret the issuer signed with before the rotation (restored on rollback). */
  previousSecretName?: string;
  /** The new CA's Secret. */
  secretName?: string;
  /** What the current stage is waiting for. */
  message?: string;
}

export interface RotationFailure {
  reason?: string;
  message?: string;
  /** namespace/name. */
  target?: string;
}

export interface RotationScheduleStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  phase?: RotationPhase;
  rotationId?: string;
  trigger?: RotationTrigger;
  startedAt?: string;
  currentStep?: number;
  stepStartedAt?: string;
  ca?: CARotationStatus;
  targets?: TargetProgress[];
  lastRotation?: string;
  nextRotation?: string;
  lastRotateNow?: string;
  /** metadata.generation whose spec.emergency rotation has run (emergency rotates once per generation). */
  emergencyGeneration?: number;
  history?: RotationHistoryEntry[];
  failure?: RotationFailure;
  lastError?: string;
  /** When the error in lastError was first seen in the open rotation (cleared when a reconcile succeeds). */
  errorSince?: string;
  /** Why a due rotation has not started: another rotation holds one of its targets. */
  waiting?: string;
}
