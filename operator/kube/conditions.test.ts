import { describe, expect, it } from '@jest/globals';
import { WrittenConditions, setConditions } from './conditions.js';

const t0 = new Date('2026-01-01T00:00:00.123Z');
const t1 = new Date('2026-01-01T01:00:00Z');

describe('setConditions', () => {
  it('stamps a new condition with the time, in whole seconds, and the generation', () => {
    const [c] = setConditions(undefined, [{ type: 'Ready', status: 'False', reason: 'Progressing', message: 'm' }], 3, t0);
    expect(c).toEqual({ type: 'Ready', status: 'False', reason: 'Progressing', message: 'm', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 3 });
  });
  it('keeps lastTransitionTime when only reason or message change', () => {
    const a = setConditions(undefined, [{ type: 'Ready', status: 'False', reason: 'PeerNotFound', message: 'a' }], 1, t0);
    const [b] = setConditions(a, [{ type: 'Ready', status: 'False', reason: 'KeyPolicyNotFound', message: 'b' }], 2, t1);
    expect(b?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    expect(b?.reason).toBe('KeyPolicyNotFound');
    expect(b?.observedGeneration).toBe(2);
  });
  it('moves lastTransitionTime when the status flips', () => {
    const a = setConditions(undefined, [{ type: 'Ready', status: 'False', reason: 'PeerNotFound', message: 'a' }], 1, t0);
    const [b] = setConditions(a, [{ type: 'Ready', status: 'True', reason: 'PeerNotFound', message: 'a' }], 1, t1);
    expect(b?.lastTransitionTime).toBe('2026-01-01T01:00:00Z');
  });
  it('keeps conditions it was not asked to set, in order', () => {
    const a = setConditions(undefined, [
      { type: 'Ready', status: 'False', reason: 'PeerNotFound', message: 'a' },
      { type: 'Rotating', status: 'True', reason: 'RotationInProgress', message: 'r' },
    ], 1, t0);
    const b = setConditions(a, [{ type: 'Ready', status: 'True', reason: 'PeerNotFound', message: 'a' }], 1, t1);
    expect(b.map((c) => c.type)).toEqual(['Ready', 'Rotating']);
    expect(b[1]).toEqual(a[1]);
  });
});

describe('WrittenConditions', () => {
  const ready = (status: 'True' | 'False', reason: string, message = 'm') => ({ type: 'Ready', status, reason, message });
  it('says when the same conditions are written again (a stale cache), and not after a real change back', () => {
    const w = new WrittenConditions();
    expect(w.alreadyWritten('u1', [ready('False', 'CertManagerMissing')])).toBe(false);
    // Same type, status and reason (the message may differ): no new transition.
    expect(w.alreadyWritten('u1', [ready('False', 'CertManagerMissing', 'other words')])).toBe(true);
    expect(w.alreadyWritten('u2', [ready('False', 'CertManagerMissing')])).toBe(false);
    expect(w.alreadyWritten('u1', [ready('True', 'Reconciled')])).toBe(false);
    expect(w.alreadyWritten('u1', [ready('False', 'CertManagerMissing')])).toBe(false);
    w.forget('u1');
    expect(w.alreadyWritten('u1', [ready('False', 'CertManagerMissing')])).toBe(false);
    expect(w.alreadyWritten(undefined, [ready('False', 'X')])).toBe(false);
    expect(w.alreadyWritten(undefined, [ready('False', 'X')])).toBe(false);
  });
});
