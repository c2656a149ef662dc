// What the KMS v2 plugin needs from wherever its root keys live: encrypt under the current key,
// decrypt under any key still held, and say which key is current. Operations, not key bytes, so
// a backend whose keys never leave their device (a PKCS#11 token, a cloud KMS) fits the same
// shape as the key file (file-backend.ts): it would run AES-GCM inside the token and report the
// token's key label as the key ID.

/** A failure the plugin reports to the API server: a reason, and a message with no secret in it. */
export type KmsFailureReason =
  /** The ciphertext is not one this plugin made (wrong format, truncated). */
  | 'Malformed'
  /** The key ID names no key the backend still holds (retired, or another key file's). */
  | 'UnknownKey'
  /** The ciphertext does not authenticate under its key: altered, or swapped between keys. */
  | 'Tampered'
  /** The key ID the API server sent is not the one inside the ciphertext. */
  | 'KeyIdMismatch'
  /** The backend has no usable keys (the key file is missing or invalid). */
  | 'NoKeys';

export class KmsError extends Error {
  override readonly name = 'KmsError';
  constructor(
    readonly reason: KmsFailureReason,
    message: string,
  ) {
    super(message);
  }
}

export interface BackendStatus {
  /** The key new data is encrypted under; the API server re-encrypts on write when it changes. */
  readonly keyId: string;
  /** Set when the backend serves but something needs attention (e.g. a key file that no longer parses). */
  readonly problem?: string;
}

export interface KmsKeyBackend {
  /** What Status reports. Throws KmsError('NoKeys') when nothing can be encrypted. */
  status(): Promise<BackendStatus>;
  encrypt(plaintext: Buffer): Promise<{ keyId: string; ciphertext: Buffer }>;
  /** `keyId` is what the API server stored beside the ciphertext ('' when it sent none). */
  decrypt(keyId: string, ciphertext: Buffer): Promise<Buffer>;
}
