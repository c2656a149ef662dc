import { readLockstepHeader } from './compact-jwe.js';
import { KeySetError } from './errors.js';
import { parseWrapped } from './pkcs11-wrapped.js';
import {
  activeKey,
  generateKey,
  orderKeys,
  type EcCurve,
  type KeySet,
  type KeyWrapAlgorithm,
  type ManagedKey,
  type RetiredKey,
  type RsaBits,
} from './keyset.js';

// Key-set transitions, as pure functions over the stored document; only `rotateKeySet` touches
// randomness (to make the new key). The invariant: nothing becomes undecryptable. A key is
// retired — its material dropped — only when it is not among the `retention` newest decrypt-only
// keys AND has been decrypt-only for at least `retireAfterMs` AND the caller reports zero objects
// still under it (KeyPolicy spec.rotation: retainDecryptOnly, retireAfter). A kid missing from
// `usage` counts as "unknown, keep": forgetting to count must never destroy a key.

/** Objects (wrapped data keys, sealed values) per kid, as counted by the caller. */
export type KidUsage = Readonly<Record<string, number>>;

export interface RetentionOptions {
  /** How many previous keys stay decrypt-only regardless of usage. */
  readonly retention: number;
  /** Least time a key stays decrypt-only before it may be retired (default 0). */
  readonly retireAfterMs?: number;
  readonly usage: KidUsage;
  readonly now: Date;
  /** How many retired records to keep, so old kids still report RetiredKey (default 20). */
  readonly maxRetiredRecords?: number;
}

export interface RetirementResult {
  readonly keySet: KeySet;
  readonly retired: readonly string[];
}

export interface RotationResult extends RetirementResult {
  readonly activated: string;
  /** The key that was active before, now decrypt-only (unless retired in the same step). */
  readonly deactivated: string;
}

export interface RotateOptions extends RetentionOptions {
  /** Algorithm of the new key; defaults to the current active key's (a policy change sets it). */
  readonly alg?: KeyWrapAlgorithm;
  readonly rsaBits?: RsaBits;
  readonly curve?: EcCurve;
}

export interface KidCount {
  /** Every live kid of the key set (0 when unused), plus any other kid seen. */
  readonly byKid: Record<string, number>;
  /** Ciphertexts whose header could not be read; they name no kid, so they hold no key alive. */
  readonly unreadable: number;
}

const DEFAULT_MAX_RETIRED_RECORDS = 20;

function checkRetention(options: RetentionOptions): void {
  if (!Number.isInteger(options.retention) || options.retention < 0) {
    throw new KeySetError('InvalidTransition', 'retention must be a non-negative integer');
  }
  const after = options.retireAfterMs ?? 0;
  if (!Number.isFinite(after) || after < 0) {
    throw new KeySetError('InvalidTransition', 'retireAfterMs must be a non-negative number');
  }
  const max = options.maxRetiredRecords ?? DEFAULT_MAX_RETIRED_RECORDS;
  if (!Number.isInteger(max) || max < 0) {
    throw new KeySetError('InvalidTransition', 'maxRetiredRecords must be a non-negative integer');
  }
}

function inUse(usage: KidUsage, kid: string): boolean {
  const count = Object.hasOwn(usage, kid) ? usage[kid] : undefined;
  return count === undefined || !Number.isFinite(count) || count !== 0;
}

/** Retires decrypt-only keys beyond `retention` that nothing uses any more. */
export function retireUnusedKeys(keySet: KeySet, options: RetentionOptions): RetirementResult {
  checkRetention(options);
  activeKey(keySet);
  const ordered = orderKeys(keySet.keys);
  const kept: ManagedKey[] = [];
  const retiredNow: RetiredKey[] = [];
  let decryptOnlySeen = 0;
  for (const key of ordered) {
    if (key.state === 'active') {
      kept.push(key);
      continue;
    }
    decryptOnlySeen += 1;
    const deactivated = Date.parse(key.deactivatedAt ?? options.now.toISOString());
    const oldEnough = options.now.getTime() - deactivated >= (options.retireAfterMs ?? 0);
    if (decryptOnlySeen > options.retention && oldEnough && !inUse(options.usage, key.kid)) {
      retiredNow.push({
        kid: key.kid,
        alg: key.alg,
        state: 'retired',
        createdAt: key.createdAt,
        retiredAt: options.now.toISOString(),
      });
    } else {
      kept.push(key);
    }
  }
  if (retiredNow.length === 0) return { keySet, retired: [] };
  const max = options.maxRetiredRecords ?? DEFAULT_MAX_RETIRED_RECORDS;
  return {
    keySet: {
      purpose: keySet.purpose,
      keys: kept,
      retired: [...retiredNow, ...keySet.retired].slice(0, max),
    },
    retired: retiredNow.map((key) => key.kid),
  };
}

/** Makes `newKey` active, demotes the current active key, then applies retirement. */
export function applyRotation(keySet: KeySet, newKey: ManagedKey, options: RetentionOptions): RotationResult {
  checkRetention(options);
  const previous = activeKey(keySet);
  if (newKey.state !== 'active') throw new KeySetError('InvalidTransition', 'the new key must be generated active');
  if (keySet.keys.some((key) => key.kid === newKey.kid) || keySet.retired.some((key) => key.kid === newKey.kid)) {
    throw new KeySetError('InvalidTransition', `kid ${newKey.kid} is already in the key set`);
  }
  if (keySet.purpose === 'seal' && newKey.alg === 'A256KW') {
    throw new KeySetError('UnsupportedAlgorithm', 'A256KW cannot be a sealing key');
  }
  if (!newKey.kid.startsWith(`${keySet.purpose}-`)) {
    throw new KeySetError('WrongPurpose', `key ${newKey.kid} was not generated for a ${keySet.purpose} key set`);
  }
  const demoted: ManagedKey = { ...previous, state: 'decrypt-only', deactivatedAt: options.now.toISOString() };
  const rotated: KeySet = {
    purpose: keySet.purpose,
    keys: orderKeys([newKey, demoted, ...keySet.keys.filter((key) => key.kid !== previous.kid)]),
    retired: keySet.retired,
  };
  const { keySet: result, retired } = retireUnusedKeys(rotated, options);
  return { keySet: result, retired, activated: newKey.kid, deactivated: previous.kid };
}

/** Generates a key and rotates to it. */
export async function rotateKeySet(keySet: KeySet, options: RotateOptions): Promise<RotationResult> {
  checkRetention(options);
  const alg = options.alg ?? activeKey(keySet).alg;
  const newKey = await generateKey(keySet.purpose, alg, {
    now: options.now,
    ...(options.rsaBits === undefined ? {} : { rsaBits: options.rsaBits }),
    ...(options.curve === undefined ? {} : { curve: options.curve }),
  });
  return applyRotation(keySet, newKey, options);
}

/**
 * Rollback of a rotation: a decrypt-only key becomes active again and the current active key
 * becomes decrypt-only (it may already wrap some objects, so it is kept, never dropped).
 */
export function reactivateKey(keySet: KeySet, kid: string, now: Date): KeySet {
  const current = activeKey(keySet);
  if (current.kid === kid) return keySet;
  const target = keySet.keys.find((key) => key.kid === kid);
  if (target === undefined) {
    const retired = keySet.retired.some((key) => key.kid === kid);
    throw new KeySetError('InvalidTransition', retired ? `key ${kid} is retired and cannot return` : `key ${kid} is not in the key set`);
  }
  const { deactivatedAt: _dropped, ...rest } = target;
  const reactivated = { ...rest, state: 'active', activatedAt: now.toISOString() } as ManagedKey;
  const demoted: ManagedKey = { ...current, state: 'decrypt-only', deactivatedAt: now.toISOString() };
  return {
    purpose: keySet.purpose,
    keys: orderKeys([
      reactivated,
      demoted,
      ...keySet.keys.filter((key) => key.kid !== kid && key.kid !== current.kid),
    ]),
    retired: keySet.retired,
  };
}

/**
 * Counts ciphertexts (wrapped data keys or sealed values) per kid from their headers alone.
 * With a key set, every live kid appears (0 when unused) so the result can be passed straight
 * to rotation as `usage`.
 */
export function countByKid(ciphertexts: Iterable<string>, keySet?: KeySet): KidCount {
  // No prototype: a kid is header text and could be "__proto__".
  const byKid: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const key of keySet?.keys ?? []) byKid[key.kid] = 0;
  let unreadable = 0;
  for (const ciphertext of ciphertexts) {
    let kid: string;
    try {
      kid = readLockstepHeader(ciphertext).kid;
    } catch {
      // A data key wrapped in an HSM (alg dir, pkcs11-wrapped.ts) names its kid too.
      try {
        kid = parseWrapped(ciphertext).kid;
      } catch {
        unreadable += 1;
        continue;
      }
    }
    byKid[kid] = (byKid[kid] ?? 0) + 1;
  }
  return { byKid, unreadable };
}
