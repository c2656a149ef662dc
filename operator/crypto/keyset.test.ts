import { beforeAll, describe, expect, it } from '@jest/globals';
import { KeySetError } from './errors.js';
import {
  activeKey,
  createKeySet,
  findKey,
  generateKey,
  parseKeySet,
  parsePublicJwks,
  publicJwks,
  sealingAlgorithmFor,
  serializeKeySet,
  type KeySet,
} from './keyset.js';

const now = new Date('2026-11-15T12:00:00.123Z');

function reasonOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    if (error instanceof KeySetError) return error.reason;
    throw error;
  }
  return undefined;
}

describe('key generation', () => {
  it.each([
    ['A256KW', 'oct', ['k']],
    ['RSA-OAEP-256', 'RSA', ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi']],
    ['ECDH-ES+A256KW', 'EC', ['crv', 'x', 'y', 'd']],
  ] as const)('makes an active %s key with kid, times and material', async (alg, kty, members) => {
    const key = await generateKey('kek', alg, { now, rsaBits: 2048 });
    expect(key).toMatchObject({ kty, alg, use: 'enc', state: 'active', createdAt: now.toISOString(), activatedAt: now.toISOString() });
    expect(key.kid).toMatch(/^kek-20261115t120000z-[0-9a-f]{8}$/);
    for (const member of members) expect(typeof key[member]).toBe('string');
  });

  it('gives distinct kids to keys made in the same second', async () => {
    const [a, b] = await Promise.all([generateKey('kek', 'A256KW', { now }), generateKey('kek', 'A256KW', { now })]);
    expect(a.kid).not.toBe(b.kid);
  });

  it('refuses a symmetric sealing key and picks an asymmetric one for A256KW policies', async () => {
    await expect(generateKey('seal', 'A256KW', { now })).rejects.toMatchObject({ reason: 'UnsupportedAlgorithm' });
    expect(sealingAlgorithmFor('A256KW')).toBe('ECDH-ES+A256KW');
    expect(sealingAlgorithmFor('RSA-OAEP-256')).toBe('RSA-OAEP-256');
    expect(sealingAlgorithmFor('ECDH-ES+A256KW')).toBe('ECDH-ES+A256KW');
  });

  it('honours the RSA size and EC curve', async () => {
    const rsa = await generateKey('seal', 'RSA-OAEP-256', { now, rsaBits: 2048 });
    expect(Buffer.from(rsa['n'] ?? '', 'base64url').length * 8).toBe(2048);
    const ec = await generateKey('seal', 'ECDH-ES+A256KW', { now, curve: 'P-384' });
    expect(ec['crv']).toBe('P-384');
  });
});

describe('stored form', () => {
  let kek: KeySet;
  let seal: KeySet;
  beforeAll(async () => {
    kek = await createKeySet('kek', 'A256KW', { now });
    seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now });
  });

  it('round-trips through JSON and stays a JWK Set', () => {
    const text = serializeKeySet(kek);
    const parsed = parseKeySet(text, 'kek');
    expect(parsed).toEqual(kek);
    const jwks = JSON.parse(text) as { keys: { kty: string; kid: string }[] };
    expect(jwks.keys[0]?.kty).toBe('oct');
    expect(activeKey(parsed).kid).toBe(activeKey(kek).kid);
    expect(findKey(parsed, activeKey(kek).kid)?.state).toBe('active');
  });

  it('rejects the wrong purpose', () => {
    expect(reasonOf(() => parseKeySet(serializeKeySet(kek), 'seal'))).toBe('WrongPurpose');
  });

  it.each([
    ['not JSON', () => '{', 'InvalidKeySet'],
    ['no purpose', (ks: KeySet) => ({ ...ks, purpose: 'other' }), 'InvalidKeySet'],
    ['two active keys', (ks: KeySet) => ({ ...ks, keys: [ks.keys[0], { ...ks.keys[0], kid: 'kek-other' }] }), 'NoActiveKey'],
    ['no active key', (ks: KeySet) => ({ ...ks, keys: [] }), 'NoActiveKey'],
    ['duplicate kid', (ks: KeySet) => ({ ...ks, retired: [{ kid: ks.keys[0]?.kid, alg: 'A256KW', state: 'retired', createdAt: now.toISOString(), retiredAt: now.toISOString() }] }), 'InvalidKeySet'],
    ['truncated key', (ks: KeySet) => ({ ...ks, keys: [{ ...ks.keys[0], k: 'AAAA' }] }), 'InvalidKeySet'],
    ['kty not matching alg', (ks: KeySet) => ({ ...ks, keys: [{ ...ks.keys[0], alg: 'RSA-OAEP-256' }] }), 'InvalidKeySet'],
    ['bad state', (ks: KeySet) => ({ ...ks, keys: [{ ...ks.keys[0], state: 'retired' }] }), 'InvalidKeySet'],
    ['retired record with material', (ks: KeySet) => ({ ...ks, retired: [{ kid: 'kek-x', alg: 'A256KW', state: 'retired', createdAt: now.toISOString(), retiredAt: now.toISOString(), k: ks.keys[0]?.['k'] }] }), 'InvalidKeySet'],
  ] as const)('rejects a key set with %s', (_case, mutate, reason) => {
    const mutated = mutate(kek);
    expect(reasonOf(() => parseKeySet(typeof mutated === 'string' ? mutated : JSON.stringify(mutated)))).toBe(reason);
  });

  it('refuses asymmetric keys whose private half does not match the public half', async () => {
    const broken = { ...seal, keys: [{ ...seal.keys[0], d: 'AAAA' }] };
    expect(reasonOf(() => parseKeySet(JSON.stringify(broken)))).toBe('InvalidKeySet');
    const other = await createKeySet('seal', 'ECDH-ES+A256KW', { now });
    const swapped = { ...seal, keys: [{ ...seal.keys[0], d: other.keys[0]?.['d'] }] };
    expect(reasonOf(() => parseKeySet(JSON.stringify(swapped)))).toBe('InvalidKeySet');
    const [rsa, rsaOther] = await Promise.all([
      createKeySet('seal', 'RSA-OAEP-256', { now, rsaBits: 2048 }),
      createKeySet('seal', 'RSA-OAEP-256', { now, rsaBits: 2048 }),
    ]);
    expect(parseKeySet(serializeKeySet(rsa))).toEqual(rsa);
    const mixed = { ...rsa, keys: [{ ...rsa.keys[0], d: rsaOther.keys[0]?.['d'] }] };
    expect(reasonOf(() => parseKeySet(JSON.stringify(mixed)))).toBe('InvalidKeySet');
  });

  it('does not put key material into its error messages', () => {
    const secret = kek.keys[0]?.['k'] ?? '';
    const broken = { ...kek, keys: [{ ...kek.keys[0], alg: 'nope' }] };
    try {
      parseKeySet(JSON.stringify(broken));
      throw new Error('expected a KeySetError');
    } catch (error) {
      expect(String(error)).not.toContain(secret);
      expect(JSON.stringify(error)).not.toContain(secret);
    }
  });
});

describe('published sealing keys', () => {
  it('publishes only the public half of the active sealing key', async () => {
    for (const alg of ['RSA-OAEP-256', 'ECDH-ES+A256KW'] as const) {
      const seal = await createKeySet('seal', alg, { now, rsaBits: 2048 });
      const published = publicJwks(seal);
      expect(published.keys).toHaveLength(1);
      const key = published.keys[0] as unknown as Record<string, unknown>;
      expect(key['kid']).toBe(activeKey(seal).kid);
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'state', 'createdAt']) expect(key).not.toHaveProperty(member);
      expect(parsePublicJwks(JSON.stringify(published))).toEqual(published);
    }
  });

  it('never publishes a KEK, even an asymmetric one', async () => {
    const kek = await createKeySet('kek', 'ECDH-ES+A256KW', { now });
    expect(reasonOf(() => publicJwks(kek))).toBe('WrongPurpose');
  });

  it('refuses a "public" set that carries private or symmetric keys', async () => {
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now });
    const leaked = { keys: [{ ...seal.keys[0] }] };
    expect(reasonOf(() => parsePublicJwks(leaked))).toBe('NotPublic');
    const kek = await createKeySet('kek', 'A256KW', { now });
    expect(reasonOf(() => parsePublicJwks({ keys: [{ ...kek.keys[0] }] }))).toBe('NotPublic');
    expect(reasonOf(() => parsePublicJwks({ keys: [] }))).toBe('NoActiveKey');
  });
});
