// Errors raised by the crypto core. They end up in conditions, Events and logs, so every message
// is built from identifiers only (kid, namespace/name, algorithm names) — never from key
// material, plaintext or ciphertext bytes — and no underlying library error is attached as
// `cause`, because those messages are outside our control.

/** Why a wrapped data key, sealed value or envelope could not be opened. */
export type DecryptFailureReason =
  /** Not a Lockstep ciphertext: wrong shape, bad encoding, missing header fields, too large. */
  | 'Malformed'
  /** Authentication failed: header, key, IV, ciphertext or tag changed, or the wrong key. */
  | 'Tampered'
  /** Authentic, but made for another namespace/name/key or for another purpose. */
  | 'WrongBinding'
  /** The `kid` is not in the key set (never was, or its retired record was pruned). */
  | 'UnknownKey'
  /** The `kid` was retired: its key material is gone. */
  | 'RetiredKey'
  /** The header names an algorithm that is not allowed or not the one of the key. */
  | 'WrongAlgorithm';

export const DECRYPT_FAILURE_REASONS: readonly DecryptFailureReason[] = [
  'Malformed',
  'Tampered',
  'WrongBinding',
  'UnknownKey',
  'RetiredKey',
  'WrongAlgorithm',
];

export class DecryptError extends Error {
  override readonly name = 'DecryptError';
  readonly reason: DecryptFailureReason;
  /** The key id the ciphertext names, when it could be read and looks like a kid. */
  readonly kid: string | undefined;

  constructor(reason: DecryptFailureReason, message: string, kid?: string) {
    super(message);
    this.reason = reason;
    this.kid = kid;
  }

  toJSON(): { name: string; reason: DecryptFailureReason; message: string; kid?: string } {
    return {
      name: this.name,
      reason: this.reason,
      message: this.message,
      ...(this.kid === undefined ? {} : { kid: this.kid }),
    };
  }
}

export type KeySetFailureReason =
  /** The stored key set does not have the expected structure or holds unusable keys. */
  | 'InvalidKeySet'
  /** No (or more than one) active key: nothing can be wrapped or sealed. */
  | 'NoActiveKey'
  /** A KEK set was given where a sealing set was expected, or the reverse. */
  | 'WrongPurpose'
  /** The algorithm is not one Lockstep supports for this purpose. */
  | 'UnsupportedAlgorithm'
  /** A set that is supposed to be public carries private or symmetric key material. */
  | 'NotPublic'
  /** A requested transition is not possible (unknown kid, duplicate kid, bad retention). */
  | 'InvalidTransition';

export class KeySetError extends Error {
  override readonly name = 'KeySetError';
  readonly reason: KeySetFailureReason;

  constructor(reason: KeySetFailureReason, message: string) {
    super(message);
    this.reason = reason;
  }

  toJSON(): { name: string; reason: KeySetFailureReason; message: string } {
    return { name: this.name, reason: this.reason, message: this.message };
  }
}

/** A namespace, name or data key that Kubernetes would not accept, so it cannot be bound to. */
export class BindingError extends Error {
  override readonly name = 'BindingError';
  readonly reason = 'InvalidBinding' as const;

  toJSON(): { name: string; reason: 'InvalidBinding'; message: string } {
    return { name: this.name, reason: this.reason, message: this.message };
  }
}

export function isDecryptError(value: unknown): value is DecryptError {
  return value instanceof DecryptError;
}

export function isKeySetError(value: unknown): value is KeySetError {
  return value instanceof KeySetError;
}

const KID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * A kid read from an unauthenticated header, or undefined when it does not look like one —
 * keeps attacker-chosen text (or a pasted key) out of error messages.
 */
export function displayableKid(value: unknown): string | undefined {
  return typeof value === 'string' && KID_PATTERN.test(value) ? value : undefined;
}
