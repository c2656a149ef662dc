import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import jose from 'node-jose';
import { DecryptError, KeySetError, displayableKid } from './errors.js';
import {
  CONTENT_ENCRYPTION,
  findKey,
  isKeyWrapAlgorithm,
  keyMaterial,
  NODE_CURVES,
  type KeySet,
  type KeyWrapAlgorithm,
  type ManagedKey,
  type PublicJwk,
} from './keyset.js';

// The JWE compact form shared by wrapped data keys and sealed values. Everything Lockstep
// decides on — purpose (`typ`), binding, data key id, kid — sits in the protected header, which
// is the AES-GCM additional data: changing any of it breaks the tag. The binding member is also
// listed in `crit`, so a JOSE library that does not know it refuses the JWE instead of
// decrypting it while ignoring where it belongs.

export const BINDING_HEADER = 'lockstep.dev/bind';
export const DATA_KEY_ID_HEADER = 'lockstep.dev/dek';

export type LockstepJweType = 'lockstep.dek.v1' | 'lockstep.sealed.v1';

export interface LockstepHeader {
  readonly alg: KeyWrapAlgorithm;
  readonly enc: typeof CONTENT_ENCRYPTION;
  readonly kid: string;
  readonly typ: string;
  readonly binding: Readonly<Record<string, string>>;
  readonly dataKeyId: string | undefined;
}

// Sealed values are capped at the size of a Secret; the compact form is base64url of that plus
// headers. Anything larger is not ours and is refused before any work.
const MAX_COMPACT_LENGTH = 2 * 1024 * 1024;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

function malformed(message: string, kid?: string): DecryptError {
  return new DecryptError('Malformed', message, kid);
}

function unknownKey(keySet: KeySet, kid: string): DecryptError {
  return new DecryptError('UnknownKey', `made for key ${kid}, which this KeyPolicy's ${keySet.purpose} key set does not have (never had, or pruned): encrypt it again for this policy (sealed values: kubectl lockstep seal)`, kid);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The five parts of a JWE compact serialization, its protected header parsed, and its kid. */
export interface CompactParts {
  readonly protectedPart: string;
  readonly encryptedKey: string;
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
  readonly header: Record<string, unknown>;
  readonly kid: string;
}

/**
 * Splits a JWE compact serialization into its parts and parses the protected header, which must
 * name a usable kid; every other check is the caller's (which algorithms, which sizes).
 */
export function splitCompact(compact: string): CompactParts {
  const parts = compact.trim().split('.');
  if (parts.length !== 5 || !parts.every((part) => BASE64URL.test(part))) {
    throw malformed('not a JWE compact serialization (five base64url parts)');
  }
  const [protectedPart, encryptedKey, iv, ciphertext, tag] = parts as [string, string, string, string, string];
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(protectedPart, 'base64url').toString('utf8'));
  } catch {
    throw malformed('protected header is not JSON');
  }
  if (!isRecord(header)) throw malformed('protected header is not a JSON object');
  const kid = displayableKid(header['kid']);
  if (kid === undefined) throw malformed('protected header has no usable kid');
  return { protectedPart, encryptedKey, iv, ciphertext, tag, header, kid };
}

/**
 * Reads and checks the protected header without decrypting. Authentic only after a successful
 * decrypt; before that it is good for routing (which key) and counting (which kid).
 */
export function readLockstepHeader(compact: string): LockstepHeader & { readonly raw: Record<string, unknown> } {
  if (typeof compact !== 'string') throw malformed('ciphertext is not a string');
  if (compact.length > MAX_COMPACT_LENGTH) throw malformed('ciphertext is larger than any Lockstep ciphertext');
  const { encryptedKey, iv, ciphertext, tag, header, kid } = splitCompact(compact);
  if (encryptedKey.length === 0) throw malformed('encrypted key is empty', kid);
  if (Buffer.from(iv, 'base64url').length !== 12) throw malformed('IV is not 96 bits', kid);
  if (Buffer.from(tag, 'base64url').length !== 16) throw malformed('authentication tag is not 128 bits', kid);
  if (ciphertext.length === 0) throw malformed('ciphertext is empty', kid);
  const { alg, enc, typ, crit, zip } = header;
  if (!isKeyWrapAlgorithm(alg)) {
    throw new DecryptError('WrongAlgorithm', 'key-management algorithm is not one Lockstep allows', kid);
  }
  if (enc !== CONTENT_ENCRYPTION) {
    throw new DecryptError('WrongAlgorithm', `content encryption must be ${CONTENT_ENCRYPTION}`, kid);
  }
  // Compression before encryption leaks plaintext length patterns and invites decompression
  // bombs; Lockstep never compresses.
  if (zip !== undefined) throw new DecryptError('WrongAlgorithm', 'compressed JWE is not accepted', kid);
  if (typeof typ !== 'string') throw malformed('protected header has no typ', kid);
  if (!Array.isArray(crit) || crit.length !== 1 || crit[0] !== BINDING_HEADER) {
    throw malformed(`protected header must mark only ${BINDING_HEADER} as critical`, kid);
  }
  const binding = header[BINDING_HEADER];
  if (!isRecord(binding) || !Object.values(binding).every((value) => typeof value === 'string')) {
    throw malformed('protected header has no binding', kid);
  }
  const dataKeyId = header[DATA_KEY_ID_HEADER];
  if (dataKeyId !== undefined && typeof dataKeyId !== 'string') throw malformed('data key id is not a string', kid);
  return {
    alg,
    enc,
    kid,
    typ,
    binding: binding as Record<string, string>,
    dataKeyId,
    raw: header,
  };
}

// node-jose makes ECDH-ES ephemeral keys in pure JavaScript (~20 ms each on this class of
// machine, which dominates a re-wrap pass); OpenSSL makes them in microseconds. node-jose takes a
// caller-supplied ephemeral key per recipient and still puts only its public half in the header.
function ephemeralKey(crv: string | undefined): JsonWebKey {
  const curve = NODE_CURVES[crv ?? ''];
  if (curve === undefined) throw new KeySetError('UnsupportedAlgorithm', 'unsupported curve for ECDH-ES');
  return generateKeyPairSync('ec', { namedCurve: curve }).privateKey.export({ format: 'jwk' });
}

export interface EncryptCompactInput {
  readonly typ: LockstepJweType;
  readonly binding: Readonly<Record<string, string>>;
  readonly dataKeyId?: string;
  readonly payload: Buffer;
}

/** Encrypts to one key (private ManagedKey or published PublicJwk); returns the compact JWE. */
export async function encryptCompact(key: ManagedKey | PublicJwk, input: EncryptCompactInput): Promise<string> {
  const jwk = 'state' in key ? keyMaterial(key as ManagedKey) : { ...key };
  const joseKey = await jose.JWK.asKey(jwk, 'json');
  const fields: Record<string, unknown> = {
    typ: input.typ,
    kid: key.kid,
    alg: key.alg,
    [BINDING_HEADER]: input.binding,
    crit: [BINDING_HEADER],
  };
  if (input.dataKeyId !== undefined) fields[DATA_KEY_ID_HEADER] = input.dataKeyId;
  const recipient = key.kty === 'EC' ? { key: joseKey, epk: ephemeralKey(key.crv) } : joseKey;
  return jose.JWE.createEncrypt(
    { format: 'compact', contentAlg: CONTENT_ENCRYPTION, fields },
    recipient as unknown as jose.JWK.Key,
  )
    .update(input.payload)
    .final();
}

export interface OpenedCompact {
  readonly header: LockstepHeader;
  readonly payload: Buffer;
}

/**
 * Selects the key by kid, checks the algorithms, decrypts (which authenticates the header), then
 * checks the purpose. Binding comparison is left to the caller, which knows the expected shape.
 */
export async function decryptCompact(keySet: KeySet, compact: string, typ: LockstepJweType): Promise<OpenedCompact> {
  let header: ReturnType<typeof readLockstepHeader>;
  try {
    header = readLockstepHeader(compact);
  } catch (err) {
    // A value made for a key this set never had (sealed on another cluster, or by another tool) is
    // reported as that, whatever else its header lacks: it is what the user has to fix.
    if (err instanceof DecryptError && err.kid !== undefined && findKey(keySet, err.kid) === undefined) throw unknownKey(keySet, err.kid);
    throw err;
  }
  const { kid } = header;
  const key = findKey(keySet, kid);
  if (key === undefined) throw unknownKey(keySet, kid);
  if (key.state === 'retired') {
    throw new DecryptError('RetiredKey', `key ${kid} was retired at ${key.retiredAt}; its material is destroyed`, kid);
  }
  if (key.alg !== header.alg) {
    throw new DecryptError('WrongAlgorithm', `key ${kid} is ${key.alg}, ciphertext says ${header.alg}`, kid);
  }
  if (key.kty === 'EC') {
    const epk = header.raw['epk'];
    if (!isRecord(epk) || epk['kty'] !== 'EC' || epk['crv'] !== key['crv'] || typeof epk['x'] !== 'string' || typeof epk['y'] !== 'string') {
      throw malformed('ephemeral public key missing or not on the key\'s curve', kid);
    }
  }
  let payload: Buffer;
  try {
    const joseKey = await jose.JWK.asKey(keyMaterial(key), 'json');
    const result = await jose.JWE.createDecrypt(joseKey, {
      algorithms: [key.alg, CONTENT_ENCRYPTION],
      handlers: { [BINDING_HEADER]: true },
    }).decrypt(compact.trim());
    payload = result.payload;
  } catch {
    throw new DecryptError('Tampered', `ciphertext under key ${kid} failed authentication`, kid);
  }
  if (header.typ !== typ) {
    // Anyone holding a public sealing key can write any typ, so it is named only when it is ours.
    const actual = header.typ === 'lockstep.dek.v1' || header.typ === 'lockstep.sealed.v1' ? header.typ : 'foreign typ';
    throw new DecryptError('WrongBinding', `ciphertext is a ${actual}, expected a ${typ}`, kid);
  }
  return { header, payload };
}
