import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { assertSecretBinding, formatSecretBinding, type SecretBinding } from './binding.js';
import { DATA_KEY_ID, type DataKey } from './datakey.js';
import { DecryptError } from './errors.js';

// Application secret values, encrypted with the service's data key. This is the hot path of a
// reconcile, so it is raw AES-256-GCM from node:crypto — no JWE, no key unwrap — in a compact
// string:   lsenc1.<dataKeyId>.<iv>.<ciphertext>.<tag>   (base64url parts)
// The AAD binds version, data key id, namespace, Secret name and data key: a value moved to another
// Secret or key, or presented with another data key, fails authentication. The binding is not
// repeated in clear, so a moved value reports Tampered (it cannot be told apart from an edit).

const PREFIX = 'lsenc1';
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** Kubernetes caps a Secret at 1 MiB; nothing larger can be a value of ours. */
const MAX_PLAINTEXT = 1024 * 1024;

function additionalData(dataKeyId: string, binding: SecretBinding): Buffer {
  // NUL cannot occur in any validated field, so the encoding is unambiguous.
  return Buffer.from([PREFIX, dataKeyId, binding.namespace, binding.name, binding.key].join('\0'), 'utf8');
}

export function encryptValue(dataKey: DataKey, plaintext: string | Uint8Array, binding: SecretBinding): string {
  assertSecretBinding(binding);
  const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
  if (data.length > MAX_PLAINTEXT) throw new RangeError('value is larger than a Secret can hold');
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', dataKey.key, iv);
  cipher.setAAD(additionalData(dataKey.id, binding));
  const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
  return [
    PREFIX,
    dataKey.id,
    iv.toString('base64url'),
    ciphertext.toString('base64url'),
    cipher.getAuthTag().toString('base64url'),
  ].join('.');
}

interface ParsedEnvelope {
  readonly dataKeyId: string;
  readonly iv: Buffer;
  readonly ciphertext: Buffer;
  readonly tag: Buffer;
}

function parseEnvelope(envelope: string): ParsedEnvelope {
  if (typeof envelope !== 'string' || envelope.length > 2 * MAX_PLAINTEXT) {
    throw new DecryptError('Malformed', 'not a Lockstep envelope');
  }
  const parts = envelope.split('.');
  const [prefix, dataKeyId, iv, ciphertext, tag] = parts;
  if (parts.length !== 5 || prefix !== PREFIX || dataKeyId === undefined || !DATA_KEY_ID.test(dataKeyId)) {
    throw new DecryptError('Malformed', 'not a Lockstep envelope (lsenc1.<dek>.<iv>.<ct>.<tag>)');
  }
  // The ciphertext part is not pattern-checked: this is the per-reconcile hot path, and a stray
  // character the decoder skips cannot produce bytes that authenticate unless they are the
  // original bytes.
  if (!BASE64URL.test(iv ?? '') || !BASE64URL.test(tag ?? '')) {
    throw new DecryptError('Malformed', 'envelope parts are not base64url');
  }
  const parsed = {
    dataKeyId,
    iv: Buffer.from(iv ?? '', 'base64url'),
    ciphertext: Buffer.from(ciphertext ?? '', 'base64url'),
    tag: Buffer.from(tag ?? '', 'base64url'),
  };
  if (parsed.iv.length !== 12 || parsed.tag.length !== 16) {
    throw new DecryptError('Malformed', 'envelope IV or tag has the wrong length');
  }
  return parsed;
}

/** The data key an envelope was made with, for routing and re-encryption accounting. */
export function envelopeDataKeyId(envelope: string): string {
  return parseEnvelope(envelope).dataKeyId;
}

export function decryptValue(dataKey: DataKey, envelope: string, binding: SecretBinding): Buffer {
  assertSecretBinding(binding);
  const parsed = parseEnvelope(envelope);
  if (parsed.dataKeyId !== dataKey.id) {
    throw new DecryptError(
      'UnknownKey',
      `value for ${formatSecretBinding(binding)} was encrypted with data key ${parsed.dataKeyId}, not ${dataKey.id}`,
    );
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey.key, parsed.iv, { authTagLength: 16 });
    decipher.setAAD(additionalData(parsed.dataKeyId, binding));
    decipher.setAuthTag(parsed.tag);
    return Buffer.concat([decipher.update(parsed.ciphertext), decipher.final()]);
  } catch {
    throw new DecryptError(
      'Tampered',
      `value for ${formatSecretBinding(binding)} failed authentication (edited, or copied from another Secret or key)`,
    );
  }
}
