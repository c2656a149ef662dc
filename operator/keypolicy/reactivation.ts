// Rollback of a KEK rotation: `lockstep.dev/reactivate-kid: <kek kid>` (or `<kek kid>@<token>`, so
// the same kid can be asked for again by a later rollback) on the KeyPolicy makes that
// decrypt-only KEK active again (the RotationSchedule sets it when a key rotation fails its
// verification). The sealing key deactivated by the same rotation comes back with it, so values
// users seal to the published JWKS go to the pair that was active before. The value handled is
// recorded on the key Secret, so each value acts once, also across operator restarts.
import { activeKey, type KeySet } from '../crypto/keyset.js';
import { reactivateKey } from '../crypto/rotation.js';
import type { KeyChange, KeySets } from './key-plan.js';

export const ANNOTATION_REACTIVATE_KID = 'lockstep.dev/reactivate-kid';
/** On the key Secret: the last `lockstep.dev/reactivate-kid` value acted on. */
export const ANNOTATION_REACTIVATED_FOR = 'lockstep.dev/reactivated-for';

/** The kid of a request not acted on yet (the value to record as handled is the request itself). */
export function pendingReactivation(requested: string | undefined, handled: string | undefined): string | undefined {
  if (requested === undefined || requested === '' || requested === handled) return undefined;
  return requested.split('@')[0] || undefined;
}

export const reactivationValue = (kid: string, token: string): string => `${kid}@${token}`;

/**
 * Makes KEK `kid` active again, and the sealing key that was deactivated together with it (same
 * deactivatedAt: rotateBoth deactivates both at one instant). Throws KeySetError when `kid` is
 * unknown or retired. Undefined when `kid` is already the active KEK.
 */
export function reactivateBoth(sets: KeySets, kid: string, now: Date): KeyChange | undefined {
  const currentKek = activeKey(sets.kek);
  if (currentKek.kid === kid) return undefined;
  const target = sets.kek.keys.find((k) => k.kid === kid);
  const kek = reactivateKey(sets.kek, kid, now);
  const sealKid = target?.deactivatedAt === undefined ? undefined : pairedSealKid(sets.seal, target.deactivatedAt);
  const seal = sealKid === undefined ? sets.seal : reactivateKey(sets.seal, sealKid, now);
  const currentSeal = activeKey(sets.seal).kid;
  return {
    keySets: { kek, seal },
    activated: [kid, ...(sealKid !== undefined && sealKid !== currentSeal ? [sealKid] : [])],
    deactivated: [currentKek.kid, ...(sealKid !== undefined && sealKid !== currentSeal ? [currentSeal] : [])],
    retired: [],
  };
}

function pairedSealKid(seal: KeySet, deactivatedAt: string): string | undefined {
  return seal.keys.find((k) => k.state === 'decrypt-only' && k.deactivatedAt === deactivatedAt)?.kid;
}
