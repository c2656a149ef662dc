import { describe, expect, it } from '@jest/globals';
import { generateDataKey, unwrapDataKey, wrapDataKey } from '../crypto/datakey.js';
import { activeKey, createKeySet } from '../crypto/keyset.js';
import { rotateKeySet } from '../crypto/rotation.js';
import { mergeKeySets } from './key-merge.js';

const t0 = new Date('2026-11-01T00:00:00Z');
const now = new Date('2026-11-30T06:00:00Z');
const sets = async (at: Date) => ({ kek: await createKeySet('kek', 'A256KW', { now: at }), seal: await createKeySet('seal', 'ECDH-ES+A256KW', { now: at }) });

describe('mergeKeySets', () => {
  it('keeps the live active keys, joins the backed-up ones as decrypt-only from now, and both open their data', async () => {
    const backedUp = await sets(t0);
    const live = await sets(now);
    const binding = { namespace: 'shop', name: 'api' };
    const old = await wrapDataKey(backedUp.kek, generateDataKey(), binding);
    const fresh = await wrapDataKey(live.kek, generateDataKey(), binding);

    const { sets: merged, added } = mergeKeySets(live, backedUp, now);
    expect(activeKey(merged.kek).kid).toBe(activeKey(live.kek).kid);
    expect(activeKey(merged.seal).kid).toBe(activeKey(live.seal).kid);
    expect(added).toEqual([activeKey(backedUp.kek).kid, activeKey(backedUp.seal).kid]);
    const joined = merged.kek.keys.find((k) => k.kid === activeKey(backedUp.kek).kid);
    expect(joined).toMatchObject({ state: 'decrypt-only', deactivatedAt: now.toISOString() });
    await expect(unwrapDataKey(merged.kek, old, binding)).resolves.toBeDefined();
    await expect(unwrapDataKey(merged.kek, fresh, binding)).resolves.toBeDefined();

    // Merging again adds nothing.
    expect(mergeKeySets(merged, backedUp, now).added).toEqual([]);
  });

  it('never brings back a key the live set retired', async () => {
    const backedUp = await sets(t0);
    const rotated = await rotateKeySet(backedUp.kek, { now: new Date(t0.getTime() + 1000), retention: 0, usage: { [activeKey(backedUp.kek).kid]: 0 }, retireAfterMs: 0 });
    const live = { kek: rotated.keySet, seal: backedUp.seal };
    expect(live.kek.retired.map((k) => k.kid)).toContain(activeKey(backedUp.kek).kid);
    const { sets: merged, added } = mergeKeySets(live, backedUp, now);
    expect(added).toEqual([]);
    expect(merged.kek.keys.map((k) => k.kid)).not.toContain(activeKey(backedUp.kek).kid);
  });
});
