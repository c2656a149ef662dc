// The KMS key backend over a PKCS#11 token (an HSM): the plugin's root keys are AES-256 keys
// generated inside the token, sensitive and never extractable (Pkcs11KekBackend, the same code a
// KeyPolicy with keyStore PKCS11 uses), and the API server's data key is wrapped and unwrapped by
// AES-256-GCM inside the token. What stays on the control-plane host is the key index (kids and
// dates, no key material: kek-index.ts) in the file the key file would be, and the token's
// configuration (module, token label, PIN) in a file readable only by the plugin's user.
//
// The ciphertext the API server stores is the wrapped data key in its compact form
// (pkcs11-wrapped.ts: the kid and a binding to this plugin in the GCM-authenticated header). The
// index file is read again when it changes, so `lockstep kms-plugin rotate --pkcs11` reaches a
// running plugin without a restart, as with the key file.
import { createSecretKey, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { ServiceBinding } from '../crypto/binding.js';
import { DecryptError } from '../crypto/errors.js';
import { activeRecord, parseKekIndex, type KekIndex } from '../crypto/kek-index.js';
import { KeyStoreError } from '../crypto/key-store-errors.js';
import { Pkcs11KekBackend } from '../crypto/pkcs11-kek-backend.js';
import type { Pkcs11Session } from '../crypto/pkcs11-session.js';
import { parseWrapped } from '../crypto/pkcs11-wrapped.js';
import { KmsError, type BackendStatus, type KmsKeyBackend } from './backend.js';
import type { KeyFileEvents } from './file-backend.js';

/** Who the token's keys belong to (CKA_ID): never a KeyPolicy's namespace/name. */
export const KMS_KEY_OWNER = 'kube-apiserver/kms-v2';
/** The binding in every wrapped data key's header: the API server's KMS v2 data keys. */
const BINDING: ServiceBinding = { namespace: 'kube-system', name: 'kms-v2' };
/** The API server's KMS v2 data keys (and KDF seeds) are 32 bytes. */
const DATA_KEY_BYTES = 32;

export class TokenKeyBackend implements KmsKeyBackend {
  private backend: Pkcs11KekBackend | undefined;
  private signature = '';
  private problem: string | undefined;
  private refreshing: Promise<Pkcs11KekBackend> | undefined;

  constructor(
    readonly indexPath: string,
    private readonly session: Pkcs11Session,
    private readonly events: KeyFileEvents = {},
  ) {}

  async status(): Promise<BackendStatus> {
    const backend = await this.current();
    const problem = this.problem ?? (this.session.healthy() ? undefined : `${this.session.describe()} does not answer`);
    return problem === undefined ? { keyId: backend.activeKid() } : { keyId: backend.activeKid(), problem };
  }

  async encrypt(plaintext: Buffer): Promise<{ keyId: string; ciphertext: Buffer }> {
    if (plaintext.length !== DATA_KEY_BYTES) throw new KmsError('Malformed', `the token wraps ${DATA_KEY_BYTES}-byte data keys; the API server sent ${plaintext.length} bytes`);
    const backend = await this.current();
    const dataKey = { id: `dek-${randomBytes(12).toString('hex')}`, key: createSecretKey(plaintext) };
    const wrapped = await backend.wrapDataKey(dataKey, BINDING).catch((err: unknown) => {
      throw this.failure(err);
    });
    return { keyId: backend.activeKid(), ciphertext: Buffer.from(wrapped, 'utf8') };
  }

  async decrypt(keyId: string, ciphertext: Buffer): Promise<Buffer> {
    let kid: string;
    try {
      kid = parseWrapped(ciphertext.toString('utf8')).kid;
    } catch {
      throw new KmsError('Malformed', 'the ciphertext is not a data key this plugin wrapped in a token');
    }
    if (keyId !== '' && keyId !== kid) throw new KmsError('KeyIdMismatch', `key ID ${keyId} was sent with a ciphertext made under key ${kid}`);
    const backend = await this.current();
    const dataKey = await backend.unwrapDataKey(ciphertext.toString('utf8'), BINDING).catch((err: unknown) => {
      throw this.failure(err);
    });
    return dataKey.key.export();
  }

  private failure(err: unknown): Error {
    if (err instanceof DecryptError) {
      if (err.reason === 'UnknownKey' || err.reason === 'RetiredKey') return new KmsError('UnknownKey', err.message);
      if (err.reason === 'Tampered' || err.reason === 'WrongBinding') return new KmsError('Tampered', err.message);
      return new KmsError('Malformed', err.message);
    }
    if (err instanceof KeyStoreError && err.reason === 'KeyMissing') return new KmsError('UnknownKey', err.message);
    // Unavailable / Misconfigured: the API server gets an error and retries; Status says why.
    return err instanceof Error ? err : new Error(String(err));
  }

  /** Calls share one refresh, so a burst of requests after a rotation reads the index once. */
  private current(): Promise<Pkcs11KekBackend> {
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async refresh(): Promise<Pkcs11KekBackend> {
    let signature: string;
    try {
      const s = await stat(this.indexPath);
      signature = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (err) {
      return this.keepOrFail(`key index ${this.indexPath} cannot be read: ${(err as Error).message}`);
    }
    if (this.backend && signature === this.signature) return this.backend;
    let index: KekIndex;
    try {
      index = parseKekIndex(await readFile(this.indexPath, 'utf8'));
      activeRecord(index);
    } catch (err) {
      return this.keepOrFail(`key index ${this.indexPath} is not valid: ${(err as Error).message}`);
    }
    // Every kid the index calls live must be in the token (else KeyMissing, and the last good
    // index stays in service): a key is never made here because one is missing.
    let opened: Pkcs11KekBackend;
    try {
      opened = await Pkcs11KekBackend.open(this.session, index, KMS_KEY_OWNER);
    } catch (err) {
      return this.keepOrFail(`key index ${this.indexPath}: ${(err as Error).message}`);
    }
    this.backend = opened;
    this.signature = signature;
    this.problem = undefined;
    this.events.loaded?.(opened.activeKid(), opened.liveKids().length);
    return opened;
  }

  private keepOrFail(message: string): Pkcs11KekBackend {
    this.problem = message;
    this.events.failed?.(message, this.backend !== undefined);
    if (this.backend) return this.backend;
    throw new KmsError('NoKeys', message);
  }
}
