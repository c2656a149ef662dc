// The two ways to ask a KeyPolicy for a KEK rotation now. `lockstep.dev/rotate-now` belongs to
// users (kubectl annotate, or committed in Git); `lockstep.dev/rotation-request` belongs to the
// operator: a RotationSchedule writes it, under a field manager of its own, so the schedule never
// rewrites a value a user or a GitOps tool manages (which would show as drift, be reverted, and
// then look like a new request). Each has its own "handled" record on the key Secret, written in
// the same compare-and-swap as the rotated keys: each value acts once, also across a crash, and
// neither source's value can make the other's look new.
import { ANNOTATION_ROTATE_NOW } from '../api/v1alpha1/index.js';
import { ANNOTATION_ROTATED_FOR } from './names.js';

/** On the KeyPolicy, written only by the operator (RotationSchedule key rotations). */
export const ANNOTATION_ROTATION_REQUEST = 'lockstep.dev/rotation-request';
/** On the key Secret: the last `lockstep.dev/rotation-request` value acted on. */
export const ANNOTATION_ROTATION_REQUEST_HANDLED = 'lockstep.dev/rotation-request-handled';

type Annotations = Readonly<Record<string, string>> | undefined;

export interface OnDemandRotation {
  /** A value not acted on yet (the user's first), or undefined when nothing is asked. */
  readonly pending: string | undefined;
  /** What to record on the key Secret when a rotation (or a rollback that supersedes one) is written. */
  readonly handled: Record<string, string>;
}

const given = (v: string | undefined): v is string => v !== undefined && v !== '';

export function onDemandRotation(policy: Annotations, keySecret: Annotations): OnDemandRotation {
  const user = policy?.[ANNOTATION_ROTATE_NOW];
  const operator = policy?.[ANNOTATION_ROTATION_REQUEST];
  const userPending = given(user) && user !== keySecret?.[ANNOTATION_ROTATED_FOR];
  // Before this annotation existed, schedules asked through rotate-now: a value already acted on
  // that way (recorded as rotated-for) must not rotate a second time after an upgrade.
  const operatorPending = given(operator) && operator !== keySecret?.[ANNOTATION_ROTATION_REQUEST_HANDLED] && operator !== keySecret?.[ANNOTATION_ROTATED_FOR];
  return {
    pending: userPending ? user : operatorPending ? operator : undefined,
    handled: {
      ...(given(user) ? { [ANNOTATION_ROTATED_FOR]: user } : {}),
      ...(given(operator) ? { [ANNOTATION_ROTATION_REQUEST_HANDLED]: operator } : {}),
    },
  };
}
