import { BINDING_HEADER, DATA_KEY_ID_HEADER, splitCompact } from './compact-jwe.js';
import { DATA_KEY_ID } from './datakey.js';
import { DecryptError } from './errors.js';

// The form of a data key wrapped by a KEK in a PKCS#11 token: a JWE compact serialization with
// `alg: dir`, `enc: A256GCM` (RFC 7516/7518) — the KEK is the content-encryption key, and the
// AES-GCM runs inside the token. The protected header carries what the Secret backend's headers
// carry (typ, kid, binding, data key id) and, as JWE prescribes, its base64url text is the GCM
// additional data: the token authenticates the binding, so a wrapped key copied to another
// service, or edited, fails in the token. The parts are the same five as every Lockstep JWE.

export const HSM_KEY_MANAGEMENT = 'dir';
const ENC = 'A256GCM';
const DATA_KEY_TYPE = 'lockstep.dek.v1';
const MAX_LENGTH = 4096;

export interface HsmWrappedHeader {
  readonly kid: string;
  readonly dataKeyId: string;
  readonly binding: { readonly ns: string; readonly name: string };
}

export interface HsmWrapped extends HsmWrappedHeader {
  /** The protected header as sent: the GCM additional data. */
  readonly aad: Buffer;
  readonly iv: Buffer;
  /** Ciphertext followed by the 128-bit tag, the layout C_Encrypt/C_Decrypt use for GCM. */
  readonly sealed: Buffer;
}

export function encodeHeader(header: HsmWrappedHeader): Buffer {
  const json = JSON.stringify({
    alg: HSM_KEY_MANAGEMENT,
    enc: ENC,
    typ: DATA_KEY_TYPE,
    kid: header.kid,
    [BINDING_HEADER]: header.binding,
    crit: [BINDING_HEADER],
    [DATA_KEY_ID_HEADER]: header.dataKeyId,
  });
  return Buffer.from(Buffer.from(json, 'utf8').toString('base64url'), 'ascii');
}

export function formatWrapped(aad: Buffer, iv: Buffer, sealed: Buffer): string {
  const tag = sealed.subarray(sealed.length - 16);
  const ciphertext = sealed.subarray(0, sealed.length - 16);
  return [aad.toString('ascii'), '', iv.toString('base64url'), ciphertext.toString('base64url'), tag.toString('base64url')].join('.');
}

function malformed(message: string, kid?: string): DecryptError {
  return new DecryptError('Malformed', message, kid);
}

/** Reads a wrapped key without decrypting; the header is authentic only after the token opens it. */
export function parseWrapped(compact: string): HsmWrapped {
  if (typeof compact !== 'string' || compact.length > MAX_LENGTH) throw malformed('not a wrapped data key');
  const { protectedPart, encryptedKey, iv, ciphertext, tag, header: fields, kid } = splitCompact(compact);
  if (fields['alg'] !== HSM_KEY_MANAGEMENT || encryptedKey !== '') {
    throw new DecryptError('WrongAlgorithm', `not wrapped by a key in an HSM (alg must be ${HSM_KEY_MANAGEMENT})`, kid);
  }
  if (fields['enc'] !== ENC) throw new DecryptError('WrongAlgorithm', `content encryption must be ${ENC}`, kid);
  if (fields['zip'] !== undefined) throw new DecryptError('WrongAlgorithm', 'compressed JWE is not accepted', kid);
  if (fields['typ'] !== DATA_KEY_TYPE) throw new DecryptError('WrongBinding', `not a ${DATA_KEY_TYPE}`, kid);
  const crit = fields['crit'];
  if (!Array.isArray(crit) || crit.length !== 1 || crit[0] !== BINDING_HEADER) throw malformed(`protected header must mark only ${BINDING_HEADER} as critical`, kid);
  const binding = fields[BINDING_HEADER] as Record<string, unknown> | undefined;
  if (typeof binding !== 'object' || binding === null || typeof binding['ns'] !== 'string' || typeof binding['name'] !== 'string') {
    throw malformed('protected header has no binding', kid);
  }
  const dataKeyId = fields[DATA_KEY_ID_HEADER];
  if (typeof dataKeyId !== 'string' || !DATA_KEY_ID.test(dataKeyId)) throw malformed('protected header has no valid data key id', kid);
  const ivBytes = Buffer.from(iv, 'base64url');
  const tagBytes = Buffer.from(tag, 'base64url');
  const ciphertextBytes = Buffer.from(ciphertext, 'base64url');
  if (ivBytes.length !== 12) throw malformed('IV is not 96 bits', kid);
  if (tagBytes.length !== 16) throw malformed('authentication tag is not 128 bits', kid);
  if (ciphertextBytes.length !== 32) throw malformed('wrapped data key is not 256 bits', kid);
  return {
    kid,
    dataKeyId,
    binding: { ns: binding['ns'], name: binding['name'] },
    aad: Buffer.from(protectedPart, 'ascii'),
    iv: ivBytes,
    sealed: Buffer.concat([ciphertextBytes, tagBytes]),
  };
}
