import { describe, expect, it } from '@jest/globals';
import { createKeySet, publicJwks } from '../crypto/keyset.js';
import { jwkThumbprint } from '../crypto/thumbprint.js';
import { verifiedSealingKey } from './sealing-key.js';

describe('verifiedSealingKey', () => {
  it('returns the published key when kid and thumbprint match the status', async () => {
    const jwks = publicJwks(await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() }));
    const key = jwks.keys[0]!;
    const verified = verifiedSealingKey(jwks, 'ConfigMap shop/p-jwks', [{ source: 'status', kid: key.kid, thumbprint: jwkThumbprint(key) }]);
    expect(verified.keys).toEqual([key]);
  });

  it('refuses a substituted key, even one that reuses the expected kid', async () => {
    const operator = publicJwks(await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() })).keys[0]!;
    const attacker = publicJwks(await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() })).keys[0]!;
    const expected = [{ source: 'KeyPolicy shop/p status', kid: operator.kid, thumbprint: jwkThumbprint(operator) }];
    expect(() => verifiedSealingKey({ keys: [{ ...attacker, kid: operator.kid }] }, 'ConfigMap shop/p-jwks', expected))
      .toThrow(/thumbprint .* expects .*not the operator's; nothing was sealed/);
    expect(() => verifiedSealingKey({ keys: [attacker] }, 'ConfigMap shop/p-jwks', expected)).toThrow(/publishes no sealing key with kid/);
  });

  it('checks a --fingerprint alone (offline), and a key named by --kid', async () => {
    const jwks = publicJwks(await createKeySet('seal', 'RSA-OAEP-256', { now: new Date(), rsaBits: 2048 }));
    const key = jwks.keys[0]!;
    expect(verifiedSealingKey(jwks, 'JWKS file j', [{ source: '--fingerprint', thumbprint: jwkThumbprint(key) }], key.kid).keys[0]).toBe(key);
    expect(() => verifiedSealingKey(jwks, 'JWKS file j', [{ source: '--fingerprint', thumbprint: 'x'.repeat(43) }])).toThrow(/--fingerprint expects/);
  });
});
