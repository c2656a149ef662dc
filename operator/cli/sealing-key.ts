// Which published key `lockstep seal` may encrypt to. The JWKS ConfigMap sits in the policy's
// namespace, where anyone with ConfigMap rights can replace the key with their own and read
// everything sealed afterwards. The KeyPolicy's status (written only by the operator) names the
// active sealing kid and its RFC 7638 thumbprint; a key that does not match is refused. Pure.
import type { PublicJwk, PublicJwks } from '../crypto/keyset.js';
import { jwkThumbprint } from '../crypto/thumbprint.js';
import { CliError } from './io.js';

export interface ExpectedSealingKey {
  /** Where the expectation comes from, for messages: "KeyPolicy shop/default status", "--fingerprint". */
  readonly source: string;
  readonly thumbprint: string;
  readonly kid?: string;
}

/** The one key to seal to, as a JWKS of that key alone, once it matches every expectation. */
export function verifiedSealingKey(jwks: PublicJwks, from: string, expectations: readonly ExpectedSealingKey[], kid?: string): PublicJwks {
  const wanted = kid ?? expectations.find((e) => e.kid !== undefined)?.kid;
  const key: PublicJwk | undefined = wanted === undefined ? jwks.keys[0] : jwks.keys.find((k) => k.kid === wanted);
  if (!key) throw new CliError(`${from} publishes no sealing key${wanted === undefined ? '' : ` with kid ${wanted}`}; nothing was sealed`);
  const thumbprint = jwkThumbprint(key);
  for (const e of expectations) {
    if (e.kid !== undefined && e.kid !== key.kid) {
      throw new CliError(`the sealing key in ${from} is ${key.kid}, but ${e.source} names ${e.kid} as the active sealing key; nothing was sealed (re-run after the policy's next reconcile, or check who changed ${from})`);
    }
    if (e.thumbprint !== thumbprint) {
      throw new CliError(`the sealing key ${key.kid} in ${from} has thumbprint ${thumbprint}, but ${e.source} expects ${e.thumbprint}: the published key is not the operator's; nothing was sealed`);
    }
  }
  return { keys: [key] };
}
