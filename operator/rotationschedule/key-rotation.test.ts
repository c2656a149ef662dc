import { describe, expect, it } from '@jest/globals';
import type { V1Secret } from '@kubernetes/client-node';
import { effectiveKeyWrap } from '../api/v1alpha1/index.js';
import { generateDataKey, wrapDataKey } from '../crypto/datakey.js';
import { encryptValue } from '../crypto/envelope.js';
import { activeKey, createKeySet, publicJwks } from '../crypto/keyset.js';
import { sealValue } from '../crypto/seal.js';
import { envelopeStoreData } from '../encryptedservice/envelope-store.js';
import { rotateBoth, type KeySets } from '../keypolicy/key-plan.js';
import { verifyDataKey, verifyServiceKeys } from './key-rotation.js';

const binding = { namespace: 'shop', name: 'api' };
const conf = { namespace: 'shop', name: 'api-conf', key: 'token' };

async function rotated(): Promise<{ before: KeySets; after: KeySets }> {
  const now = new Date('2026-11-01T00:00:00Z');
  const before = { kek: await createKeySet('kek', 'A256KW', { now }), seal: await createKeySet('seal', 'ECDH-ES+A256KW', { now }) };
  const after = (await rotateBoth(before, effectiveKeyWrap({ algorithm: 'A256KW' }), { retention: 2, retireAfterMs: 3_600_000 }, {}, new Date(now.getTime() + 60_000))).keySets;
  return { before, after };
}

function store(wrapped: string, token: string, extra: { previous?: string; annotations?: Record<string, string> } = {}): V1Secret {
  return {
    metadata: { name: 'api-envelope', annotations: extra.annotations ?? {} },
    data: {
      ...envelopeStoreData({ wrappedDataKey: wrapped, envelopes: { 'api-conf': { token } } }),
      ...(extra.previous ? { 'dek-previous.jwe': Buffer.from(extra.previous).toString('base64') } : {}),
    },
  };
}

describe('verifyServiceKeys', () => {
  it('passes when the data key is under the new KEK and old data and sealed values still open', async () => {
    const { before, after } = await rotated();
    const dek = generateDataKey();
    const sealed = await sealValue(publicJwks(before.seal), 'old-sealed', { namespace: 'shop', name: 'db', key: 'password' });
    const problems = await verifyServiceKeys({
      sets: after, expectedKid: activeKey(after.kek).kid, ...binding,
      store: store(await wrapDataKey(after.kek, dek, binding), encryptValue(dek, 'v', conf)),
      sealed: [{ name: 'db', encryptedData: { password: sealed } }],
    });
    expect(problems).toEqual([]);
  });

  it('reports a data key not re-wrapped yet, a damaged envelope and a sealed value that no longer opens, never their values', async () => {
    const { before, after } = await rotated();
    const dek = generateDataKey();
    const kid = activeKey(after.kek).kid;
    expect(await verifyServiceKeys({ sets: after, expectedKid: kid, ...binding, store: store(await wrapDataKey(before.kek, dek, binding), encryptValue(dek, 'v', conf)), sealed: [] }))
      .toEqual([`data key in api-envelope is still wrapped under ${activeKey(before.kek).kid}, not ${kid}`]);

    const good = encryptValue(dek, 'secret-value', conf);
    const damaged = good.slice(0, -2) + (good.at(-2) === 'A' ? 'B' : 'A') + good.slice(-1);
    const other = { kek: after.kek, seal: await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() }) };
    const foreign = await sealValue(publicJwks(other.seal), 'x', { namespace: 'shop', name: 'db', key: 'password' });
    const problems = await verifyServiceKeys({
      sets: after, expectedKid: kid, ...binding, store: store(await wrapDataKey(after.kek, dek, binding), damaged),
      sealed: [{ name: 'db', encryptedData: { password: foreign } }],
    });
    expect(problems).toEqual(['envelope api-conf[token] does not open (Tampered)', 'sealed value db[password] does not open (UnknownKey)']);
    expect(problems.join(' ')).not.toContain('secret-value');
  });
});

describe('verifyDataKey', () => {
  it('passes when every envelope is under the new data key, matches its Secret, and the replaced key is kept', async () => {
    const { after } = await rotated();
    const old = generateDataKey();
    const fresh = generateDataKey();
    const app = new Map([['api-conf', { data: { token: Buffer.from('v').toString('base64') } } as V1Secret]]);
    const input = {
      sets: after, ...binding, value: 'r1', appSecrets: app,
      store: store(await wrapDataKey(after.kek, fresh, binding), encryptValue(fresh, 'v', conf), {
        previous: await wrapDataKey(after.kek, old, binding), annotations: { 'lockstep.dev/data-key-rotated-for': 'r1' },
      }),
    };
    expect(await verifyDataKey(input)).toEqual([]);
    expect(await verifyDataKey({ ...input, value: 'r2' })).toEqual(['data key in api-envelope not rotated yet']);
    const changed = new Map([['api-conf', { data: { token: Buffer.from('w').toString('base64') } } as V1Secret]]);
    expect(await verifyDataKey({ ...input, appSecrets: changed })).toEqual(['envelope api-conf[token] does not match Secret api-conf']);
  });

  it('reports envelopes left under the old data key and a missing rollback key', async () => {
    const { after } = await rotated();
    const old = generateDataKey();
    const fresh = generateDataKey();
    const problems = await verifyDataKey({
      sets: after, ...binding, value: 'r1', appSecrets: new Map(),
      store: store(await wrapDataKey(after.kek, fresh, binding), encryptValue(old, 'v', conf), { annotations: { 'lockstep.dev/data-key-rotated-for': 'r1' } }),
    });
    expect(problems).toEqual(['api-envelope keeps no previous data key to roll back to', 'envelope api-conf[token] is not under the new data key']);
  });
});
