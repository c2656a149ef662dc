// RFC 7638 JWK thumbprints of public sealing keys. The KeyPolicy status publishes the active
// sealing key's thumbprint (status is written only by the operator), so `lockstep seal` can tell
// the key in the tenant-writable JWKS ConfigMap from one the operator actually holds.
import { createHash } from 'node:crypto';
import { KeySetError } from './errors.js';
import type { PublicJwk } from './keyset.js';

/** The required members per key type (RFC 7638 §3.2), in lexicographic order. */
const REQUIRED: Readonly<Record<string, readonly string[]>> = {
  RSA: ['e', 'kty', 'n'],
  EC: ['crv', 'kty', 'x', 'y'],
};

/** base64url SHA-256 thumbprint: the JSON of the required members, sorted, without whitespace. */
export function jwkThumbprint(jwk: Pick<PublicJwk, 'kty'> & Partial<Record<'n' | 'e' | 'crv' | 'x' | 'y', string>>): string {
  const members = REQUIRED[jwk.kty];
  if (!members) throw new KeySetError('NotPublic', `no thumbprint for key type ${String(jwk.kty)}`);
  const fields = members.map((m) => {
    const value = (jwk as Record<string, unknown>)[m];
    if (typeof value !== 'string' || value === '') throw new KeySetError('InvalidKeySet', `public key lacks ${m}`);
    return `${JSON.stringify(m)}:${JSON.stringify(value)}`;
  });
  return createHash('sha256').update(`{${fields.join(',')}}`, 'utf8').digest('base64url');
}
