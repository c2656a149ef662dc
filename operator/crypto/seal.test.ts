import { beforeAll, describe, expect, it } from '@jest/globals';
import { DecryptError } from './errors.js';
import { activeKey, createKeySet, generateKey, publicJwks, type KeySet, type SealingAlgorithm } from './keyset.js';
import { applyRotation } from './rotation.js';
import { inspectSealedValue, openSealed, sealValue } from './seal.js';

const now = new Date('2026-11-15T12:00:00Z');
const target = { namespace: 'payments', name: 'ledger-db', key: 'password' };

async function failure(action: Promise<unknown>): Promise<DecryptError> {
  try {
    await action;
  } catch (error) {
    if (error instanceof DecryptError) return error;
    throw error;
  }
  throw new Error('expected a DecryptError');
}

describe.each<SealingAlgorithm>(['RSA-OAEP-256', 'ECDH-ES+A256KW'])('sealing with %s', (alg) => {
  let seal: KeySet;
  beforeAll(async () => {
    seal = await createKeySet('seal', alg, { now, rsaBits: 2048 });
  });

  it('opens for the Secret it was sealed for, from the published JSON', async () => {
    const published = JSON.stringify(publicJwks(seal));
    const sealed = await sealValue(published, 'correct horse battery staple', target);
    expect((await openSealed(seal, sealed, target)).toString('utf8')).toBe('correct horse battery staple');
    expect(inspectSealedValue(sealed)).toEqual({
      kid: activeKey(seal).kid,
      alg,
      binding: { ns: 'payments', name: 'ledger-db', key: 'password' },
    });
  });

  it.each([
    ['namespace', { ...target, namespace: 'attacker' }],
    ['Secret name', { ...target, name: 'other-db' }],
    ['data key', { ...target, key: 'username' }],
  ])('refuses replay into another %s with WrongBinding', async (_what, elsewhere) => {
    const sealed = await sealValue(publicJwks(seal), 'value', target);
    const error = await failure(openSealed(seal, sealed, elsewhere));
    expect(error.reason).toBe('WrongBinding');
    expect(error.message).toContain('payments/ledger-db[password]');
    expect(error.kid).toBe(activeKey(seal).kid);
  });

  it('opens with a rotated key set while the old key is decrypt-only', async () => {
    const sealed = await sealValue(publicJwks(seal), 'from git', target);
    const { keySet: rotated } = applyRotation(seal, await generateKey('seal', alg, { now, rsaBits: 2048 }), {
      retention: 1,
      usage: {},
      now,
    });
    expect(publicJwks(rotated).keys[0]?.kid).not.toBe(activeKey(seal).kid);
    expect((await openSealed(rotated, sealed, target)).toString()).toBe('from git');
  });
});

describe('ECDH-ES ephemeral keys', () => {
  it('are fresh per value and only their public half is in the header', async () => {
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now, curve: 'P-384' });
    const header = (sealed: string): Record<string, Record<string, string>> =>
      JSON.parse(Buffer.from(sealed.split('.')[0] ?? '', 'base64url').toString()) as Record<string, Record<string, string>>;
    const [a, b] = await Promise.all([sealValue(publicJwks(seal), 'v', target), sealValue(publicJwks(seal), 'v', target)]);
    expect(header(a)['epk']).toEqual({ kty: 'EC', crv: 'P-384', x: expect.any(String), y: expect.any(String) });
    expect(header(a)['epk']?.['x']).not.toBe(header(b)['epk']?.['x']);
    expect((await openSealed(seal, b, target)).toString()).toBe('v');
  });
});

describe('seal inputs', () => {
  it('seals to a chosen published kid and refuses an unpublished one', async () => {
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now });
    const published = publicJwks(seal);
    const kid = activeKey(seal).kid;
    const sealed = await sealValue(published, 'v', target, { kid });
    expect(inspectSealedValue(sealed).kid).toBe(kid);
    await expect(sealValue(published, 'v', target, { kid: 'seal-missing' })).rejects.toMatchObject({ reason: 'NoActiveKey' });
  });

  it('refuses to seal with private material and to open with the KEK set', async () => {
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now });
    await expect(sealValue({ keys: [seal.keys[0]] } as never, 'v', target)).rejects.toMatchObject({ reason: 'NotPublic' });
    const kek = await createKeySet('kek', 'A256KW', { now });
    const sealed = await sealValue(publicJwks(seal), 'v', target);
    await expect(openSealed(kek, sealed, target)).rejects.toMatchObject({ reason: 'WrongPurpose' });
  });

  it('refuses a target Kubernetes would not accept', async () => {
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now });
    await expect(sealValue(publicJwks(seal), 'v', { ...target, key: '../etc' })).rejects.toMatchObject({
      reason: 'InvalidBinding',
    });
  });
});
