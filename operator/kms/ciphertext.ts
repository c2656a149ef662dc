// The plugin's ciphertext: AES-256-GCM under a key derived from one root key of the key file,
// self-describing so that a stored value names its key without trusting anything beside it.
//
//   [0x01 format][kid length][kid (ASCII)][12-byte nonce][ciphertext][16-byte tag]
//
// The header (format, kid) is the GCM additional data: a ciphertext relabelled with another kid
// fails to authenticate. The GCM key is HKDF-SHA256 of the root key with a purpose label, so a
// root key is never used directly by two algorithms (the key file's keys are A256KW-typed JWKs,
// made by operator/crypto/keyset.ts).
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { KmsError } from './backend.js';

const FORMAT = 0x01;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const MAX_KID = 128;
const HKDF_INFO = 'lockstep kms-v2 aes-256-gcm';

/** The AES-256-GCM key for a 32-byte root key. */
export function deriveCipherKey(rootKey: Buffer): Buffer {
  if (rootKey.length !== 32) throw new KmsError('NoKeys', 'a root key must be 256 bits');
  return Buffer.from(hkdfSync('sha256', rootKey, Buffer.alloc(0), HKDF_INFO, 32));
}

function header(kid: string): Buffer {
  const id = Buffer.from(kid, 'ascii');
  if (id.length === 0 || id.length > MAX_KID) throw new KmsError('NoKeys', 'key ID must be 1 to 128 characters');
  return Buffer.concat([Buffer.from([FORMAT, id.length]), id]);
}

export function seal(kid: string, cipherKey: Buffer, plaintext: Buffer): Buffer {
  const head = header(kid);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', cipherKey, nonce);
  cipher.setAAD(head);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([head, nonce, body, cipher.getAuthTag()]);
}

/** The kid a ciphertext names, read without any key (for choosing the key, and for counting). */
export function ciphertextKid(ciphertext: Buffer): string {
  if (ciphertext.length < 2 || ciphertext[0] !== FORMAT) throw new KmsError('Malformed', 'not a Lockstep KMS ciphertext (unknown format)');
  const length = ciphertext[1] ?? 0;
  if (length === 0 || ciphertext.length < 2 + length + NONCE_BYTES + TAG_BYTES) {
    throw new KmsError('Malformed', 'Lockstep KMS ciphertext is truncated');
  }
  return ciphertext.subarray(2, 2 + length).toString('ascii');
}

export function open(cipherKey: Buffer, ciphertext: Buffer): Buffer {
  const kid = ciphertextKid(ciphertext);
  const headLength = 2 + (ciphertext[1] ?? 0);
  const nonce = ciphertext.subarray(headLength, headLength + NONCE_BYTES);
  const tag = ciphertext.subarray(ciphertext.length - TAG_BYTES);
  const body = ciphertext.subarray(headLength + NONCE_BYTES, ciphertext.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', cipherKey, nonce);
  decipher.setAAD(ciphertext.subarray(0, headLength));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw new KmsError('Tampered', `ciphertext does not authenticate under key ${kid}`);
  }
}
