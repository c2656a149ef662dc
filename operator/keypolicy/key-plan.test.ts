import { describe, expect, it } from '@jest/globals';
import { effectiveKeyWrap } from '../api/v1alpha1/index.js';
import { generateDataKey, unwrapDataKey, wrapDataKey, rewrapDataKey } from '../crypto/datakey.js';
import { activeKey, createKeySet, publicJwks } from '../crypto/keyset.js';
import { openSealed, sealValue } from '../crypto/seal.js';
import { retentionSettings, retireBoth, rotateBoth, rotationDecision, rotationPeriodMs, type KeySets } from './key-plan.js';
import { countUsage } from './status.js';

const HOUR = 3_600_000;
const keyWrap = effectiveKeyWrap({ algorithm: 'A256KW' });

async function fresh(now: Date): Promise<KeySets> {
  return { kek: await createKeySet('kek', 'A256KW', { now }), seal: await createKeySet('seal', 'ECDH-ES+A256KW', { now }) };
}

describe('rotationDecision', () => {
  const t0 = new Date('2026-11-01T00:00:00Z');

  it('is due once the period has passed since the active key was activated', async () => {
    const { kek } = await fresh(t0);
    const base = { kek, keyWrap, periodMs: 24 * HOUR, requested: undefined, handled: undefined };
    expect(rotationDecision({ ...base, now: new Date(t0.getTime() + 23 * HOUR) })).toEqual({ due: false, nextRotation: new Date(t0.getTime() + 24 * HOUR) });
    expect(rotationDecision({ ...base, now: new Date(t0.getTime() + 24 * HOUR) })).toMatchObject({ due: true, trigger: 'period' });
  });

  it('is due on a rotate-now value not handled yet, and only once per value', async () => {
    const { kek } = await fresh(t0);
    const base = { kek, keyWrap, periodMs: 24 * HOUR, now: t0 };
    expect(rotationDecision({ ...base, requested: 'a', handled: undefined })).toMatchObject({ due: true, trigger: 'on-demand' });
    expect(rotationDecision({ ...base, requested: 'a', handled: 'a' }).due).toBe(false);
    expect(rotationDecision({ ...base, requested: 'b', handled: 'a' }).due).toBe(true);
    expect(rotationDecision({ ...base, requested: '', handled: undefined }).due).toBe(false);
  });

  it('is due when the policy asks for another algorithm', async () => {
    const { kek } = await fresh(t0);
    const decision = rotationDecision({ kek, keyWrap: effectiveKeyWrap({ algorithm: 'ECDH-ES+A256KW' }), periodMs: 24 * HOUR, requested: undefined, handled: undefined, now: t0 });
    expect(decision).toMatchObject({ due: true, trigger: 'algorithm-change' });
  });
});

describe('rotation with retention', () => {
  it('reads the schedule from the spec with the CRD defaults', () => {
    expect(rotationPeriodMs({})).toBe(720 * HOUR);
    expect(retentionSettings({})).toEqual({ retention: 2, retireAfterMs: 2160 * HOUR });
    expect(retentionSettings({ rotation: { retainDecryptOnly: 1, retireAfter: '2h' } })).toEqual({ retention: 1, retireAfterMs: 2 * HOUR });
  });

  it('rotates five times with retention 2 while data keys and sealed values keep being added; nothing becomes undecryptable', async () => {
    let now = new Date('2026-11-01T00:00:00Z');
    let sets = await fresh(now);
    const retention = { retention: 2, retireAfterMs: HOUR };
    // Service i's data key was wrapped in round i and is re-wrapped only for even services,
    // as if odd services had not reconciled yet; sealed values stay as committed.
    const wrapped = new Map<string, string>();
    const dataKeys = new Map<string, string>();
    const sealed: { value: string; jwe: string; name: string }[] = [];
    const retiredAll: string[] = [];
    for (let round = 0; round <= 5; round++) {
      const name = `svc-${round}`;
      const dek = generateDataKey();
      dataKeys.set(name, dek.id);
      wrapped.set(name, await wrapDataKey(sets.kek, dek, { namespace: 'ns', name }));
      const value = `value-${round}`;
      sealed.push({ value, name: `s-${round}`, jwe: await sealValue(publicJwks(sets.seal), value, { namespace: 'ns', name: `s-${round}`, key: 'k' }) });
      for (const [svc, w] of wrapped) {
        if (Number(svc.split('-')[1]) % 2 === 0) wrapped.set(svc, (await rewrapDataKey(sets.kek, w, { namespace: 'ns', name: svc })).wrapped);
      }
      if (round === 5) break;
      now = new Date(now.getTime() + 2 * HOUR);
      const usage = countUsage(sets, wrapped.values(), sealed.map((s) => s.jwe)).byKid;
      const change = await rotateBoth(sets, keyWrap, retention, usage, now);
      retiredAll.push(...change.retired);
      sets = change.keySets;
      expect(change.activated).toEqual([activeKey(sets.kek).kid, activeKey(sets.seal).kid]);
    }
    for (const [svc, w] of wrapped) {
      expect((await unwrapDataKey(sets.kek, w, { namespace: 'ns', name: svc })).id).toBe(dataKeys.get(svc));
    }
    for (const s of sealed) {
      expect((await openSealed(sets.seal, s.jwe, { namespace: 'ns', name: s.name, key: 'k' })).toString()).toBe(s.value);
    }
    // Unused KEKs beyond the two newest decrypt-only ones were retired; used ones were kept.
    expect(retiredAll.some((kid) => kid.startsWith('kek-'))).toBe(true);
    expect(sets.kek.keys.filter((k) => k.state === 'decrypt-only').length).toBeGreaterThanOrEqual(2);
    // Every sealing key still holds a committed value, so none was retired.
    expect(retiredAll.filter((kid) => kid.startsWith('seal-'))).toEqual([]);
  });

  it('retires nothing while the retention window or retireAfter holds, or a key is in use', async () => {
    const t0 = new Date('2026-11-01T00:00:00Z');
    let sets = await fresh(t0);
    const oldKid = activeKey(sets.kek).kid;
    for (let i = 1; i <= 3; i++) {
      sets = (await rotateBoth(sets, keyWrap, { retention: 1, retireAfterMs: 10 * HOUR }, {}, new Date(t0.getTime() + i * HOUR))).keySets;
    }
    const usage = countUsage(sets, [], []).byKid;
    // Too recent for retireAfter.
    expect(retireBoth(sets, { retention: 1, retireAfterMs: 10 * HOUR }, usage, new Date(t0.getTime() + 4 * HOUR))).toBeUndefined();
    // Old enough, but in use.
    const inUse = { ...usage, [oldKid]: 1 };
    const later = new Date(t0.getTime() + 20 * HOUR);
    const partial = retireBoth(sets, { retention: 1, retireAfterMs: 10 * HOUR }, inUse, later);
    expect(partial?.retired).not.toContain(oldKid);
    expect(partial?.keySets.kek.keys.map((k) => k.kid)).toContain(oldKid);
    // Unused: gone, only its record left.
    const all = retireBoth(sets, { retention: 1, retireAfterMs: 10 * HOUR }, usage, later);
    expect(all?.retired).toContain(oldKid);
    expect(all?.keySets.kek.retired.map((k) => k.kid)).toContain(oldKid);
  });
});
