// Integrity tags for envelope stores. A store lives in the service's namespace, where a tenant
// can write Secrets, so its labels and contents prove nothing. The tag is an HMAC under a key
// derived from the KEK the store's data key is wrapped under (with an HSM: from a secret the token
// derives under that KEK, kek-view.ts): only whoever holds the KeyPolicy's
// keys can make one, checking it costs no JWE operation, and it moves with every re-wrap.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { KeySetError } from './errors.js';
import type { ManagedKey } from './keyset.js';
import { viewMacSecret } from './kek-view.js';

const TAG_PREFIX = 'v1.';

/** What a tag covers: where the store is, whose it is, and every data entry. */
export interface StoreTagInput {
  readonly namespace: string;
  readonly store: string;
  readonly service: string;
  readonly policy: { readonly namespace: string; readonly name: string };
  /** The Secret's data as stored (base64 values). */
  readonly data: Readonly<Record<string, string>>;
}

function macKey(kek: ManagedKey): Buffer {
  // An HSM-held KEK cannot be read: the token made a secret for this kid (kek-view.ts).
  const fromToken = viewMacSecret(kek);
  // Otherwise the private member of the KEK: `k` for oct keys, `d` for RSA and EC.
  const secret = fromToken ?? (kek.kty === 'oct' ? kek['k'] : kek['d']);
  if (!secret) throw new KeySetError('InvalidKeySet', `KEK ${kek.kid} has no private material`);
  const ikm = typeof secret === 'string' ? Buffer.from(secret, 'base64url') : secret;
  return Buffer.from(hkdfSync('sha256', ikm, 'lockstep.dev/envelope-store', `mac/v1/${kek.kid}`, 32));
}

function canonical(input: StoreTagInput): string {
  const data = Object.keys(input.data).sort().map((k) => [k, input.data[k] ?? '']);
  return JSON.stringify([1, input.namespace, input.store, input.service, input.policy.namespace, input.policy.name, data]);
}

export function storeTag(kek: ManagedKey, input: StoreTagInput): string {
  return TAG_PREFIX + createHmac('sha256', macKey(kek)).update(canonical(input), 'utf8').digest('base64url');
}

export function storeTagMatches(kek: ManagedKey, input: StoreTagInput, tag: string): boolean {
  const expected = Buffer.from(storeTag(kek, input), 'utf8');
  const given = Buffer.from(tag, 'utf8');
  return expected.length === given.length && timingSafeEqual(expected, given);
}
