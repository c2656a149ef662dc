import { describe, expect, it } from '@jest/globals';
import { generateDataKey, wrapDataKey } from '../crypto/datakey.js';
import { activeKey, createKeySet, publicJwks } from '../crypto/keyset.js';
import { sealValue } from '../crypto/seal.js';
import { rotateBoth } from './key-plan.js';
import { countUsage, keyStatuses } from './status.js';
import { effectiveKeyWrap } from '../api/v1alpha1/index.js';

describe('key usage and status', () => {
  it('counts wrapped data keys per KEK and sealed values per sealing key, and the re-wrap work left', async () => {
    const t0 = new Date('2026-11-01T00:00:00Z');
    const first = { kek: await createKeySet('kek', 'A256KW', { now: t0 }), seal: await createKeySet('seal', 'ECDH-ES+A256KW', { now: t0 }) };
    const old = await wrapDataKey(first.kek, generateDataKey(), { namespace: 'a', name: 'one' });
    const sealedOld = await sealValue(publicJwks(first.seal), 'v', { namespace: 'a', name: 's', key: 'k' });
    const sets = (await rotateBoth(first, effectiveKeyWrap({ algorithm: 'A256KW' }), { retention: 2, retireAfterMs: 0 }, {}, new Date(t0.getTime() + 1000))).keySets;
    const fresh = await wrapDataKey(sets.kek, generateDataKey(), { namespace: 'a', name: 'two' });

    const usage = countUsage(sets, [old, fresh, 'garbage'], [sealedOld]);
    expect(usage.byKid[activeKey(first.kek).kid]).toBe(1);
    expect(usage.byKid[activeKey(sets.kek).kid]).toBe(1);
    expect(usage.byKid[activeKey(first.seal).kid]).toBe(1);
    expect(usage.byKid[activeKey(sets.seal).kid]).toBe(0);
    expect(usage.pendingRewrap).toBe(1);
    expect(usage.unreadable).toBe(1);

    const statuses = keyStatuses(sets, usage.byKid);
    expect(statuses).toHaveLength(4);
    expect(statuses.find((s) => s.kid === activeKey(first.kek).kid)).toMatchObject({ state: 'decrypt-only', wrappedObjects: 1, algorithm: 'A256KW' });
    expect(statuses[0]?.createdAt).toBe(new Date(t0.getTime() + 1000).toISOString());
    // Public metadata only.
    expect(JSON.stringify(statuses)).not.toMatch(/"(k|d)":/);
  });
});
