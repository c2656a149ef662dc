// The key sets of a KeyPolicy as stored in its key Secret. Parsing checks every key fully (RSA
// consistency is bigint arithmetic), so parsed sets are kept per Secret resourceVersion: a
// reconcile of any service pays for parsing only after the Secret changed.
//
// With keyStore PKCS11 the Secret holds the KEK index (kids and dates, no material) instead of
// the KEK JWKS; the KEK set is then a view over the token (crypto/kek-view.ts), opened with the
// policy's HSM session (`open`). The sealing keys stay in the Secret either way.
import type { V1Secret } from '@kubernetes/client-node';
import type { KeyPolicy } from '../api/v1alpha1/index.js';
import { KeySetError } from '../crypto/errors.js';
import { parseKekIndex, serializeKekIndex } from '../crypto/kek-index.js';
import { kekBackendOf, kekView } from '../crypto/kek-view.js';
import { parseKeySet, serializeKeySet, type KeySet } from '../crypto/keyset.js';
import { Pkcs11KekBackend } from '../crypto/pkcs11-kek-backend.js';
import type { Pkcs11Session } from '../crypto/pkcs11-session.js';
import type { KeySets } from './key-plan.js';
import type { HsmSessions } from './hsm-sessions.js';
import { KEK_INDEX_KEY, KEK_SET_KEY, SEAL_SET_KEY } from './names.js';

/** Whether the key Secret keeps its KEKs in an HSM (it holds the index, not the JWKS). */
export function keptInHsm(secret: Pick<V1Secret, 'data'>): boolean {
  return secret.data?.[KEK_INDEX_KEY] !== undefined;
}

export function keySetsFromSecret(secret: V1Secret): KeySets {
  const kek = secret.data?.[KEK_SET_KEY];
  const seal = secret.data?.[SEAL_SET_KEY];
  if (kek === undefined && keptInHsm(secret)) {
    throw new KeySetError('InvalidKeySet', `key Secret ${secret.metadata?.name ?? ''} keeps its KEKs in an HSM: only the operator, through the token, can use them`);
  }
  if (kek === undefined || seal === undefined) {
    throw new KeySetError('InvalidKeySet', `key Secret ${secret.metadata?.name ?? ''} lacks ${KEK_SET_KEY} or ${SEAL_SET_KEY}`);
  }
  return {
    kek: parseKeySet(Buffer.from(kek, 'base64').toString('utf8'), 'kek'),
    seal: parseKeySet(Buffer.from(seal, 'base64').toString('utf8'), 'seal'),
  };
}

/** The sealing key set alone (it is in the Secret whatever keeps the KEKs). */
export function sealSetFromSecret(secret: V1Secret): KeySet {
  const seal = secret.data?.[SEAL_SET_KEY];
  if (seal === undefined) throw new KeySetError('InvalidKeySet', `key Secret ${secret.metadata?.name ?? ''} lacks ${SEAL_SET_KEY}`);
  return parseKeySet(Buffer.from(seal, 'base64').toString('utf8'), 'seal');
}

export function keySecretData(sets: KeySets): Record<string, string> {
  const backend = kekBackendOf(sets.kek);
  const seal = Buffer.from(serializeKeySet(sets.seal), 'utf8').toString('base64');
  // A view has no material and must never be written as a JWKS: the index is what is stored.
  if (backend) return { [KEK_INDEX_KEY]: Buffer.from(serializeKekIndex(backend.index), 'utf8').toString('base64'), [SEAL_SET_KEY]: seal };
  return { [KEK_SET_KEY]: Buffer.from(serializeKeySet(sets.kek), 'utf8').toString('base64'), [SEAL_SET_KEY]: seal };
}

/** KEK and sealing sets over an HSM: the index opened in the token (every live kid must be there). */
export async function hsmKeySets(session: Pkcs11Session, index: ReturnType<typeof parseKekIndex> | Pkcs11KekBackend, seal: KeySet, owner?: string): Promise<KeySets> {
  const backend = index instanceof Pkcs11KekBackend ? index : await Pkcs11KekBackend.open(session, index, owner);
  return { kek: kekView(backend, (kid) => backend.macSecret(kid)), seal };
}

/** Whose keys in a shared token: a policy's KEKs carry its namespace/name in CKA_ID (pkcs11-kek-backend.ts). */
export function hsmKeyOwner(policy: Pick<KeyPolicy, 'metadata'>): string {
  return `${policy.metadata.namespace ?? ''}/${policy.metadata.name ?? ''}`;
}

export class KeyRing {
  readonly #parsed = new Map<string, { resourceVersion: string; sets: KeySets; session?: Pkcs11Session }>();

  constructor(private readonly hsm?: HsmSessions) {}

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

  /**
   * The key sets for `policy`, opening its HSM when its keyStore is PKCS11. The Secret's form must
   * match the policy's store: a mismatch (keys retained from an earlier policy of another store)
   * is reported, never "fixed" by generating. Throws KeySetError, KeyStoreError, HsmNotAllowedError.
   */
  async open(secret: V1Secret, policy: KeyPolicy): Promise<KeySets> {
    const pkcs11 = policy.spec.keyStore?.type === 'PKCS11' ? policy.spec.keyStore.pkcs11 : undefined;
    const name = secret.metadata?.name ?? '';
    if (pkcs11 === undefined) {
      if (keptInHsm(secret) && secret.data?.[KEK_SET_KEY] === undefined) {
        throw new KeySetError('InvalidKeySet', `key Secret ${name} keeps its KEKs in an HSM, but the KeyPolicy's keyStore is Secret`);
      }
      return this.read(secret);
    }
    if (!keptInHsm(secret)) throw new KeySetError('InvalidKeySet', `key Secret ${name} holds a KEK JWKS, but the KeyPolicy's keyStore is PKCS11: keys are never moved between stores`);
    if (!this.hsm) throw new KeySetError('InvalidKeySet', 'this operator was started without HSM support');
    const session = await this.hsm.session(policy.metadata.namespace ?? '', pkcs11.configSecretName);
    const id = `${secret.metadata?.namespace ?? ''}/${name}`;
    const version = secret.metadata?.resourceVersion ?? '';
    const cached = this.#parsed.get(id);
    if (cached && version !== '' && cached.resourceVersion === version && cached.session === session) return cached.sets;
    const index = parseKekIndex(Buffer.from(secret.data?.[KEK_INDEX_KEY] ?? '', 'base64').toString('utf8'));
    const sets = await hsmKeySets(session, index, sealSetFromSecret(secret), hsmKeyOwner(policy));
    if (version !== '') this.#parsed.set(id, { resourceVersion: version, sets, session });
    return sets;
  }

  /** The HSM session for a PKCS11 policy (to make its first key), after the grant check. */
  async hsmSession(policy: KeyPolicy): Promise<Pkcs11Session> {
    const pkcs11 = policy.spec.keyStore?.pkcs11;
    if (!this.hsm || pkcs11 === undefined) throw new KeySetError('InvalidKeySet', 'no HSM configured for this KeyPolicy');
    return this.hsm.session(policy.metadata.namespace ?? '', pkcs11.configSecretName);
  }

  forget(namespace: string, name: string): void {
    this.#parsed.delete(`${namespace}/${name}`);
  }
}
