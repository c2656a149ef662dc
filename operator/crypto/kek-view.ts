import type { KekBackend } from './kek-backend.js';
import type { KeySet, ManagedKey } from './keyset.js';
import type { KekIndex } from './kek-index.js';

// A KeyPolicy whose KEKs live in an HSM is still handled by the code written for key sets: census,
// status, retention and store tags read kids, states and dates. This builds that key set from the
// KEK index, WITHOUT key material (the keys stay in the token), and remembers which backend wraps
// and unwraps for it: datakey.ts asks `kekBackendOf` first, and compact-jwe refuses view keys, so
// nothing can treat a view key as a JWK. A view is never stored: key-ring.ts writes the index.
//
// Store tags (store-mac.ts) need a secret per kid. With an HSM it is made by the token
// (`macSecret`, a PRF under the non-extractable KEK) and kept here, in memory, like a data key.

const backends = new WeakMap<KeySet, KekBackend & { readonly index: KekIndex }>();
const macSecrets = new WeakMap<ManagedKey, Buffer>();

export function kekView(backend: KekBackend & { readonly index: KekIndex }, macSecret: (kid: string) => Buffer): KeySet {
  const keys = backend.index.keys.map((record): ManagedKey => {
    const key = { ...record, kty: 'oct', use: 'enc', alg: 'A256KW' } as unknown as ManagedKey;
    macSecrets.set(key, macSecret(record.kid));
    return key;
  });
  const view: KeySet = {
    purpose: 'kek',
    keys,
    retired: backend.index.retired.map((record) => ({ ...record, alg: 'A256KW' as const })),
  };
  backends.set(view, backend);
  return view;
}

/** The backend behind a view; undefined for a key set that holds its keys (the Secret backend). */
export function kekBackendOf(keySet: KeySet): (KekBackend & { readonly index: KekIndex }) | undefined {
  return backends.get(keySet);
}

/** The token-made tag secret of a view key; undefined for a key that carries its own material. */
export function viewMacSecret(key: ManagedKey): Buffer | undefined {
  return macSecrets.get(key);
}

export function isViewKey(key: object): boolean {
  return macSecrets.has(key as ManagedKey);
}
