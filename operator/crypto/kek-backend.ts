import type { ServiceBinding } from './binding.js';
import type { DataKey } from './datakey.js';
import type { RetentionOptions } from './rotation.js';

// What a KeyPolicy's key-encryption key (KEK) does, wherever the key lives: wrap and unwrap a
// service's data key, make a new KEK and say which kid is active, retire old ones. The Secret-held
// JWKS is one implementation (secret-kek-backend.ts), a PKCS#11 token another
// (pkcs11-kek-backend.ts); a cloud KMS would be one more file behind the same five operations.

export type KekBackendKind = 'secret' | 'pkcs11';

export interface KekRotation {
  /** The kid new data keys are now wrapped under. */
  readonly activated: string;
  /** The previously active kid, now decrypt-only (unless retired in the same step). */
  readonly deactivated: string;
  /** Kids whose material was destroyed by this step. */
  readonly retired: readonly string[];
}

export interface KekBackend {
  readonly kind: KekBackendKind;
  /** The kid `wrapDataKey` uses now. */
  activeKid(): string;
  /** Every kid that can still unwrap: the active one first, then decrypt-only ones. */
  liveKids(): readonly string[];
  /** Wraps under the active KEK; the result opens only for the same service binding. */
  wrapDataKey(dataKey: DataKey, binding: ServiceBinding): Promise<string>;
  /** Throws DecryptError for bad, moved or unknown-key ciphertext. */
  unwrapDataKey(wrapped: string, binding: ServiceBinding): Promise<DataKey>;
  /** A new KEK becomes active, the previous one decrypt-only; then retention applies. */
  rotate(options: RetentionOptions): Promise<KekRotation>;
  /** Destroys the decrypt-only KEKs retention allows: the only way a KEK's material goes away. */
  retire(options: RetentionOptions): Promise<readonly string[]>;
}
