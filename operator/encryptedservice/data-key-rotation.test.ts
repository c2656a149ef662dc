import { describe, expect, it } from '@jest/globals';
import { dataKeyAction } from './data-key-rotation.js';

const ROTATE = 'lockstep.dev/rotate-data-key';
const RESTORE = 'lockstep.dev/restore-data-key';
const ROTATED_FOR = 'lockstep.dev/data-key-rotated-for';
const RESTORED_FOR = 'lockstep.dev/data-key-restored-for';

describe('dataKeyAction', () => {
  it('rotates once per value', () => {
    expect(dataKeyAction({ [ROTATE]: 'r1' }, {}, false)).toEqual({ kind: 'rotate', record: { [ROTATED_FOR]: 'r1' } });
    expect(dataKeyAction({ [ROTATE]: 'r1' }, { [ROTATED_FOR]: 'r1' }, true)).toEqual({ kind: 'none' });
    expect(dataKeyAction({ [ROTATE]: 'r2' }, { [ROTATED_FOR]: 'r1' }, true)).toMatchObject({ kind: 'rotate' });
    expect(dataKeyAction({ [ROTATE]: '' }, {}, false)).toEqual({ kind: 'none' });
    expect(dataKeyAction(undefined, undefined, false)).toEqual({ kind: 'none' });
  });

  it('restores the previous key for the rotation it names, once', () => {
    const store = { [ROTATED_FOR]: 'r1' };
    expect(dataKeyAction({ [ROTATE]: 'r1', [RESTORE]: 'r1' }, store, true)).toEqual({ kind: 'restore', record: { [RESTORED_FOR]: 'r1' } });
    expect(dataKeyAction({ [ROTATE]: 'r1', [RESTORE]: 'r1' }, { ...store, [RESTORED_FOR]: 'r1' }, true)).toEqual({ kind: 'none' });
  });

  it('a rollback that arrives before the rotation was made cancels it', () => {
    expect(dataKeyAction({ [ROTATE]: 'r2', [RESTORE]: 'r2' }, { [ROTATED_FOR]: 'r1' }, true))
      .toEqual({ kind: 'record', record: { [ROTATED_FOR]: 'r2', [RESTORED_FOR]: 'r2' } });
  });

  it('a stale rollback never undoes a later rotation', () => {
    // r1 was rolled back; r2 rotated since: the r1 request stays recorded and r2 stands.
    expect(dataKeyAction({ [ROTATE]: 'r2', [RESTORE]: 'r1' }, { [ROTATED_FOR]: 'r2', [RESTORED_FOR]: 'r1' }, true)).toEqual({ kind: 'none' });
    // A restore for a rotation that is not the last one has nothing to undo.
    expect(dataKeyAction({ [ROTATE]: 'r2', [RESTORE]: 'r1' }, { [ROTATED_FOR]: 'r2' }, true)).toEqual({ kind: 'record', record: { [RESTORED_FOR]: 'r1' } });
  });
});
