// The KMS key backend over a key file (key-file.ts). The file is checked on every call (one
// stat) and read again when it changed, so `lockstep kms-plugin rotate` reaches a running plugin
// without a restart: its next Status reports the new key ID and the API server re-encrypts on
// write. A file that stops parsing keeps the last good keys in service and is reported through
// Status (the API server's healthz shows it), never by encrypting under a guessed key.
import { stat } from 'node:fs/promises';
import { activeKey } from '../crypto/keyset.js';
import { KmsError, type BackendStatus, type KmsKeyBackend } from './backend.js';
import { ciphertextKid, deriveCipherKey, open, seal } from './ciphertext.js';
import { readKeyFile } from './key-file.js';

interface Keyring {
  readonly activeKid: string;
  /** kid → AES-256-GCM key, for the active key and every decrypt-only one. */
  readonly keys: ReadonlyMap<string, Buffer>;
}

export interface KeyFileEvents {
  /** Keys (re)loaded: the active kid and how many keys can decrypt. Never key material. */
  loaded?(activeKid: string, keys: number): void;
  /** The file could not be read or parsed; `message` names the file and what is wrong. */
  failed?(message: string, servingPreviousKeys: boolean): void;
}

export class FileKeyBackend implements KmsKeyBackend {
  private keyring: Keyring | undefined;
  private signature = '';
  private problem: string | undefined;
  private refreshing: Promise<Keyring> | undefined;

  constructor(
    readonly path: string,
    private readonly events: KeyFileEvents = {},
  ) {}

  async status(): Promise<BackendStatus> {
    const keyring = await this.current();
    return this.problem === undefined ? { keyId: keyring.activeKid } : { keyId: keyring.activeKid, problem: this.problem };
  }

  async encrypt(plaintext: Buffer): Promise<{ keyId: string; ciphertext: Buffer }> {
    const { activeKid, keys } = await this.current();
    return { keyId: activeKid, ciphertext: seal(activeKid, keys.get(activeKid)!, plaintext) };
  }

  async decrypt(keyId: string, ciphertext: Buffer): Promise<Buffer> {
    const kid = ciphertextKid(ciphertext);
    if (keyId !== '' && keyId !== kid) {
      throw new KmsError('KeyIdMismatch', `key ID ${keyId} was sent with a ciphertext made under key ${kid}`);
    }
    const key = (await this.current()).keys.get(kid);
    if (!key) throw new KmsError('UnknownKey', `key ${kid} is not in the key file ${this.path} (retired, or made by another key file)`);
    return open(key, ciphertext);
  }

  /** Calls share one refresh, so a burst of requests after a rotation reads the file once. */
  private current(): Promise<Keyring> {
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async refresh(): Promise<Keyring> {
    try {
      const info = await stat(this.path);
      const signature = `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
      if (this.keyring && signature === this.signature) return this.keyring;
      const keySet = await readKeyFile(this.path);
      const keys = new Map<string, Buffer>();
      for (const key of keySet.keys) keys.set(key.kid, deriveCipherKey(Buffer.from(key['k'] ?? '', 'base64url')));
      const keyring = { activeKid: activeKey(keySet).kid, keys };
      this.keyring = keyring;
      this.signature = signature;
      this.problem = undefined;
      this.events.loaded?.(keyring.activeKid, keys.size);
      return keyring;
    } catch (err) {
      const message = `key file ${this.path}: ${(err as Error).message}`;
      if (message !== this.problem) this.events.failed?.(message, this.keyring !== undefined);
      this.problem = message;
      if (this.keyring) return this.keyring;
      throw new KmsError('NoKeys', message);
    }
  }
}
