import { createHash } from 'node:crypto';
import { formatServiceBinding, type ServiceBinding } from './binding.js';
import { inspectWrappedDataKey, unwrapDataKey, type DataKey } from './datakey.js';
import type { KeySet } from './keyset.js';

// Unwrapped data keys, in memory only, so a reconcile does not pay a JWE unwrap (milliseconds;
// tens of milliseconds for ECDH-ES) per service per pass. Bounded twice: by entry count (LRU) and
// by age — the TTL counts from the unwrap, not from the last use, because it bounds how long a
// plaintext key lives in this process, not how idle it is.
//
// The cache key is the exact wrapped string plus the binding: a re-wrapped or edited wrapped key
// misses (and is authenticated afresh), and a wrapped key copied onto another service never hits
// the entry of the service it came from.

export interface DekCacheOptions {
  readonly maxEntries: number;
  readonly ttlMs: number;
  /** Milliseconds clock, injectable for tests. */
  readonly now?: () => number;
}

export interface DekCacheStats {
  readonly size: number;
  readonly hits: number;
  readonly misses: number;
  /** Entries dropped for size or age (not explicit invalidation). */
  readonly evictions: number;
}

interface Entry {
  readonly dataKey: DataKey;
  readonly kid: string;
  readonly expiresAt: number;
}

export class DekCache {
  readonly #entries = new Map<string, Entry>();
  readonly #loading = new Map<string, Promise<DataKey>>();
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #nextSweep = 0;
  /** Bumped by evictKid/clear so an unwrap already in flight does not repopulate the cache. */
  #generation = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(options: DekCacheOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError('maxEntries must be a positive integer');
    }
    if (!Number.isFinite(options.ttlMs) || options.ttlMs <= 0) throw new RangeError('ttlMs must be positive');
    this.#maxEntries = options.maxEntries;
    this.#ttlMs = options.ttlMs;
    this.#now = options.now ?? Date.now;
  }

  /** The data key for `wrapped`, unwrapping (and authenticating) with `keySet` on a miss. */
  unwrap(keySet: KeySet, wrapped: string, binding: ServiceBinding): Promise<DataKey> {
    return this.getOrLoad(wrapped, binding, () => unwrapDataKey(keySet, wrapped, binding));
  }

  /**
   * Cached value or `load()`; concurrent callers for the same entry share one load. A failed
   * load is not cached, so a repaired object is retried on the next reconcile.
   */
  async getOrLoad(wrapped: string, binding: ServiceBinding, load: () => Promise<DataKey>): Promise<DataKey> {
    const id = cacheId(wrapped, binding);
    const cached = this.#lookup(id);
    if (cached !== undefined) {
      this.#hits += 1;
      return cached;
    }
    const pending = this.#loading.get(id);
    if (pending !== undefined) {
      this.#hits += 1;
      return pending;
    }
    this.#misses += 1;
    const generation = this.#generation;
    const loading = load().then(
      (dataKey) => {
        this.#loading.delete(id);
        if (generation === this.#generation) this.#store(id, dataKey, kidOf(wrapped));
        return dataKey;
      },
      (error: unknown) => {
        this.#loading.delete(id);
        throw error;
      },
    );
    this.#loading.set(id, loading);
    return loading;
  }

  /** Drops every entry unwrapped under `kid` (e.g. on compromise); returns how many. */
  evictKid(kid: string): number {
    this.#generation += 1;
    this.#loading.clear();
    let dropped = 0;
    for (const [id, entry] of this.#entries) {
      if (entry.kid === kid) {
        this.#entries.delete(id);
        dropped += 1;
      }
    }
    return dropped;
  }

  clear(): void {
    this.#generation += 1;
    this.#loading.clear();
    this.#entries.clear();
  }

  /**
   * Drops expired entries now; returns how many. Expiry is otherwise lazy (on access, and a full
   * sweep at most every ttl/4 while the cache is used), so an idle process may call this on a
   * timer to bound key lifetime strictly.
   */
  sweep(): number {
    const now = this.#now();
    this.#nextSweep = now + this.#ttlMs / 4;
    let dropped = 0;
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        this.#entries.delete(id);
        dropped += 1;
      }
    }
    this.#evictions += dropped;
    return dropped;
  }

  stats(): DekCacheStats {
    this.sweep();
    return { size: this.#entries.size, hits: this.#hits, misses: this.#misses, evictions: this.#evictions };
  }

  #lookup(id: string): DataKey | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    this.#entries.delete(id);
    if (entry.expiresAt <= this.#now()) {
      this.#evictions += 1;
      return undefined;
    }
    // Re-insert: Map iteration order is insertion order, so the first key is the least recent.
    this.#entries.set(id, entry);
    return entry.dataKey;
  }

  #store(id: string, dataKey: DataKey, kid: string): void {
    this.#entries.delete(id);
    const now = this.#now();
    this.#entries.set(id, { dataKey, kid, expiresAt: now + this.#ttlMs });
    if (now >= this.#nextSweep) this.sweep();
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
      this.#evictions += 1;
    }
  }
}

function cacheId(wrapped: string, binding: ServiceBinding): string {
  return createHash('sha256').update(formatServiceBinding(binding)).update('\0').update(wrapped).digest('base64url');
}

function kidOf(wrapped: string): string {
  try {
    return inspectWrappedDataKey(wrapped).kid;
  } catch {
    return '';
  }
}
