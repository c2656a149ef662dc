import { inspect } from 'node:util';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { encryptCompact } from './compact-jwe.js';
import { generateDataKey, unwrapDataKey, wrapDataKey, type DataKey } from './datakey.js';
import { DECRYPT_FAILURE_REASONS, DecryptError, type DecryptFailureReason } from './errors.js';
import { activeKey, createKeySet, generateKey, publicJwks, type KeySet } from './keyset.js';
import { applyRotation } from './rotation.js';
import { openSealed, sealValue } from './seal.js';

// Every way a wrapped data key or sealed value can be bad, each mapped to its reason code, and
// a sweep over all the resulting errors proving none of them carries key material or plaintext.

const now = new Date('2026-11-15T12:00:00Z');
const service = { namespace: 'payments', name: 'ledger' };
const target = { namespace: 'payments', name: 'ledger-db', key: 'password' };
const PLAINTEXT = 'plaintext-never-in-errors-7f3a';

type Mutation = (compact: string) => string;

function editHeader(edit: (header: Record<string, unknown>) => void): Mutation {
  return (compact) => {
    const parts = compact.split('.');
    const header = JSON.parse(Buffer.from(parts[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    edit(header);
    parts[0] = Buffer.from(JSON.stringify(header)).toString('base64url');
    return parts.join('.');
  };
}

function flip(part: number): Mutation {
  return (compact) => {
    const parts = compact.split('.');
    const bytes = Buffer.from(parts[part] ?? '', 'base64url');
    bytes[0] = (bytes[0] ?? 0) ^ 0x01;
    parts[part] = bytes.toString('base64url');
    return parts.join('.');
  };
}

function replacePart(part: number, value: string): Mutation {
  return (compact) => {
    const parts = compact.split('.');
    parts[part] = value;
    return parts.join('.');
  };
}

const collected: DecryptError[] = [];

async function failure(action: Promise<unknown>): Promise<DecryptError> {
  try {
    await action;
  } catch (error) {
    if (error instanceof DecryptError) {
      collected.push(error);
      return error;
    }
    throw error;
  }
  throw new Error('expected a DecryptError');
}

const shapeCases: [string, Mutation, DecryptFailureReason][] = [
  ['four parts', (c) => c.split('.').slice(0, 4).join('.'), 'Malformed'],
  ['non-base64url characters', replacePart(3, 'not*base64'), 'Malformed'],
  ['a header that is not JSON', replacePart(0, Buffer.from('{"alg":').toString('base64url')), 'Malformed'],
  ['a header that is a JSON array', replacePart(0, Buffer.from('[1]').toString('base64url')), 'Malformed'],
  ['no kid', editHeader((h) => delete h['kid']), 'Malformed'],
  ['a kid that is not a kid', editHeader((h) => (h['kid'] = 'has spaces and / slashes')), 'Malformed'],
  ['no crit', editHeader((h) => delete h['crit']), 'Malformed'],
  ['an extra crit member', editHeader((h) => (h['crit'] = ['lockstep.dev/bind', 'exp'])), 'Malformed'],
  ['no binding', editHeader((h) => delete h['lockstep.dev/bind']), 'Malformed'],
  ['no typ', editHeader((h) => delete h['typ']), 'Malformed'],
  ['an empty encrypted key', replacePart(1, ''), 'Malformed'],
  ['a short IV', replacePart(2, 'AAAA'), 'Malformed'],
  ['a short tag', replacePart(4, 'AAAA'), 'Malformed'],
  ['an oversized input', (c) => c + 'A'.repeat(3 * 1024 * 1024), 'Malformed'],
  ['a changed binding in the header', editHeader((h) => (h['lockstep.dev/bind'] = { ns: 'attacker', name: 'ledger', key: 'password' })), 'Tampered'],
  ['a changed typ in the header', editHeader((h) => (h['typ'] = 'lockstep.other.v1')), 'Tampered'],
  ['a changed encrypted key', flip(1), 'Tampered'],
  ['a changed IV', flip(2), 'Tampered'],
  ['a changed ciphertext', flip(3), 'Tampered'],
  ['a changed tag', flip(4), 'Tampered'],
  ['an unknown kid', editHeader((h) => (h['kid'] = 'kek-20200101t000000z-00000000')), 'UnknownKey'],
  ['alg "dir"', editHeader((h) => (h['alg'] = 'dir')), 'WrongAlgorithm'],
  ['alg RSA1_5', editHeader((h) => (h['alg'] = 'RSA1_5')), 'WrongAlgorithm'],
  ['enc A128GCM', editHeader((h) => (h['enc'] = 'A128GCM')), 'WrongAlgorithm'],
  ['compression', editHeader((h) => (h['zip'] = 'DEF')), 'WrongAlgorithm'],
];

describe.each(['A256KW', 'ECDH-ES+A256KW'] as const)('wrapped data keys under %s', (alg) => {
  let kek: KeySet;
  let dataKey: DataKey;
  let wrapped: string;
  beforeAll(async () => {
    kek = await createKeySet('kek', alg, { now });
    dataKey = generateDataKey();
    wrapped = await wrapDataKey(kek, dataKey, service);
  });

  it.each(shapeCases)('reports %s', async (_case, mutate, reason) => {
    expect((await failure(unwrapDataKey(kek, mutate(wrapped), service))).reason).toBe(reason);
  });

  it('reports a wrapped key copied onto another service as WrongBinding', async () => {
    for (const elsewhere of [{ ...service, namespace: 'attacker' }, { ...service, name: 'other' }]) {
      expect((await failure(unwrapDataKey(kek, wrapped, elsewhere))).reason).toBe('WrongBinding');
    }
  });

  it('reports a kid pointed at another key of the same set as Tampered', async () => {
    const { keySet } = applyRotation(kek, await generateKey('kek', alg, { now }), { retention: 1, usage: {}, now });
    const relabelled = editHeader((h) => (h['kid'] = activeKey(keySet).kid))(wrapped);
    expect((await failure(unwrapDataKey(keySet, relabelled, service))).reason).toBe('Tampered');
  });

  it('reports the header naming another allowed algorithm than the key as WrongAlgorithm', async () => {
    const other = alg === 'A256KW' ? 'RSA-OAEP-256' : 'A256KW';
    const relabelled = editHeader((h) => (h['alg'] = other))(wrapped);
    expect((await failure(unwrapDataKey(kek, relabelled, service))).reason).toBe('WrongAlgorithm');
  });

  it('reports a value made for a key it never had as UnknownKey with what to do, even when its header is not Lockstep\'s', async () => {
    // The shape of a value sealed elsewhere by a plain JOSE tool: no typ, binding or crit.
    const header = Buffer.from(JSON.stringify({ alg: 'RSA-OAEP-256', kid: 'shop-2026-11-01', enc: 'A256GCM' })).toString('base64url');
    const foreign = [header, 'AAAA', Buffer.alloc(12).toString('base64url'), 'AAAA', Buffer.alloc(16).toString('base64url')].join('.');
    const error = await failure(unwrapDataKey(kek, foreign, service));
    expect(error.reason).toBe('UnknownKey');
    expect(error.message).toContain('made for key shop-2026-11-01, which this KeyPolicy');
    expect(error.message).toContain('encrypt it again for this policy');
  });

  it('reports a key from another key set as UnknownKey', async () => {
    const stranger = await createKeySet('kek', alg, { now });
    expect((await failure(unwrapDataKey(stranger, wrapped, service))).reason).toBe('UnknownKey');
  });

  it('reports a retired key as RetiredKey', async () => {
    const later = new Date(now.getTime() + 60_000);
    const { keySet, retired } = applyRotation(kek, await generateKey('kek', alg, { now: later }), {
      retention: 0,
      usage: { [activeKey(kek).kid]: 0 },
      now: later,
    });
    expect(retired).toEqual([activeKey(kek).kid]);
    const error = await failure(unwrapDataKey(keySet, wrapped, service));
    expect(error.reason).toBe('RetiredKey');
    expect(error.kid).toBe(activeKey(kek).kid);
  });

  it('reports a sealed-value JWE under the KEK as WrongBinding (wrong purpose)', async () => {
    const foreign = await encryptCompact(activeKey(kek), {
      typ: 'lockstep.sealed.v1',
      binding: { ns: service.namespace, name: service.name },
      payload: Buffer.alloc(32),
    });
    expect((await failure(unwrapDataKey(kek, foreign, service))).reason).toBe('WrongBinding');
  });
});

describe('sealed values', () => {
  let seal: KeySet;
  let sealed: string;
  beforeAll(async () => {
    seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now });
    sealed = await sealValue(publicJwks(seal), PLAINTEXT, target);
  });

  it.each(shapeCases)('reports %s', async (_case, mutate, reason) => {
    expect((await failure(openSealed(seal, mutate(sealed), target))).reason).toBe(reason);
  });

  it('reports a binding forged by someone with the public key as WrongBinding, not success', async () => {
    // The attacker can seal anything to the public key, but only for a binding of their choosing,
    // which the operator compares against the Secret it is materialising.
    const forged = await sealValue(publicJwks(seal), 'attacker value', { ...target, namespace: 'attacker' });
    expect((await failure(openSealed(seal, forged, target))).reason).toBe('WrongBinding');
  });

  it('reports a wrapped data key presented as a sealed value as UnknownKey', async () => {
    const kek = await createKeySet('kek', 'A256KW', { now });
    const wrapped = await wrapDataKey(kek, generateDataKey(), service);
    expect((await failure(openSealed(seal, wrapped, target))).reason).toBe('UnknownKey');
  });

  it('reports a retired sealing key as RetiredKey', async () => {
    const { keySet } = applyRotation(seal, await generateKey('seal', 'ECDH-ES+A256KW', { now }), {
      retention: 0,
      usage: { [activeKey(seal).kid]: 0 },
      now,
    });
    expect((await failure(openSealed(keySet, sealed, target))).reason).toBe('RetiredKey');
  });
});

describe('error hygiene', () => {
  it('covered every reason code', () => {
    const seen = new Set(collected.map((error) => error.reason));
    for (const reason of DECRYPT_FAILURE_REASONS) expect(seen).toContain(reason);
  });

  it('never carries key material, plaintext or ciphertext in message, toString, JSON, stack or inspect', async () => {
    // Rebuild the secrets the failures above were made with, and look for them in every rendering
    // of every collected error. (Keys differ per describe block, so also check the shapes: no
    // long base64url runs that are not kids or hashes.)
    const kek = await createKeySet('kek', 'A256KW', { now });
    const dataKey = generateDataKey();
    const wrapped = await wrapDataKey(kek, dataKey, service);
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now });
    const sealed = await sealValue(publicJwks(seal), PLAINTEXT, target);
    const fresh = [
      await failure(unwrapDataKey(kek, wrapped, { ...service, name: 'x' })),
      await failure(unwrapDataKey(kek, flip(3)(wrapped), service)),
      await failure(openSealed(seal, sealed, { ...target, key: 'x' })),
      await failure(openSealed(seal, flip(4)(sealed), target)),
    ];
    const secrets = [
      PLAINTEXT,
      Buffer.from(PLAINTEXT).toString('base64'),
      Buffer.from(PLAINTEXT).toString('base64url'),
      dataKey.key.export().toString('base64url'),
      dataKey.key.export().toString('base64'),
      dataKey.key.export().toString('hex'),
      kek.keys[0]?.['k'] ?? 'unset',
      seal.keys[0]?.['d'] ?? 'unset',
      ...wrapped.split('.').slice(1),
      ...sealed.split('.').slice(1),
    ];
    for (const error of [...collected, ...fresh]) {
      const renderings = [error.message, String(error), JSON.stringify(error), error.stack ?? '', inspect(error)];
      for (const rendering of renderings) {
        for (const secret of secrets) expect(rendering).not.toContain(secret);
        // Nothing that looks like a key or ciphertext segment: kids and ids are short.
        expect(rendering.replace(/at .*\n/g, '')).not.toMatch(/[A-Za-z0-9_-]{40,}/);
      }
      expect(Object.keys(JSON.parse(JSON.stringify(error)) as object).sort()).toEqual(
        error.kid === undefined ? ['message', 'name', 'reason'] : ['kid', 'message', 'name', 'reason'],
      );
    }
  });
});
