// Rotation of a service's data key (DEK), asked for with annotations on the EncryptedService (a
// RotationSchedule sets them): `lockstep.dev/rotate-data-key: <value>` makes a fresh DEK and
// re-encrypts every envelope under it; `lockstep.dev/restore-data-key: <value>` undoes the
// rotation made for that value (rollback). Each value acts once: the value acted on is recorded
// on the envelope store, in the same write as the keys, so a crash never repeats or loses one.
// The DEK a rotation replaced stays in the store (PREVIOUS_DEK_KEY) until the next rotation, so a
// rollback can put it back.

export const ANNOTATION_ROTATE_DATA_KEY = 'lockstep.dev/rotate-data-key';
export const ANNOTATION_RESTORE_DATA_KEY = 'lockstep.dev/restore-data-key';
/** On the envelope store: the last rotate / restore value acted on. */
export const ANNOTATION_DATA_KEY_ROTATED_FOR = 'lockstep.dev/data-key-rotated-for';
export const ANNOTATION_DATA_KEY_RESTORED_FOR = 'lockstep.dev/data-key-restored-for';
/** On the envelope store: the id of its current data key. */
export const ANNOTATION_DATA_KEY_ID = 'lockstep.dev/data-key-id';
/** Store data key holding the wrapped DEK that the last rotation replaced. */
export const PREVIOUS_DEK_KEY = 'dek-previous.jwe';

export type DataKeyAction =
  | { kind: 'none' }
  /** Make a new DEK; the current one becomes the previous. */
  | { kind: 'rotate'; record: Record<string, string> }
  /** The previous DEK becomes current again (and the current one the previous). */
  | { kind: 'restore'; record: Record<string, string> }
  /** Only record the values as handled (a rollback that has nothing to undo). */
  | { kind: 'record'; record: Record<string, string> };

const pending = (requested: string | undefined, handled: string | undefined): requested is string =>
  requested !== undefined && requested !== '' && requested !== handled;

/** What the annotations ask of the data key now. */
export function dataKeyAction(
  service: Readonly<Record<string, string>> | undefined,
  store: Readonly<Record<string, string>> | undefined,
  hasPrevious: boolean,
): DataKeyAction {
  const rotate = service?.[ANNOTATION_ROTATE_DATA_KEY];
  const restore = service?.[ANNOTATION_RESTORE_DATA_KEY];
  const rotatedFor = store?.[ANNOTATION_DATA_KEY_ROTATED_FOR];
  const restoredFor = store?.[ANNOTATION_DATA_KEY_RESTORED_FOR];
  if (pending(restore, restoredFor)) {
    if (rotatedFor === restore && hasPrevious) return { kind: 'restore', record: { [ANNOTATION_DATA_KEY_RESTORED_FOR]: restore } };
    // Rolled back before the rotation was made: it must not happen afterwards.
    if (rotate === restore && rotatedFor !== rotate) {
      return { kind: 'record', record: { [ANNOTATION_DATA_KEY_ROTATED_FOR]: rotate, [ANNOTATION_DATA_KEY_RESTORED_FOR]: restore } };
    }
    return { kind: 'record', record: { [ANNOTATION_DATA_KEY_RESTORED_FOR]: restore } };
  }
  if (pending(rotate, rotatedFor)) return { kind: 'rotate', record: { [ANNOTATION_DATA_KEY_ROTATED_FOR]: rotate } };
  return { kind: 'none' };
}
