// The parts of a KeyPolicy's status computed from its key sets and from who uses them. Pure.
import type { KeyStatus } from '../api/v1alpha1/index.js';
import { countByKid } from '../crypto/rotation.js';
import type { KeySet } from '../crypto/keyset.js';
import { kekBackendOf } from '../crypto/kek-view.js';
import type { KeySets } from './key-plan.js';

/** Status holds at most this many keys (the CRD's maxItems). */
const MAX_STATUS_KEYS = 32;

export interface KeyUsage {
  /** Objects per kid across both sets; every live kid is present (0 when unused). */
  readonly byKid: Record<string, number>;
  /** Wrapped data keys still under a KEK other than the active one: re-wrap work left. */
  readonly pendingRewrap: number;
  /** Ciphertexts whose header names no kid; they hold no key alive. */
  readonly unreadable: number;
}

/**
 * Counts wrapped data keys against the KEK set and sealed values against the sealing set. The
 * result is what retirement consults: a key is only ever retired at a count of zero.
 */
export function countUsage(sets: KeySets, wrappedDataKeys: Iterable<string>, sealedValues: Iterable<string>): KeyUsage {
  const kek = countByKid(wrappedDataKeys, sets.kek);
  const seal = countByKid(sealedValues, sets.seal);
  const byKid: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [kid, count] of [...Object.entries(kek.byKid), ...Object.entries(seal.byKid)]) byKid[kid] = (byKid[kid] ?? 0) + count;
  const active = sets.kek.keys.find((k) => k.state === 'active')?.kid;
  const pendingRewrap = Object.entries(kek.byKid).filter(([kid]) => kid !== active).reduce((sum, [, n]) => sum + n, 0);
  return { byKid, pendingRewrap, unreadable: kek.unreadable + seal.unreadable };
}

/** What status says a KEK in an HSM is: AES-256-GCM in the token (the view's JWK alg means nothing). */
export const HSM_KEK_ALGORITHM = 'A256GCM-PKCS11';

function statusesOf(set: KeySet, usage: Readonly<Record<string, number>>): KeyStatus[] {
  const hsm = kekBackendOf(set) !== undefined;
  const live: KeyStatus[] = set.keys.map((key) => ({
    kid: key.kid,
    state: key.state,
    algorithm: hsm ? HSM_KEK_ALGORITHM : key.alg,
    createdAt: key.createdAt,
    activatedAt: key.activatedAt,
    ...(key.deactivatedAt ? { deactivatedAt: key.deactivatedAt } : {}),
    wrappedObjects: usage[key.kid] ?? 0,
  }));
  const retired: KeyStatus[] = set.retired.map((key) => ({
    kid: key.kid,
    state: 'retired',
    algorithm: hsm ? HSM_KEK_ALGORITHM : key.alg,
    createdAt: key.createdAt,
    retiredAt: key.retiredAt,
  }));
  return [...live, ...retired];
}

/** Key statuses, newest first (by creation), live keys before retired ones when trimming. */
export function keyStatuses(sets: KeySets, usage: Readonly<Record<string, number>>): KeyStatus[] {
  const all = [...statusesOf(sets.kek, usage), ...statusesOf(sets.seal, usage)];
  const live = all.filter((k) => k.state !== 'retired');
  const retired = all.filter((k) => k.state === 'retired');
  const newestFirst = (a: KeyStatus, b: KeyStatus) => Date.parse(b.createdAt ?? '') - Date.parse(a.createdAt ?? '') || a.kid.localeCompare(b.kid);
  const kept = [...live.sort(newestFirst), ...retired.sort(newestFirst)].slice(0, MAX_STATUS_KEYS);
  return kept.sort(newestFirst);
}
