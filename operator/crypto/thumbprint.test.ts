import { describe, expect, it } from '@jest/globals';
import jose from 'node-jose';
import { createKeySet, publicJwks } from './keyset.js';
import { jwkThumbprint } from './thumbprint.js';

describe('jwkThumbprint', () => {
  it('matches the RFC 7638 §3.1 example', () => {
    const n = '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw';
    expect(jwkThumbprint({ kty: 'RSA', n, e: 'AQAB' })).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });

  it('agrees with node-jose for generated sealing keys of both types', async () => {
    for (const alg of ['ECDH-ES+A256KW', 'RSA-OAEP-256'] as const) {
      const jwk = publicJwks(await createKeySet('seal', alg, { now: new Date(), rsaBits: 2048 })).keys[0]!;
      const expected = Buffer.from(await (await jose.JWK.asKey(jwk)).thumbprint('SHA-256')).toString('base64url');
      expect(jwkThumbprint(jwk)).toBe(expected);
    }
    // RSA key generation on a loaded 2-core machine.
  }, 30_000);

  it('changes with any required member and refuses keys without one', () => {
    const base = { kty: 'EC' as const, crv: 'P-256', x: 'AAAA', y: 'BBBB' };
    expect(jwkThumbprint(base)).not.toBe(jwkThumbprint({ ...base, y: 'BBBC' }));
    expect(() => jwkThumbprint({ kty: 'EC', crv: 'P-256', x: 'AAAA' })).toThrow(/lacks y/);
  });
});
