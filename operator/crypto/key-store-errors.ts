// Errors of a KEK held outside the operator (an HSM through PKCS#11; a cloud KMS later). They
// reach conditions, Events and logs, so messages carry identifiers only — token label, slot, kid,
// the PKCS#11 return value's name — never a PIN, key bytes or a library's own message.

export type KeyStoreFailureReason =
  /** The session, token or module went away (token removed, sessions closed, device error).
   *  Retry later: the keys are still there, and nothing is regenerated meanwhile. */
  | 'Unavailable'
  /** A kid the KeyPolicy relies on is not in the key store. Never "fixed" by making a new key:
   *  data keys wrapped under it would be lost. */
  | 'KeyMissing'
  /** The module does not load, the token is not found, the PIN is refused, or the key store
   *  lacks what Lockstep needs (AES-GCM). A person has to act. */
  | 'Misconfigured';

export class KeyStoreError extends Error {
  override readonly name = 'KeyStoreError';
  readonly reason: KeyStoreFailureReason;
  /** The PKCS#11 return value's name (CKR_...), when there was one. */
  readonly code: string | undefined;

  constructor(reason: KeyStoreFailureReason, message: string, code?: string) {
    super(message);
    this.reason = reason;
    this.code = code;
  }

  /** Whether the same call may succeed later without anyone changing anything. */
  get retryable(): boolean {
    return this.reason === 'Unavailable';
  }

  toJSON(): { name: string; reason: KeyStoreFailureReason; message: string; code?: string } {
    return { name: this.name, reason: this.reason, message: this.message, ...(this.code === undefined ? {} : { code: this.code }) };
  }
}

export function isKeyStoreError(value: unknown): value is KeyStoreError {
  return value instanceof KeyStoreError;
}
