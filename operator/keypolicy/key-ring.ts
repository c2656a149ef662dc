// The key sets of a KeyPolicy as stored in its key Secret. Parsing checks every key fully (RSA
// consistency is bigint arithmetic), so parsed sets are kept per Secret resourceVersion: a
// reconcile of any service pays for parsing only after the Secret changed.
import type { V1Secret } from '@kubernetes/client-node';
import { KeySetError } from '../crypto/errors.js';
import { parseKeySet, serializeKeySet } from '../crypto/keyset.js';
import type { KeySets } from './key-plan.js';
import { KEK_SET_KEY, SEAL_SET_KEY } from './names.js';

export function keySetsFromSecret(secret: V1Secret): KeySets {
  const kek = secret.data?.[KEK_SET_KEY];
  const seal = secret.data?.[SEAL_SET_KEY];
  if (kek === undefined || seal === undefined) {
    throw new KeySetError('InvalidKeySet', `key Secret ${secret.metadata?.name ?? ''} lacks ${KEK_SET_KEY} or ${SEAL_SET_KEY}`);
  }
  return {
    kek: parseKeySet(Buffer.from(kek, 'base64').toString('utf8'), 'kek'),
    seal: parseKeySet(Buffer.from(seal, 'base64').toString('utf8'), 'seal'),
  };
}

export function keySecretData(sets: KeySets): Record<string, string> {
  return {
    [KEK_SET_KEY]: Buffer.from(serializeKeySet(sets.kek), 'utf8').toString('base64'),
    [SEAL_SET_KEY]: Buffer.from(serializeKeySet(sets.seal), 'utf8').toString('base64'),
  };
}

export class KeyRing {
  readonly #parsed = new Map<string, { resourceVersion: string; sets: KeySets }>();

  /** The key sets in `secret`, parsed once per resourceVersion. Throws on a corrupt Secret. */
  read(secret: V1Secret): KeySets {
    const id = `${secret.metadata?.namespace ?? ''}/${secret.metadata?.name ?? ''}`;
    const version = secret.metadata?.resourceVersion ?? '';
    const cached = this.#parsed.get(id);
    if (cached && version !== '' && cached.resourceVersion === version) return cached.sets;
    const sets = keySetsFromSecret(secret);
    if (version !== '') this.#parsed.set(id, { resourceVersion: version, sets });
    return sets;
  }

  forget(namespace: string, name: string): void {
    this.#parsed.delete(`${namespace}/${name}`);
  }
}
