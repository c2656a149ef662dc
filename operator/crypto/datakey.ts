import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { assertServiceBinding, formatServiceBinding, type ServiceBinding } from './binding.js';
import { decryptCompact, encryptCompact, readLockstepHeader } from './compact-jwe.js';
import { DecryptError, KeySetError } from './errors.js';
import { activeKey, type KeySet } from './keyset.js';
import { kekBackendOf } from './kek-view.js';
import { HSM_KEY_MANAGEMENT, parseWrapped } from './pkcs11-wrapped.js';

// One data key (DEK) per EncryptedService. It exists in clear only in memory, as a KeyObject —
// which prints and serialises as an opaque object, so a stray log line cannot leak it. At rest it
// is a compact JWE under the KeyPolicy's active KEK, with the service's namespace/name bound in
// the protected header: a wrapped key copied onto another service does not open there.

export interface DataKey {
  /** Random id, recorded in the wrapped form and in every envelope made with this key. */
  readonly id: string;
  readonly key: KeyObject;
}

export interface WrappedDataKeyInfo {
  readonly kid: string;
  readonly dataKeyId: string;
  /** As written in the (not yet authenticated) header. */
  readonly binding: Readonly<Record<string, string>>;
}

export interface RewrapResult {
  readonly wrapped: string;
  readonly fromKid: string;
  readonly toKid: string;
  /** False when the key was already under the active KEK (the input is returned unchanged). */
  readonly changed: boolean;
}

const DATA_KEY_TYPE = 'lockstep.dek.v1';
/** Shape of a data key id: random, so it says nothing about the key. */
export const DATA_KEY_ID = /^dek-[0-9a-f]{24}$/;

export function generateDataKey(): DataKey {
  return { id: `dek-${randomBytes(12).toString('hex')}`, key: createSecretKey(randomBytes(32)) };
}

function kekOnly(keySet: KeySet): void {
  if (keySet.purpose !== 'kek') {
    throw new KeySetError('WrongPurpose', 'data keys are wrapped with a kek key set, not a sealing key set');
  }
}

export async function wrapDataKey(keySet: KeySet, dataKey: DataKey, binding: ServiceBinding): Promise<string> {
  kekOnly(keySet);
  // KEKs in an HSM: the token wraps (kek-view.ts).
  const backend = kekBackendOf(keySet);
  if (backend) return backend.wrapDataKey(dataKey, binding);
  assertServiceBinding(binding);
  if (!DATA_KEY_ID.test(dataKey.id) || dataKey.key.type !== 'secret' || dataKey.key.symmetricKeySize !== 32) {
    throw new KeySetError('InvalidTransition', 'not a Lockstep data key (256-bit secret with a dek- id)');
  }
  return encryptCompact(activeKey(keySet), {
    typ: DATA_KEY_TYPE,
    binding: { ns: binding.namespace, name: binding.name },
    dataKeyId: dataKey.id,
    payload: dataKey.key.export(),
  });
}

export async function unwrapDataKey(keySet: KeySet, wrapped: string, binding: ServiceBinding): Promise<DataKey> {
  kekOnly(keySet);
  const backend = kekBackendOf(keySet);
  if (backend) return backend.unwrapDataKey(wrapped, binding);
  assertServiceBinding(binding);
  const { header, payload } = await decryptCompact(keySet, wrapped, DATA_KEY_TYPE);
  const { kid } = header;
  if (header.binding['ns'] !== binding.namespace || header.binding['name'] !== binding.name) {
    throw new DecryptError(
      'WrongBinding',
      `data key under ${kid} belongs to another service, not ${formatServiceBinding(binding)}`,
      kid,
    );
  }
  // Authentic at this point, so a bad id or size is a writer bug, not an attack.
  if (header.dataKeyId === undefined || !DATA_KEY_ID.test(header.dataKeyId) || payload.length !== 32) {
    payload.fill(0);
    throw new DecryptError('Malformed', `wrapped data key under ${kid} has no valid id or is not 256 bits`, kid);
  }
  const key = createSecretKey(payload);
  payload.fill(0);
  return { id: header.dataKeyId, key };
}

/** Re-wraps under the active KEK; a no-op when it already is (so a rotation pass is idempotent). */
export async function rewrapDataKey(keySet: KeySet, wrapped: string, binding: ServiceBinding): Promise<RewrapResult> {
  kekOnly(keySet);
  const toKid = activeKey(keySet).kid;
  const fromKid = inspectWrappedDataKey(wrapped).kid;
  if (fromKid === toKid) {
    // Still authenticate: a rotation pass doubles as the check that every wrapped key opens.
    await unwrapDataKey(keySet, wrapped, binding);
    return { wrapped, fromKid, toKid, changed: false };
  }
  const dataKey = await unwrapDataKey(keySet, wrapped, binding);
  return { wrapped: await wrapDataKey(keySet, dataKey, binding), fromKid, toKid, changed: true };
}

/** Header facts for status and usage counting, without any key. Throws DecryptError('Malformed'). */
export function inspectWrappedDataKey(wrapped: string): WrappedDataKeyInfo {
  if (isHsmWrapped(wrapped)) {
    const parsed = parseWrapped(wrapped);
    return { kid: parsed.kid, dataKeyId: parsed.dataKeyId, binding: { ...parsed.binding } };
  }
  const header = readLockstepHeader(wrapped);
  if (header.dataKeyId === undefined) {
    throw new DecryptError('Malformed', 'not a wrapped data key (no data key id)', header.kid);
  }
  return { kid: header.kid, dataKeyId: header.dataKeyId, binding: header.binding };
}

/** Whether the protected header says `alg: dir`, the form a KEK in an HSM wraps to (pkcs11-wrapped.ts). */
function isHsmWrapped(wrapped: string): boolean {
  if (typeof wrapped !== 'string') return false;
  const first = wrapped.trim().split('.', 1)[0] ?? '';
  try {
    const header: unknown = JSON.parse(Buffer.from(first, 'base64url').toString('utf8'));
    return typeof header === 'object' && header !== null && (header as Record<string, unknown>)['alg'] === HSM_KEY_MANAGEMENT;
  } catch {
    return false;
  }
}
