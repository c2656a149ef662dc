import { describe, expect, it } from '@jest/globals';
import { activeRecord, newKekIndex, parseKekIndex, retireInIndex, rotateIndex, serializeKekIndex } from './kek-index.js';

const t0 = new Date('2026-12-01T10:00:00Z');
const at = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);

describe('KEK index (lifecycle of keys held in a key store)', () => {
  it('rotates like a key set: one active, previous decrypt-only, retention as in rotation.ts', () => {
    let index = newKekIndex('kek-a', t0);
    const first = rotateIndex(index, 'kek-b', { retention: 1, usage: {}, now: at(1) });
    expect(first).toMatchObject({ activated: 'kek-b', deactivated: 'kek-a', retired: [] });
    index = rotateIndex(first.index, 'kek-c', { retention: 1, usage: { 'kek-a': 0, 'kek-b': 3 }, now: at(2) }).index;
    // kek-b is within retention; kek-a is beyond it and counted unused: retired in the same step.
    expect(index.keys.map((key) => [key.kid, key.state])).toEqual([['kek-c', 'active'], ['kek-b', 'decrypt-only']]);
    expect(index.retired).toEqual([{ kid: 'kek-a', state: 'retired', createdAt: t0.toISOString(), retiredAt: at(2).toISOString() }]);
    expect(activeRecord(index).kid).toBe('kek-c');
    // Uncounted means in use: nothing more retires.
    expect(retireInIndex(index, { retention: 0, usage: {}, now: at(3) }).retired).toEqual([]);
    expect(retireInIndex(index, { retention: 0, usage: { 'kek-b': 0 }, now: at(3) }).retired).toEqual(['kek-b']);
  });

  it('round-trips through its stored form and refuses broken ones', () => {
    const index = rotateIndex(newKekIndex('kek-a', t0), 'kek-b', { retention: 1, usage: {}, now: at(1) }).index;
    expect(parseKekIndex(serializeKekIndex(index))).toEqual(index);
    expect(serializeKekIndex(index)).not.toMatch(/"k"|"value"/);
    expect(() => parseKekIndex('{')).toThrow(expect.objectContaining({ reason: 'InvalidKeySet' }));
    expect(() => parseKekIndex(JSON.stringify({ keys: [], retired: [] }))).toThrow(expect.objectContaining({ reason: 'NoActiveKey' }));
    const twice = JSON.parse(serializeKekIndex(index)) as { keys: { kid: string }[] };
    (twice.keys[1] as { kid: string }).kid = 'kek-b';
    expect(() => parseKekIndex(JSON.stringify(twice))).toThrow(expect.objectContaining({ message: 'kid kek-b appears twice' }));
    expect(() => rotateIndex(index, 'not-a-kek', { retention: 1, usage: {}, now: at(2) })).toThrow(expect.objectContaining({ reason: 'InvalidTransition' }));
  });
});
