import { describe, expect, it } from '@jest/globals';
import { effectiveKeyWrap } from '../api/v1alpha1/index.js';
import { generateDataKey, unwrapDataKey, wrapDataKey } from '../crypto/datakey.js';
import { activeKey, createKeySet, publicJwks } from '../crypto/keyset.js';
import { openSealed, sealValue } from '../crypto/seal.js';
import { rotateBoth, type KeySets } from './key-plan.js';
import { pendingReactivation, reactivateBoth } from './reactivation.js';

const keyWrap = effectiveKeyWrap({ algorithm: 'A256KW' });
const retention = { retention: 2, retireAfterMs: 3_600_000 };

async function fresh(now: Date): Promise<KeySets> {
  return { kek: await createKeySet('kek', 'A256KW', { now }), seal: await createKeySet('seal', 'ECDH-ES+A256KW', { now }) };
}

describe('pendingReactivation', () => {
  it('acts once per value and ignores an empty one', () => {
    expect(pendingReactivation('kek-a', undefined)).toBe('kek-a');
    expect(pendingReactivation('kek-a', 'kek-a')).toBeUndefined();
    expect(pendingReactivation('kek-b', 'kek-a')).toBe('kek-b');
    expect(pendingReactivation('', undefined)).toBeUndefined();
    expect(pendingReactivation(undefined, 'kek-a')).toBeUndefined();
    // A token lets a later rollback ask for the same kid again.
    expect(pendingReactivation('kek-a@r2', 'kek-a@r1')).toBe('kek-a');
    expect(pendingReactivation('kek-a@r2', 'kek-a@r2')).toBeUndefined();
  });
});

describe('reactivateBoth', () => {
  it('puts the KEK and sealing key of before a rotation back, and everything made under either still opens', async () => {
    const t0 = new Date('2026-11-01T00:00:00Z');
    const before = await fresh(t0);
    const binding = { namespace: 'shop', name: 'api' };
    const dek = generateDataKey();
    const oldWrapped = await wrapDataKey(before.kek, dek, binding);
    const secretBinding = { namespace: 'shop', name: 'db', key: 'password' };
    const oldSealed = await sealValue(publicJwks(before.seal), 'old', secretBinding);

    const t1 = new Date(t0.getTime() + 60_000);
    const rotated = (await rotateBoth(before, keyWrap, retention, {}, t1)).keySets;
    const newWrapped = await wrapDataKey(rotated.kek, dek, binding);
    const newSealed = await sealValue(publicJwks(rotated.seal), 'new', secretBinding);

    const t2 = new Date(t1.getTime() + 60_000);
    const change = reactivateBoth(rotated, activeKey(before.kek).kid, t2);
    expect(change).toBeDefined();
    const back = change!.keySets;
    expect(activeKey(back.kek).kid).toBe(activeKey(before.kek).kid);
    expect(activeKey(back.seal).kid).toBe(activeKey(before.seal).kid);
    expect(change!.activated).toEqual([activeKey(before.kek).kid, activeKey(before.seal).kid]);
    expect(change!.deactivated).toEqual([activeKey(rotated.kek).kid, activeKey(rotated.seal).kid]);
    // The rotated-away keys stay decrypt-only: whatever was already made under them opens.
    for (const wrapped of [oldWrapped, newWrapped]) expect((await unwrapDataKey(back.kek, wrapped, binding)).id).toBe(dek.id);
    expect((await openSealed(back.seal, oldSealed, secretBinding)).toString()).toBe('old');
    expect((await openSealed(back.seal, newSealed, secretBinding)).toString()).toBe('new');
    // Not due for a period rotation right away: the reactivated key counts from now.
    expect(activeKey(back.kek).activatedAt).toBe(t2.toISOString());
  });

  it('does nothing when the kid is already active, and refuses an unknown kid', async () => {
    const sets = await fresh(new Date('2026-11-01T00:00:00Z'));
    expect(reactivateBoth(sets, activeKey(sets.kek).kid, new Date())).toBeUndefined();
    expect(() => reactivateBoth(sets, 'kek-unknown', new Date())).toThrow(/not in the key set/);
  });
});
