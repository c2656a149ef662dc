import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  generateDataKey,
  inspectWrappedDataKey,
  rewrapDataKey,
  unwrapDataKey,
  wrapDataKey,
} from './datakey.js';
import { activeKey, createKeySet, type KeySet, type KeyWrapAlgorithm } from './keyset.js';
import { applyRotation } from './rotation.js';
import { generateKey } from './keyset.js';

const now = new Date('2026-11-15T12:00:00Z');
const service = { namespace: 'payments', name: 'ledger' };

describe.each<KeyWrapAlgorithm>(['A256KW', 'RSA-OAEP-256', 'ECDH-ES+A256KW'])('data keys under %s', (alg) => {
  let kek: KeySet;
  beforeAll(async () => {
    kek = await createKeySet('kek', alg, { now, rsaBits: 2048 });
  });

  it('wraps and unwraps to the same 256-bit key and id', async () => {
    const dataKey = generateDataKey();
    const wrapped = await wrapDataKey(kek, dataKey, service);
    const opened = await unwrapDataKey(kek, wrapped, service);
    expect(opened.id).toBe(dataKey.id);
    expect(opened.key.equals(dataKey.key)).toBe(true);
    expect(opened.key.symmetricKeySize).toBe(32);
  });

  it('puts kid, binding and data key id in the protected header', async () => {
    const dataKey = generateDataKey();
    const wrapped = await wrapDataKey(kek, dataKey, service);
    const header = JSON.parse(Buffer.from(wrapped.split('.')[0] ?? '', 'base64url').toString()) as Record<string, unknown>;
    expect(header).toMatchObject({
      alg,
      enc: 'A256GCM',
      kid: activeKey(kek).kid,
      typ: 'lockstep.dek.v1',
      'lockstep.dev/bind': { ns: 'payments', name: 'ledger' },
      'lockstep.dev/dek': dataKey.id,
      crit: ['lockstep.dev/bind'],
    });
    expect(inspectWrappedDataKey(wrapped)).toEqual({
      kid: activeKey(kek).kid,
      dataKeyId: dataKey.id,
      binding: { ns: 'payments', name: 'ledger' },
    });
  });

  it('wraps the same key differently each time (fresh CEK and IV)', async () => {
    const dataKey = generateDataKey();
    const [a, b] = await Promise.all([wrapDataKey(kek, dataKey, service), wrapDataKey(kek, dataKey, service)]);
    expect(a).not.toBe(b);
  });
});

describe('re-wrapping', () => {
  it('moves a data key to the active KEK and is a no-op once there', async () => {
    const kek = await createKeySet('kek', 'A256KW', { now });
    const dataKey = generateDataKey();
    const wrapped = await wrapDataKey(kek, dataKey, service);
    const later = new Date(now.getTime() + 1000);
    const { keySet: rotated } = applyRotation(kek, await generateKey('kek', 'A256KW', { now: later }), {
      retention: 1,
      usage: {},
      now: later,
    });

    const moved = await rewrapDataKey(rotated, wrapped, service);
    expect(moved.changed).toBe(true);
    expect(moved.fromKid).toBe(activeKey(kek).kid);
    expect(moved.toKid).toBe(activeKey(rotated).kid);
    expect(inspectWrappedDataKey(moved.wrapped).kid).toBe(activeKey(rotated).kid);
    const opened = await unwrapDataKey(rotated, moved.wrapped, service);
    expect(opened.key.equals(dataKey.key)).toBe(true);
    expect(opened.id).toBe(dataKey.id);

    const again = await rewrapDataKey(rotated, moved.wrapped, service);
    expect(again).toEqual({ wrapped: moved.wrapped, fromKid: moved.toKid, toKid: moved.toKid, changed: false });
  });

  it('moves a data key across a change of algorithm', async () => {
    const kek = await createKeySet('kek', 'A256KW', { now });
    const dataKey = generateDataKey();
    const wrapped = await wrapDataKey(kek, dataKey, service);
    const { keySet: rotated } = applyRotation(kek, await generateKey('kek', 'ECDH-ES+A256KW', { now }), {
      retention: 1,
      usage: {},
      now,
    });
    const moved = await rewrapDataKey(rotated, wrapped, service);
    expect(JSON.parse(Buffer.from(moved.wrapped.split('.')[0] ?? '', 'base64url').toString())).toMatchObject({ alg: 'ECDH-ES+A256KW' });
    expect((await unwrapDataKey(rotated, moved.wrapped, service)).key.equals(dataKey.key)).toBe(true);
  });
});

describe('input checks', () => {
  it('refuses a sealing key set and an invalid binding', async () => {
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now });
    const kek = await createKeySet('kek', 'A256KW', { now });
    await expect(wrapDataKey(seal, generateDataKey(), service)).rejects.toMatchObject({ reason: 'WrongPurpose' });
    await expect(wrapDataKey(kek, generateDataKey(), { namespace: 'Bad_NS', name: 'x' })).rejects.toMatchObject({
      reason: 'InvalidBinding',
    });
    await expect(wrapDataKey(kek, generateDataKey(), { namespace: 'ok', name: 'a/b' })).rejects.toMatchObject({
      reason: 'InvalidBinding',
    });
  });
});
