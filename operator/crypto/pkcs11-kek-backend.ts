import { createHash, createSecretKey, randomBytes } from 'node:crypto';
import { assertServiceBinding, formatServiceBinding, type ServiceBinding } from './binding.js';
import { DATA_KEY_ID, type DataKey } from './datakey.js';
import { DecryptError, KeySetError } from './errors.js';
import type { KekBackend, KekRotation } from './kek-backend.js';
import { activeRecord, newKekIndex, retireInIndex, rotateIndex, type KekIndex } from './kek-index.js';
import { KeyStoreError } from './key-store-errors.js';
import { newKid } from './keyset.js';
import type { GcmParams, Mechanism } from 'pkcs11js';
import { CKR, ckrName, ckrOf, type Handle, type Pkcs11, type Pkcs11Session } from './pkcs11-session.js';
import { encodeHeader, formatWrapped, parseWrapped } from './pkcs11-wrapped.js';
import type { RetentionOptions } from './rotation.js';

// A KeyPolicy's KEKs as AES-256 keys generated inside a PKCS#11 token: sensitive, never
// extractable, token objects labelled with their kid. Data keys are wrapped and unwrapped by
// AES-256-GCM in the token (C_Encrypt/C_Decrypt) with the JWE protected header — kid, service
// binding, data key id — as additional data (format: pkcs11-wrapped.ts). Why GCM rather than
// CKM_AES_KEY_WRAP_PAD: key wrap has no additional data, so the binding would need a second key
// or construct; GCM authenticates it in the same call, and the data key stays a node:crypto
// KeyObject for the envelope hot path, exactly as with the Secret backend.
//
// Which kid is active and since when is kept in a KekIndex (no material) the caller persists;
// the token holds the keys. A key leaves the token only through retire/rotate retention. A lost
// session is KeyStoreError('Unavailable') — the caller reports it and retries; nothing here ever
// makes a key because one is missing (KeyStoreError('KeyMissing') instead).

const KEK_LABEL_PREFIX = 'kek-';
// Return values a module may give for a ciphertext that does not authenticate (SoftHSM 2.6 gives
// CKR_GENERAL_ERROR for a GCM tag mismatch); told apart from a failing device by a health probe.
const BAD_CIPHERTEXT = new Set<number>([CKR.GENERAL_ERROR, CKR.FUNCTION_FAILED, CKR.ENCRYPTED_DATA_INVALID, CKR.ENCRYPTED_DATA_LEN_RANGE]);
const STALE_HANDLE = new Set<number>([CKR.KEY_HANDLE_INVALID, CKR.OBJECT_HANDLE_INVALID]);

export class Pkcs11KekBackend implements KekBackend {
  readonly kind = 'pkcs11' as const;
  private current: KekIndex;
  private readonly handles = new Map<string, Handle>();
  /** Kids retired in the index whose token object could not be destroyed yet. */
  private readonly pending = new Set<string>();

  /**
   * `owner` (the KeyPolicy's namespace/name) goes into every key's CKA_ID, and keys are found by
   * label AND id: the kid index lives in a Secret a tenant can edit, so on a token several
   * policies share, an index naming another policy's kid must find nothing (KeyMissing) — never
   * unwrap with, rotate past, or destroy another policy's key.
   */
  private constructor(private readonly session: Pkcs11Session, index: KekIndex, private readonly owner?: string) {
    this.current = index;
  }

  /** A new KeyPolicy: its first KEK is generated in the token. */
  static async create(session: Pkcs11Session, now: Date, owner?: string): Promise<Pkcs11KekBackend> {
    const kid = newKid('kek', now);
    const backend = new Pkcs11KekBackend(session, newKekIndex(kid, now), owner);
    backend.generate(kid);
    return backend;
  }

  /** An existing KeyPolicy: every kid the index calls live must be in the token, as a KEK. */
  static async open(session: Pkcs11Session, index: KekIndex, owner?: string): Promise<Pkcs11KekBackend> {
    activeRecord(index);
    const backend = new Pkcs11KekBackend(session, index, owner);
    for (const kid of backend.liveKids()) backend.handle(kid);
    for (const { kid } of index.retired) if (backend.find(kid) !== undefined) backend.pending.add(kid);
    return backend;
  }

  /** Set on a fork: retired kids are only marked, and destroyed by destroyPending() once stored. */
  private deferDestruction = false;

  /**
   * The same keys and index, for a change the caller may fail to store: this one stays as stored,
   * and the fork destroys nothing until destroyPending() — called after its index is stored — so
   * a crash between the two leaves a retired key in the token (destroyed next time), never a
   * stored index naming a destroyed key.
   */
  fork(): Pkcs11KekBackend {
    const copy = new Pkcs11KekBackend(this.session, this.current, this.owner);
    copy.deferDestruction = true;
    for (const [kid, handle] of this.handles) copy.handles.set(kid, handle);
    for (const kid of this.pending) copy.pending.add(kid);
    return copy;
  }

  /**
   * A 256-bit secret for envelope-store tags (store-mac.ts) under `kid`, made in the token: AES-GCM
   * of 32 zero bytes under the non-extractable KEK with an IV fixed by the kid — a PRF output only
   * the token can compute. Wraps use random IVs, so this fixed IV never meets another plaintext
   * (a collision is a 2^-96 event). The secret is held in memory as data keys are.
   */
  macSecret(kid: string): Buffer {
    const iv = createHash('sha256').update(`lockstep.dev/store-mac/v1/${kid}`).digest().subarray(0, 12);
    const aad = Buffer.from('lockstep.dev/store-mac/v1', 'utf8');
    try {
      const sealed = this.withKey(kid, (p11, session, key) => {
        p11.C_EncryptInit(session, this.gcm(iv, aad), key);
        return Buffer.from(p11.C_Encrypt(session, Buffer.alloc(32), Buffer.alloc(48)));
      });
      return sealed.subarray(0, 32);
    } catch (error) {
      throw this.classify(error, kid, 'wrap');
    }
  }

  /** The lifecycle document to persist after rotate/retire. */
  get index(): KekIndex {
    return this.current;
  }

  activeKid(): string {
    return activeRecord(this.current).kid;
  }

  liveKids(): readonly string[] {
    return this.current.keys.map((key) => key.kid);
  }

  /** Kids retired in the index whose token object is still to be destroyed (retire() retries). */
  pendingDestruction(): readonly string[] {
    return [...this.pending];
  }

  /** KEK-labelled keys in the token this index does not know (e.g. a rotation whose index was
   *  never stored). Reported, never deleted: only a person can tell they are unused. */
  orphanKids(): readonly string[] {
    const known = new Set([...this.liveKids(), ...this.pending]);
    return this.tokenKids().filter((kid) => !known.has(kid));
  }

  async wrapDataKey(dataKey: DataKey, binding: ServiceBinding): Promise<string> {
    assertServiceBinding(binding);
    if (!DATA_KEY_ID.test(dataKey.id) || dataKey.key.type !== 'secret' || dataKey.key.symmetricKeySize !== 32) {
      throw new KeySetError('InvalidTransition', 'not a Lockstep data key (256-bit secret with a dek- id)');
    }
    const kid = this.activeKid();
    const aad = encodeHeader({ kid, dataKeyId: dataKey.id, binding: { ns: binding.namespace, name: binding.name } });
    const iv = randomBytes(12);
    const plaintext = dataKey.key.export();
    try {
      const sealed = this.withKey(kid, (p11, session, key) => {
        p11.C_EncryptInit(session, this.gcm(iv, aad), key);
        return Buffer.from(p11.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + 16)));
      });
      return formatWrapped(aad, iv, sealed);
    } catch (error) {
      throw this.classify(error, kid, 'wrap');
    } finally {
      plaintext.fill(0);
    }
  }

  async unwrapDataKey(wrapped: string, binding: ServiceBinding): Promise<DataKey> {
    assertServiceBinding(binding);
    const parsed = parseWrapped(wrapped);
    const { kid } = parsed;
    if (!this.current.keys.some((key) => key.kid === kid)) {
      const retired = this.current.retired.find((key) => key.kid === kid);
      if (retired !== undefined) throw new DecryptError('RetiredKey', `key ${kid} was retired at ${retired.retiredAt}; it is destroyed in the token`, kid);
      throw new DecryptError('UnknownKey', `made for key ${kid}, which this KeyPolicy's HSM key index does not have`, kid);
    }
    let payload: Buffer;
    try {
      payload = this.withKey(kid, (p11, session, key) => {
        p11.C_DecryptInit(session, this.gcm(parsed.iv, parsed.aad), key);
        return Buffer.from(p11.C_Decrypt(session, parsed.sealed, Buffer.alloc(parsed.sealed.length)));
      });
    } catch (error) {
      throw this.classify(error, kid, 'unwrap');
    }
    if (parsed.binding.ns !== binding.namespace || parsed.binding.name !== binding.name) {
      payload.fill(0);
      throw new DecryptError('WrongBinding', `data key under ${kid} belongs to another service, not ${formatServiceBinding(binding)}`, kid);
    }
    if (payload.length !== 32) {
      payload.fill(0);
      throw new DecryptError('Malformed', `wrapped data key under ${kid} is not 256 bits`, kid);
    }
    const key = createSecretKey(payload);
    payload.fill(0);
    return { id: parsed.dataKeyId, key };
  }

  async rotate(options: RetentionOptions): Promise<KekRotation> {
    const kid = newKid('kek', options.now);
    // Computed first so a refused transition (bad retention) makes no key in the token.
    const result = rotateIndex(this.current, kid, options);
    this.generate(kid);
    this.current = result.index;
    this.destroy(result.retired);
    return { activated: result.activated, deactivated: result.deactivated, retired: result.retired };
  }

  async retire(options: RetentionOptions): Promise<readonly string[]> {
    return this.retireNow(options);
  }

  /** retire(), for callers that decide synchronously (key-plan.ts); the token calls are synchronous. */
  retireNow(options: RetentionOptions): readonly string[] {
    const result = retireInIndex(this.current, options);
    this.current = result.index;
    this.destroy([...result.retired, ...this.pending]);
    return result.retired;
  }

  private gcm(iv: Buffer, aad: Buffer): Mechanism {
    const lib = this.session.lib;
    // The v2.40 CK_GCM_PARAMS layout (with ulIvBits), which current modules read.
    const parameter: GcmParams = { type: lib.CK_PARAMS_AES_GCM_v240, iv, ivBits: 96, aad, tagBits: 128 };
    return { mechanism: lib.CKM_AES_GCM, parameter };
  }

  private withKey<T>(kid: string, work: (p11: Pkcs11, session: Handle, key: Handle) => T): T {
    const key = this.handle(kid);
    try {
      return this.session.run((p11, session) => work(p11, session, key));
    } catch (error) {
      const code = ckrOf(error);
      if (code !== undefined && STALE_HANDLE.has(code)) {
        // Handles can change when the module restarts; look the key up again once.
        this.handles.delete(kid);
        const fresh = this.handle(kid);
        return this.session.run((p11, session) => work(p11, session, fresh));
      }
      throw error;
    }
  }

  private classify(error: unknown, kid: string, what: 'wrap' | 'unwrap'): Error {
    if (error instanceof KeyStoreError || error instanceof DecryptError) return error;
    const code = ckrOf(error);
    if (what === 'unwrap' && code !== undefined && BAD_CIPHERTEXT.has(code)) {
      if (this.session.healthy()) return new DecryptError('Tampered', `ciphertext under key ${kid} failed authentication in the token`, kid);
      return new KeyStoreError('Unavailable', `${this.session.describe()}: unwrap under ${kid} failed and the session no longer answers; will retry`, ckrName(code));
    }
    if (code === CKR.MECHANISM_INVALID || code === CKR.MECHANISM_PARAM_INVALID) {
      return new KeyStoreError('Misconfigured', `${this.session.describe()} does not offer AES-256-GCM as Lockstep uses it (${ckrName(code)})`, ckrName(code));
    }
    const name = code === undefined ? undefined : ckrName(code);
    return new KeyStoreError('Unavailable', `${this.session.describe()}: ${what} under ${kid} failed${name === undefined ? '' : ` (${name})`}`, name);
  }

  private generate(kid: string): void {
    const lib = this.session.lib;
    try {
      this.session.run((p11, session) =>
        p11.C_GenerateKey(session, { mechanism: lib.CKM_AES_KEY_GEN }, [
          { type: lib.CKA_CLASS, value: lib.CKO_SECRET_KEY },
          { type: lib.CKA_KEY_TYPE, value: lib.CKK_AES },
          { type: lib.CKA_VALUE_LEN, value: 32 },
          { type: lib.CKA_TOKEN, value: true },
          { type: lib.CKA_PRIVATE, value: true },
          { type: lib.CKA_SENSITIVE, value: true },
          { type: lib.CKA_EXTRACTABLE, value: false },
          { type: lib.CKA_MODIFIABLE, value: false },
          { type: lib.CKA_LABEL, value: kid },
          { type: lib.CKA_ID, value: this.objectId(kid) },
          { type: lib.CKA_ENCRYPT, value: true },
          { type: lib.CKA_DECRYPT, value: true },
          { type: lib.CKA_WRAP, value: false },
          { type: lib.CKA_UNWRAP, value: false },
          { type: lib.CKA_SIGN, value: false },
          { type: lib.CKA_VERIFY, value: false },
          { type: lib.CKA_DERIVE, value: false },
        ]),
      );
    } catch (error) {
      if (error instanceof KeyStoreError) throw error;
      const name = ckrOf(error) === undefined ? undefined : ckrName(ckrOf(error) as number);
      throw new KeyStoreError('Misconfigured', `${this.session.describe()}: cannot generate an AES-256 key${name === undefined ? '' : ` (${name})`}`, name);
    }
  }

  /** The token object of a live kid, checked to be a KEK Lockstep would have made. */
  private handle(kid: string): Handle {
    const cached = this.handles.get(kid);
    if (cached !== undefined) return cached;
    const found = this.find(kid);
    if (found === undefined) {
      this.session.assertLoggedIn();
      throw new KeyStoreError('KeyMissing', `${this.session.describe()} has no key labelled ${kid}${this.owner === undefined ? '' : ` for ${this.owner}`}; it is never regenerated — restore the token or re-wrap from a backup`);
    }
    this.check(kid, found);
    this.handles.set(kid, found);
    return found;
  }

  private find(kid: string): Handle | undefined {
    const lib = this.session.lib;
    const matches = this.session.run((p11, session) => {
      p11.C_FindObjectsInit(session, [
        { type: lib.CKA_CLASS, value: lib.CKO_SECRET_KEY },
        { type: lib.CKA_TOKEN, value: true },
        { type: lib.CKA_LABEL, value: kid },
        { type: lib.CKA_ID, value: this.objectId(kid) },
      ]);
      try {
        return p11.C_FindObjects(session, 2);
      } finally {
        p11.C_FindObjectsFinal(session);
      }
    });
    if (matches.length > 1) throw new KeyStoreError('Misconfigured', `${this.session.describe()} holds more than one key labelled ${kid}`);
    return matches[0];
  }

  // A key that someone imported under a kid's label (extractable, not AES-256) is refused rather
  // than used: the whole point of this backend is a key that cannot leave the token.
  private check(kid: string, key: Handle): void {
    const lib = this.session.lib;
    const attributes = this.session.run((p11, session) =>
      p11.C_GetAttributeValue(session, key, [
        { type: lib.CKA_KEY_TYPE },
        { type: lib.CKA_VALUE_LEN },
        { type: lib.CKA_SENSITIVE },
        { type: lib.CKA_EXTRACTABLE },
        { type: lib.CKA_NEVER_EXTRACTABLE },
        { type: lib.CKA_LOCAL },
        { type: lib.CKA_ENCRYPT },
        { type: lib.CKA_DECRYPT },
      ]),
    );
    const [keyType, length, sensitive, extractable, neverExtractable, local, encrypt, decrypt] = attributes.map((attribute) => attribute.value as Buffer);
    const ulong = (value: Buffer | undefined): bigint => (value === undefined || value.length === 0 ? -1n : value.length >= 8 ? value.readBigUInt64LE(0) : BigInt(value.readUInt32LE(0)));
    const flag = (value: Buffer | undefined): boolean => value !== undefined && value.length > 0 && value[0] !== 0;
    const good =
      ulong(keyType) === BigInt(lib.CKK_AES) && ulong(length) === 32n && flag(sensitive) && !flag(extractable) && flag(neverExtractable) && flag(local)
      && flag(encrypt) && flag(decrypt);
    if (!good) {
      throw new KeyStoreError('Misconfigured', `${this.session.describe()}: the key labelled ${kid} is not an AES-256 encrypt/decrypt key generated in the token and never extractable`);
    }
  }

  private objectId(kid: string): Buffer {
    return Buffer.from(this.owner === undefined ? kid : `${this.owner}|${kid}`, 'utf8');
  }

  private tokenKids(): string[] {
    const lib = this.session.lib;
    return this.session.run((p11, session) => {
      p11.C_FindObjectsInit(session, [
        { type: lib.CKA_CLASS, value: lib.CKO_SECRET_KEY },
        { type: lib.CKA_TOKEN, value: true },
      ]);
      let handles: Handle[];
      try {
        handles = p11.C_FindObjects(session, 10_000);
      } finally {
        p11.C_FindObjectsFinal(session);
      }
      // With an owner, only this policy's keys (CKA_ID); another policy's keys are not its orphans.
      return handles
        .map((handle) => p11.C_GetAttributeValue(session, handle, [{ type: lib.CKA_LABEL }, { type: lib.CKA_ID }]))
        .map(([label, id]) => ({ label: (label?.value as Buffer | undefined)?.toString('utf8') ?? '', id: id?.value as Buffer | undefined }))
        .filter(({ label, id }) => label.startsWith(KEK_LABEL_PREFIX) && (this.owner === undefined || (id !== undefined && id.equals(this.objectId(label)))))
        .map(({ label }) => label);
    });
  }

  /** Destroys retired kids still in the token; returns those destroyed now. */
  destroyPending(): readonly string[] {
    this.deferDestruction = false;
    const before = [...this.pending];
    this.destroy(before);
    return before.filter((kid) => !this.pending.has(kid));
  }

  private destroy(kids: readonly string[]): void {
    if (this.deferDestruction) {
      for (const kid of kids) {
        this.handles.delete(kid);
        this.pending.add(kid);
      }
      return;
    }
    for (const kid of new Set(kids)) {
      this.handles.delete(kid);
      try {
        const found = this.find(kid);
        if (found !== undefined) this.session.run((p11, session) => p11.C_DestroyObject(session, found));
        this.pending.delete(kid);
      } catch {
        // Retired in the index already; the token object goes on the next retire().
        this.pending.add(kid);
      }
    }
  }
}
