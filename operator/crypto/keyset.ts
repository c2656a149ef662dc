import { createECDH, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import jose from 'node-jose';
import { KeySetError } from './errors.js';
import { isViewKey } from './kek-view.js';

// A key set is the JSON document the operator keeps in a Secret it owns. It is a valid JWK Set
// (RFC 7517 §5: unknown members are ignored by other tools), so `keys` holds ordinary JWKs with
// two extra members each — `state` and `createdAt` — and retired keys move to `retired`, where
// only their metadata survives: retiring a key destroys its material, which is the point.
//
// Two purposes are kept apart on purpose:
// - `kek`: key-encryption keys that wrap the per-service data keys. Never published.
// - `seal`: an asymmetric pair per KeyPolicy whose public half is published so users can seal
//   values offline. It is never used to wrap data keys: encryption to a public key proves
//   nothing about the sender, so if the KEK's public half were published anyone could mint a
//   "wrapped data key" the operator would accept. A separate sealing key also has its own
//   retention: sealed ciphertexts live in Git where the operator cannot re-wrap them.

export const KEY_WRAP_ALGORITHMS = ['A256KW', 'RSA-OAEP-256', 'ECDH-ES+A256KW'] as const;
export type KeyWrapAlgorithm = (typeof KEY_WRAP_ALGORITHMS)[number];
export type SealingAlgorithm = Exclude<KeyWrapAlgorithm, 'A256KW'>;
export const CONTENT_ENCRYPTION = 'A256GCM';

export type KeyPurpose = 'kek' | 'seal';
export type KeyState = 'active' | 'decrypt-only' | 'retired';
export type RsaBits = 2048 | 3072 | 4096;
export type EcCurve = 'P-256' | 'P-384' | 'P-521';

/** A usable key: a private JWK plus Lockstep's lifecycle members. */
export interface ManagedKey {
  readonly kty: 'oct' | 'RSA' | 'EC';
  readonly kid: string;
  readonly use: 'enc';
  readonly alg: KeyWrapAlgorithm;
  readonly state: 'active' | 'decrypt-only';
  /** RFC 3339 time the key was generated. */
  readonly createdAt: string;
  /** RFC 3339 time the key last became active (the rotation period is measured from it). */
  readonly activatedAt: string;
  /** RFC 3339 time the key stopped being the active one. */
  readonly deactivatedAt?: string;
  /** Key material members of RFC 7518 §6 (k | n,e,d,p,q,dp,dq,qi | crv,x,y,d). */
  readonly [member: string]: string | undefined;
}

/** What remains of a key after retirement: enough to name it, nothing to use it. */
export interface RetiredKey {
  readonly kid: string;
  readonly alg: KeyWrapAlgorithm;
  readonly state: 'retired';
  readonly createdAt: string;
  readonly retiredAt: string;
}

export interface KeySet {
  readonly purpose: KeyPurpose;
  /** Exactly one `active` key, first; then `decrypt-only` keys, most recently deactivated first. */
  readonly keys: readonly ManagedKey[];
  /** Most recently retired first; bounded (see rotation). */
  readonly retired: readonly RetiredKey[];
}

/** A public sealing key as published in the ConfigMap. */
export interface PublicJwk {
  readonly kty: 'RSA' | 'EC';
  readonly kid: string;
  readonly use: 'enc';
  readonly alg: SealingAlgorithm;
  readonly n?: string;
  readonly e?: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
}

export interface PublicJwks {
  readonly keys: readonly PublicJwk[];
}

export interface GenerateKeyOptions {
  readonly now: Date;
  /** RSA modulus size for RSA-OAEP-256 (default 3072). */
  readonly rsaBits?: RsaBits;
  /** Curve for ECDH-ES+A256KW (default P-256). */
  readonly curve?: EcCurve;
}

const MATERIAL_MEMBERS: Record<ManagedKey['kty'], readonly string[]> = {
  oct: ['k'],
  RSA: ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'],
  EC: ['crv', 'x', 'y', 'd'],
};
const PUBLIC_MEMBERS: Record<PublicJwk['kty'], readonly string[]> = {
  RSA: ['n', 'e'],
  EC: ['crv', 'x', 'y'],
};
const PRIVATE_MEMBERS = ['k', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'oth'];
const KTY_FOR_ALG: Record<KeyWrapAlgorithm, ManagedKey['kty']> = {
  A256KW: 'oct',
  'RSA-OAEP-256': 'RSA',
  'ECDH-ES+A256KW': 'EC',
};
const CURVES: readonly string[] = ['P-256', 'P-384', 'P-521'];
/** JOSE curve names to OpenSSL's. */
export const NODE_CURVES: Readonly<Record<string, string>> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' };
const KID_SHAPE = /^[A-Za-z0-9._:-]{1,128}$/;

export function isKeyWrapAlgorithm(value: unknown): value is KeyWrapAlgorithm {
  return typeof value === 'string' && (KEY_WRAP_ALGORITHMS as readonly string[]).includes(value);
}

/**
 * The sealing algorithm for a KeyPolicy: its own algorithm when that is asymmetric; for an
 * A256KW policy (no public half exists) ECDH-ES+A256KW, whose keys are small and whose unseal
 * is cheap for the operator.
 */
export function sealingAlgorithmFor(keyWrap: KeyWrapAlgorithm): SealingAlgorithm {
  return keyWrap === 'A256KW' ? 'ECDH-ES+A256KW' : keyWrap;
}

export function newKid(purpose: KeyPurpose, now: Date): string {
  // Time first so kids sort and read chronologically in status and audit; random suffix so two
  // keys made in the same second (tests, emergency rotations) never collide.
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/[-:]/g, '')
    .toLowerCase();
  return `${purpose}-${stamp}-${randomBytes(4).toString('hex')}`;
}

/** Generates a fresh `active` key. Randomness makes this the one impure step of rotation. */
export async function generateKey(
  purpose: KeyPurpose,
  alg: KeyWrapAlgorithm,
  options: GenerateKeyOptions,
): Promise<ManagedKey> {
  if (!isKeyWrapAlgorithm(alg)) {
    throw new KeySetError('UnsupportedAlgorithm', 'unsupported key-wrap algorithm');
  }
  if (purpose === 'seal' && alg === 'A256KW') {
    throw new KeySetError(
      'UnsupportedAlgorithm',
      'A256KW is symmetric and cannot be a sealing key; use sealingAlgorithmFor()',
    );
  }
  const kid = newKid(purpose, options.now);
  const kty = KTY_FOR_ALG[alg];
  const size = kty === 'oct' ? 256 : kty === 'RSA' ? (options.rsaBits ?? 3072) : (options.curve ?? 'P-256');
  const generated = await jose.JWK.createKeyStore().generate(kty, size, { kid, alg, use: 'enc' });
  const jwk = generated.toJSON(true) as Record<string, string>;
  const material: Record<string, string> = {};
  for (const member of MATERIAL_MEMBERS[kty]) {
    const value = jwk[member];
    if (typeof value !== 'string') {
      throw new KeySetError('InvalidKeySet', `generated ${alg} key lacks a required member`);
    }
    material[member] = value;
  }
  return {
    ...material,
    kty,
    kid,
    use: 'enc',
    alg,
    state: 'active',
    createdAt: options.now.toISOString(),
    activatedAt: options.now.toISOString(),
  };
}

export async function createKeySet(
  purpose: KeyPurpose,
  alg: KeyWrapAlgorithm,
  options: GenerateKeyOptions,
): Promise<KeySet> {
  return { purpose, keys: [await generateKey(purpose, alg, options)], retired: [] };
}

export function activeKey(keySet: KeySet): ManagedKey {
  const active = keySet.keys.filter((key) => key.state === 'active');
  if (active.length !== 1 || active[0] === undefined) {
    throw new KeySetError('NoActiveKey', `key set has ${active.length} active keys, expected 1`);
  }
  return active[0];
}

export function findKey(keySet: KeySet, kid: string): ManagedKey | RetiredKey | undefined {
  return keySet.keys.find((key) => key.kid === kid) ?? keySet.retired.find((key) => key.kid === kid);
}

/** The JWK members node-jose needs, without Lockstep's lifecycle members. */
export function keyMaterial(key: ManagedKey): Record<string, string> {
  // A KEK held in an HSM has no material here: only its backend wraps and unwraps (kek-view.ts).
  if (isViewKey(key)) throw new KeySetError('InvalidKeySet', `KEK ${key.kid} is held in an HSM; it has no material to use here`);
  const jwk: Record<string, string> = { kty: key.kty, kid: key.kid, use: key.use, alg: key.alg };
  for (const member of MATERIAL_MEMBERS[key.kty]) {
    const value = key[member];
    if (value !== undefined) jwk[member] = value;
  }
  return jwk;
}

/** Public half of the active sealing key, for the ConfigMap the CLI reads. */
export function publicJwks(keySet: KeySet): PublicJwks {
  if (keySet.purpose !== 'seal') {
    // The KEK is never published, even when asymmetric (see the header comment).
    throw new KeySetError('WrongPurpose', 'only a sealing key set can be published');
  }
  const key = activeKey(keySet);
  if (key.kty === 'oct' || key.alg === 'A256KW') {
    throw new KeySetError('NotPublic', 'a symmetric key has no public half');
  }
  const published: Record<string, string> = { kty: key.kty, kid: key.kid, use: 'enc', alg: key.alg };
  for (const member of PUBLIC_MEMBERS[key.kty]) {
    const value = key[member];
    if (value === undefined) throw new KeySetError('InvalidKeySet', 'sealing key lacks public members');
    published[member] = value;
  }
  return { keys: [published as unknown as PublicJwk] };
}

export function serializeKeySet(keySet: KeySet): string {
  return JSON.stringify({ purpose: keySet.purpose, keys: keySet.keys, retired: keySet.retired });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTimestamp(value: unknown): value is string {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value));
}

function invalid(message: string): KeySetError {
  return new KeySetError('InvalidKeySet', message);
}

function checkMaterial(key: Record<string, unknown>, kty: ManagedKey['kty'], where: string): void {
  for (const member of MATERIAL_MEMBERS[kty]) {
    if (typeof key[member] !== 'string') throw invalid(`${where}: missing key member "${member}"`);
  }
  try {
    if (kty === 'oct') {
      if (Buffer.from(key['k'] as string, 'base64url').length !== 32) {
        throw invalid(`${where}: A256KW key must be 256 bits`);
      }
      return;
    }
    // Parse and prove the private half matches the public half, so a truncated or corrupted key
    // fails here, at load, rather than as "Tampered" on every ciphertext during reconciles.
    const parsed = createPrivateKey({ key: keyMaterialOf(key, kty), format: 'jwk' });
    if (kty === 'RSA') {
      if ((parsed.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw invalid(`${where}: RSA key shorter than 2048 bits`);
      if (!rsaConsistent(key)) throw invalid(`${where}: RSA private and public parts do not match`);
    } else {
      const ecdh = createECDH(NODE_CURVES[key['crv'] as string] ?? '');
      ecdh.setPrivateKey(Buffer.from(key['d'] as string, 'base64url'));
      const expected = Buffer.concat([
        Buffer.from([4]),
        Buffer.from(key['x'] as string, 'base64url'),
        Buffer.from(key['y'] as string, 'base64url'),
      ]);
      if (!ecdh.getPublicKey().equals(expected)) throw invalid(`${where}: EC private and public parts do not match`);
    }
  } catch (error) {
    if (error instanceof KeySetError) throw error;
    throw invalid(`${where}: key material does not parse`);
  }
}

function bigint(member: unknown): bigint {
  const hex = Buffer.from(member as string, 'base64url').toString('hex');
  return BigInt(`0x${hex || '0'}`);
}

// OpenSSL decrypts with the CRT members and never looks at d, while other JOSE libraries may use
// d alone; every member must agree or the key set would open differently elsewhere.
function rsaConsistent(key: Record<string, unknown>): boolean {
  const [n, e, d, p, q, dp, dq, qi] = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'].map((member) => bigint(key[member]));
  if (n === undefined || e === undefined || d === undefined || p === undefined || q === undefined) return false;
  if (dp === undefined || dq === undefined || qi === undefined) return false;
  return (
    p * q === n &&
    (e * d) % (p - 1n) === 1n &&
    (e * d) % (q - 1n) === 1n &&
    d % (p - 1n) === dp &&
    d % (q - 1n) === dq &&
    (qi * q) % p === 1n
  );
}

function keyMaterialOf(key: Record<string, unknown>, kty: ManagedKey['kty']): { kty: string } & Record<string, string> {
  const jwk: { kty: string } & Record<string, string> = { kty };
  for (const member of MATERIAL_MEMBERS[kty]) jwk[member] = key[member] as string;
  return jwk;
}

function parseManagedKey(value: unknown, purpose: KeyPurpose, position: number): ManagedKey {
  const where = `keys[${position}]`;
  if (!isRecord(value)) throw invalid(`${where} is not an object`);
  const { kid, alg, use, state, createdAt, activatedAt, deactivatedAt } = value;
  if (typeof kid !== 'string' || !KID_SHAPE.test(kid)) throw invalid(`${where}: kid missing or malformed`);
  if (!isKeyWrapAlgorithm(alg)) throw invalid(`${where} (${kid}): unsupported alg`);
  if (purpose === 'seal' && alg === 'A256KW') throw invalid(`${where} (${kid}): A256KW cannot seal`);
  const kty = KTY_FOR_ALG[alg];
  if (value['kty'] !== kty) throw invalid(`${where} (${kid}): kty does not match ${alg}`);
  if (use !== 'enc') throw invalid(`${where} (${kid}): use must be "enc"`);
  if (state !== 'active' && state !== 'decrypt-only') throw invalid(`${where} (${kid}): bad state`);
  if (!isTimestamp(createdAt)) throw invalid(`${where} (${kid}): createdAt is not a timestamp`);
  if (!isTimestamp(activatedAt)) throw invalid(`${where} (${kid}): activatedAt is not a timestamp`);
  if (deactivatedAt !== undefined && !isTimestamp(deactivatedAt)) {
    throw invalid(`${where} (${kid}): deactivatedAt is not a timestamp`);
  }
  if (kty === 'EC' && !CURVES.includes(value['crv'] as string)) throw invalid(`${where} (${kid}): unsupported curve`);
  checkMaterial(value, kty, `${where} (${kid})`);
  if (state === 'decrypt-only' && deactivatedAt === undefined) {
    throw invalid(`${where} (${kid}): a decrypt-only key needs deactivatedAt`);
  }
  const key: Record<string, string> = { kty, kid, use, alg, state, createdAt, activatedAt };
  if (deactivatedAt !== undefined) key['deactivatedAt'] = deactivatedAt;
  for (const member of MATERIAL_MEMBERS[kty]) key[member] = value[member] as string;
  return key as unknown as ManagedKey;
}

function parseRetiredKey(value: unknown, position: number): RetiredKey {
  const where = `retired[${position}]`;
  if (!isRecord(value)) throw invalid(`${where} is not an object`);
  const { kid, alg, state, createdAt, retiredAt } = value;
  if (typeof kid !== 'string' || !KID_SHAPE.test(kid)) throw invalid(`${where}: kid missing or malformed`);
  if (!isKeyWrapAlgorithm(alg)) throw invalid(`${where} (${kid}): unsupported alg`);
  if (state !== 'retired') throw invalid(`${where} (${kid}): state must be "retired"`);
  if (!isTimestamp(createdAt) || !isTimestamp(retiredAt)) throw invalid(`${where} (${kid}): bad timestamps`);
  if (PRIVATE_MEMBERS.some((member) => member in value)) {
    throw invalid(`${where} (${kid}): a retired key must not keep key material`);
  }
  return { kid, alg, state, createdAt, retiredAt };
}

/**
 * Reads a stored key set (the Secret's JSON, or the parsed object) and checks it fully, so that
 * a corrupted Secret fails loudly at load instead of as "Tampered" on every ciphertext.
 */
export function parseKeySet(input: string | unknown, expectedPurpose?: KeyPurpose): KeySet {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch {
      throw invalid('key set is not JSON');
    }
  }
  if (!isRecord(value)) throw invalid('key set is not an object');
  const { purpose, keys, retired } = value;
  if (purpose !== 'kek' && purpose !== 'seal') throw invalid('purpose must be "kek" or "seal"');
  if (expectedPurpose !== undefined && purpose !== expectedPurpose) {
    throw new KeySetError('WrongPurpose', `expected a ${expectedPurpose} key set, got ${purpose}`);
  }
  if (!Array.isArray(keys)) throw invalid('keys must be an array');
  const retiredList: unknown[] = retired === undefined ? [] : (retired as unknown[]);
  if (!Array.isArray(retiredList)) throw invalid('retired must be an array');
  const parsedKeys = keys.map((key, position) => parseManagedKey(key, purpose, position));
  const parsedRetired = retiredList.map((key, position) => parseRetiredKey(key, position));
  const kids = new Set<string>();
  for (const { kid } of [...parsedKeys, ...parsedRetired]) {
    if (kids.has(kid)) throw invalid(`kid ${kid} appears twice`);
    kids.add(kid);
  }
  const keySet: KeySet = { purpose, keys: orderKeys(parsedKeys), retired: parsedRetired };
  activeKey(keySet);
  return keySet;
}

/** Active first, then decrypt-only keys by most recent deactivation (the retention order). */
export function orderKeys(keys: readonly ManagedKey[]): ManagedKey[] {
  const since = (key: ManagedKey): number => Date.parse(key.deactivatedAt ?? key.createdAt);
  return [...keys].sort((a, b) => {
    if (a.state !== b.state) return a.state === 'active' ? -1 : 1;
    return since(b) - since(a) || Date.parse(b.createdAt) - Date.parse(a.createdAt);
  });
}

/**
 * Reads a published JWK Set (what `lockstep seal` fetched from the ConfigMap) and refuses any
 * key that is not a public sealing key — a leaked private or symmetric key in a "public" file is
 * a bug worth stopping on.
 */
export function parsePublicJwks(input: string | unknown): PublicJwks {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch {
      throw new KeySetError('InvalidKeySet', 'public key set is not JSON');
    }
  }
  if (!isRecord(value) || !Array.isArray(value['keys'])) {
    throw new KeySetError('InvalidKeySet', 'public key set must be an object with a "keys" array');
  }
  const keys = (value['keys'] as unknown[]).map((key, position): PublicJwk => {
    const where = `keys[${position}]`;
    if (!isRecord(key)) throw new KeySetError('InvalidKeySet', `${where} is not an object`);
    if (key['kty'] === 'oct' || PRIVATE_MEMBERS.some((member) => member in key)) {
      throw new KeySetError('NotPublic', `${where} carries private or symmetric key material`);
    }
    const { kid, alg } = key;
    if (typeof kid !== 'string' || !KID_SHAPE.test(kid)) {
      throw new KeySetError('InvalidKeySet', `${where}: kid missing or malformed`);
    }
    if (alg !== 'RSA-OAEP-256' && alg !== 'ECDH-ES+A256KW') {
      throw new KeySetError('UnsupportedAlgorithm', `${where} (${kid}): not a sealing algorithm`);
    }
    const kty = KTY_FOR_ALG[alg] as PublicJwk['kty'];
    if (key['kty'] !== kty) throw new KeySetError('InvalidKeySet', `${where} (${kid}): kty does not match alg`);
    if (key['use'] !== undefined && key['use'] !== 'enc') {
      throw new KeySetError('InvalidKeySet', `${where} (${kid}): use must be "enc"`);
    }
    const jwk: Record<string, string> = { kty, kid, use: 'enc', alg };
    for (const member of PUBLIC_MEMBERS[kty]) {
      if (typeof key[member] !== 'string') {
        throw new KeySetError('InvalidKeySet', `${where} (${kid}): missing "${member}"`);
      }
      jwk[member] = key[member] as string;
    }
    try {
      createPublicKey({ key: jwk as { kty: string }, format: 'jwk' });
    } catch {
      throw new KeySetError('InvalidKeySet', `${where} (${kid}): public key does not parse`);
    }
    return jwk as unknown as PublicJwk;
  });
  if (keys.length === 0) throw new KeySetError('NoActiveKey', 'public key set is empty');
  return { keys };
}
