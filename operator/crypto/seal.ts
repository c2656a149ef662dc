import {
  assertSecretBinding,
  formatSecretBinding,
  type SecretBinding,
} from './binding.js';
import { decryptCompact, encryptCompact, readLockstepHeader } from './compact-jwe.js';
import { BindingError, DecryptError, KeySetError } from './errors.js';
import { parsePublicJwks, type KeySet, type PublicJwk, type PublicJwks } from './keyset.js';

// Sealed values for GitOps. `lockstep seal` encrypts a value offline to the KeyPolicy's published
// sealing key (see keyset.ts for why that is never the KEK, and why an A256KW policy still gets
// an asymmetric sealing key). The target namespace, Secret name and data key sit in the JWE
// protected header — covered by the AES-GCM tag — and are compared on open, so a ciphertext
// committed for one Secret cannot be replayed into another namespace, Secret or key.

const SEALED_TYPE = 'lockstep.sealed.v1';
const MAX_VALUE = 1024 * 1024;

export interface SealedValueInfo {
  readonly kid: string;
  readonly alg: string;
  /** As written in the (not yet authenticated) header. */
  readonly binding: Readonly<Record<string, string>>;
}

export interface SealOptions {
  /** Seal to this kid instead of the first key of the published set. */
  readonly kid?: string;
}

function pickKey(jwks: PublicJwks, kid: string | undefined): PublicJwk {
  const key = kid === undefined ? jwks.keys[0] : jwks.keys.find((candidate) => candidate.kid === kid);
  if (key === undefined) {
    throw new KeySetError('NoActiveKey', kid === undefined ? 'no sealing key published' : `sealing key ${kid} is not published`);
  }
  return key;
}

/** Encrypts `value` so that only the operator can open it, and only for `binding`. */
export async function sealValue(
  publicKeys: PublicJwks | string,
  value: string | Uint8Array,
  binding: SecretBinding,
  options: SealOptions = {},
): Promise<string> {
  assertSecretBinding(binding);
  // Re-validated even when typed: the published set may come from a file the user edited.
  const jwks = parsePublicJwks(publicKeys);
  const payload = Buffer.from(typeof value === 'string' ? Buffer.from(value, 'utf8') : value);
  if (payload.length > MAX_VALUE) throw new RangeError('value is larger than a Secret can hold');
  return encryptCompact(pickKey(jwks, options.kid), {
    typ: SEALED_TYPE,
    binding: { ns: binding.namespace, name: binding.name, key: binding.key },
    payload,
  });
}

function describeHeaderBinding(binding: Readonly<Record<string, string>>): string {
  // After decryption the header is authentic, but anyone with the public key chose it; only a
  // binding that passes Kubernetes naming rules is repeated in the message.
  const candidate = { namespace: binding['ns'] ?? '', name: binding['name'] ?? '', key: binding['key'] ?? '' };
  try {
    assertSecretBinding(candidate);
    return formatSecretBinding(candidate);
  } catch (error) {
    if (error instanceof BindingError) return 'an invalid target';
    throw error;
  }
}

/** Opens a sealed value for `binding` with the policy's sealing key set. */
export async function openSealed(keySet: KeySet, sealed: string, binding: SecretBinding): Promise<Buffer> {
  if (keySet.purpose !== 'seal') {
    throw new KeySetError('WrongPurpose', 'sealed values are opened with the sealing key set, not the kek set');
  }
  assertSecretBinding(binding);
  const { header, payload } = await decryptCompact(keySet, sealed, SEALED_TYPE);
  const bound = header.binding;
  const keys = Object.keys(bound).sort().join(',');
  if (
    keys !== 'key,name,ns' ||
    bound['ns'] !== binding.namespace ||
    bound['name'] !== binding.name ||
    bound['key'] !== binding.key
  ) {
    payload.fill(0);
    throw new DecryptError(
      'WrongBinding',
      `sealed value is bound to ${describeHeaderBinding(bound)}, not ${formatSecretBinding(binding)}`,
      header.kid,
    );
  }
  return payload;
}

/** Header facts (kid for usage counting, target for diagnostics); nothing is decrypted. */
export function inspectSealedValue(sealed: string): SealedValueInfo {
  const header = readLockstepHeader(sealed);
  return { kid: header.kid, alg: header.alg, binding: header.binding };
}
