import { beforeAll, describe, expect, it } from '@jest/globals';
import { DekCache } from './dek-cache.js';
import { generateDataKey, wrapDataKey, type DataKey } from './datakey.js';
import { activeKey, createKeySet, type KeySet } from './keyset.js';

const now = new Date('2026-11-15T12:00:00Z');
const service = { namespace: 'payments', name: 'ledger' };

function clock(start = 0): { now: () => number; advance: (ms: number) => void } {
  let current = start;
  return { now: () => current, advance: (ms) => (current += ms) };
}

describe('DekCache', () => {
  let kek: KeySet;
  let dataKey: DataKey;
  let wrapped: string;
  beforeAll(async () => {
    kek = await createKeySet('kek', 'A256KW', { now });
    dataKey = generateDataKey();
    wrapped = await wrapDataKey(kek, dataKey, service);
  });

  it('unwraps once and serves later reconciles from memory', async () => {
    const cache = new DekCache({ maxEntries: 10, ttlMs: 60_000 });
    const first = await cache.unwrap(kek, wrapped, service);
    const second = await cache.unwrap(kek, wrapped, service);
    expect(first.key.equals(dataKey.key)).toBe(true);
    expect(second).toBe(first);
    expect(cache.stats()).toEqual({ size: 1, hits: 1, misses: 1, evictions: 0 });
  });

  it('shares one unwrap between concurrent callers', async () => {
    const cache = new DekCache({ maxEntries: 10, ttlMs: 60_000 });
    let loads = 0;
    const load = async (): Promise<DataKey> => {
      loads += 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
      return dataKey;
    };
    const results = await Promise.all([1, 2, 3].map(() => cache.getOrLoad(wrapped, service, load)));
    expect(loads).toBe(1);
    expect(new Set(results).size).toBe(1);
  });

  it('expires entries after the TTL counted from the unwrap, even when used', async () => {
    const time = clock();
    const cache = new DekCache({ maxEntries: 10, ttlMs: 1000, now: time.now });
    let loads = 0;
    const load = async (): Promise<DataKey> => {
      loads += 1;
      return dataKey;
    };
    await cache.getOrLoad(wrapped, service, load);
    time.advance(600);
    await cache.getOrLoad(wrapped, service, load);
    time.advance(600);
    await cache.getOrLoad(wrapped, service, load);
    expect(loads).toBe(2);
  });

  it('sweeps expired keys out of memory without an access', async () => {
    const time = clock();
    const cache = new DekCache({ maxEntries: 10, ttlMs: 1000, now: time.now });
    await cache.getOrLoad(wrapped, service, async () => dataKey);
    time.advance(1000);
    expect(cache.sweep()).toBe(1);
    expect(cache.stats().size).toBe(0);
  });

  it('evicts the least recently used entry beyond maxEntries', async () => {
    const cache = new DekCache({ maxEntries: 2, ttlMs: 60_000 });
    const keys = ['a', 'b', 'c'].map((name) => ({ namespace: 'ns', name }));
    let loads = 0;
    const load = async (): Promise<DataKey> => {
      loads += 1;
      return generateDataKey();
    };
    await cache.getOrLoad(wrapped, keys[0]!, load);
    await cache.getOrLoad(wrapped, keys[1]!, load);
    await cache.getOrLoad(wrapped, keys[0]!, load); // a is now most recent
    await cache.getOrLoad(wrapped, keys[2]!, load); // evicts b
    expect(loads).toBe(3);
    await cache.getOrLoad(wrapped, keys[0]!, load);
    expect(loads).toBe(3);
    await cache.getOrLoad(wrapped, keys[1]!, load);
    expect(loads).toBe(4);
    expect(cache.stats()).toMatchObject({ size: 2, evictions: 2 });
  });

  it('keys entries by binding, so a copied wrapped key never hits another service\'s entry', async () => {
    const cache = new DekCache({ maxEntries: 10, ttlMs: 60_000 });
    await cache.unwrap(kek, wrapped, service);
    await expect(cache.unwrap(kek, wrapped, { namespace: 'attacker', name: 'ledger' })).rejects.toMatchObject({
      reason: 'WrongBinding',
    });
  });

  it('does not cache failures', async () => {
    const cache = new DekCache({ maxEntries: 10, ttlMs: 60_000 });
    let attempts = 0;
    const flaky = async (): Promise<DataKey> => {
      attempts += 1;
      if (attempts === 1) throw new Error('transient');
      return dataKey;
    };
    await expect(cache.getOrLoad(wrapped, service, flaky)).rejects.toThrow('transient');
    await expect(cache.getOrLoad(wrapped, service, flaky)).resolves.toBe(dataKey);
    expect(attempts).toBe(2);
  });

  it('misses on a re-wrapped key and drops entries by kid', async () => {
    const cache = new DekCache({ maxEntries: 10, ttlMs: 60_000 });
    const again = await wrapDataKey(kek, dataKey, service);
    await cache.unwrap(kek, wrapped, service);
    await cache.unwrap(kek, again, service);
    expect(cache.stats()).toMatchObject({ size: 2, misses: 2 });
    expect(cache.evictKid(activeKey(kek).kid)).toBe(2);
    expect(cache.stats().size).toBe(0);
  });

  it('does not let an unwrap in flight repopulate the cache after evictKid', async () => {
    const cache = new DekCache({ maxEntries: 10, ttlMs: 60_000 });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const pending = cache.getOrLoad(wrapped, service, async () => {
      await gate;
      return dataKey;
    });
    cache.evictKid(activeKey(kek).kid);
    release();
    await pending;
    expect(cache.stats().size).toBe(0);
  });

  it('rejects nonsensical bounds', () => {
    expect(() => new DekCache({ maxEntries: 0, ttlMs: 1 })).toThrow(RangeError);
    expect(() => new DekCache({ maxEntries: 1, ttlMs: 0 })).toThrow(RangeError);
  });
});
