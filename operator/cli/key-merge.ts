// `lockstep restore --merge`: a policy that was re-created before its keys were restored has new
// keys, and possibly data under them already. Neither set may be dropped, so the backed-up keys
// join the live ones as decrypt-only: the live active key stays active, old data opens again, and
// the operator re-wraps it under the active KEK. Every joined key counts as deactivated now, so
// retirement (retireAfter) cannot take one before the services that need it are back. Pure.
import { KeySetError } from '../crypto/errors.js';
import { orderKeys, parseKeySet, serializeKeySet, type KeySet, type ManagedKey, type RetiredKey } from '../crypto/keyset.js';
import type { KeySets } from '../keypolicy/key-plan.js';

/** Retired records kept, as rotation keeps them. */
const MAX_RETIRED = 20;

function mergeSet(live: KeySet, backedUp: KeySet, now: Date): { set: KeySet; added: string[] } {
  if (live.purpose !== backedUp.purpose) throw new KeySetError('WrongPurpose', `cannot merge a ${backedUp.purpose} set into a ${live.purpose} set`);
  const known = new Set([...live.keys, ...live.retired].map((k) => k.kid));
  // A kid the live set retired stays retired: its data was re-wrapped before that.
  const joined: ManagedKey[] = backedUp.keys
    .filter((k) => !known.has(k.kid))
    .map((k) => ({ ...k, state: 'decrypt-only', deactivatedAt: now.toISOString() }));
  const retired: RetiredKey[] = [...live.retired, ...backedUp.retired.filter((k) => !known.has(k.kid) && !joined.some((j) => j.kid === k.kid))]
    .sort((a, b) => Date.parse(b.retiredAt) - Date.parse(a.retiredAt))
    .slice(0, MAX_RETIRED);
  const merged: KeySet = { purpose: live.purpose, keys: orderKeys([...live.keys, ...joined]), retired };
  // Round-trip through the parser: the result must be a key set the operator accepts.
  return { set: parseKeySet(serializeKeySet(merged), live.purpose), added: joined.map((k) => k.kid) };
}

export function mergeKeySets(live: KeySets, backedUp: KeySets, now: Date): { sets: KeySets; added: string[] } {
  const kek = mergeSet(live.kek, backedUp.kek, now);
  const seal = mergeSet(live.seal, backedUp.seal, now);
  return { sets: { kek: kek.set, seal: seal.set }, added: [...kek.added, ...seal.added] };
}
