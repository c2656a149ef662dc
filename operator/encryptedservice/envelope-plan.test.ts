import { describe, expect, it } from '@jest/globals';
import { generateDataKey } from '../crypto/datakey.js';
import { decryptValue, encryptValue } from '../crypto/envelope.js';
import { DecryptError } from '../crypto/errors.js';
import { planEnvelope, type EnvelopeCrypto } from './envelope-plan.js';
import { envelopeStoreData, readEnvelopeStore } from './envelope-store.js';

const dataKey = generateDataKey();
const binding = (key: string) => ({ namespace: 'shop', name: 'session', key });
const crypto: EnvelopeCrypto = {
  encrypt: (key, plaintext) => encryptValue(dataKey, plaintext, binding(key)),
  decrypt: (key, envelope) => decryptValue(dataKey, envelope, binding(key)),
};
const b = (s: string) => Buffer.from(s);

describe('planEnvelope', () => {
  it('stores every declared value of a new Secret, and only those', () => {
    const plan = planEnvelope({ name: 'session', keys: ['signing'] }, { signing: b('s3cr3t-1'), other: b('x') }, {}, crypto);
    expect(Object.keys(plan.envelopes)).toEqual(['signing']);
    expect(plan.stored).toEqual(['signing']);
    expect(crypto.decrypt('signing', plan.envelopes['signing'] ?? '').toString()).toBe('s3cr3t-1');
    expect(plan.envelopes['signing']).not.toContain('s3cr3t');
    expect(plan.restore).toEqual({});
  });

  it('keeps an envelope whose value did not change (no rewrite churn), replaces one that did', () => {
    const stored = { a: crypto.encrypt('a', b('one')), c: crypto.encrypt('c', b('three')) };
    const plan = planEnvelope({ name: 'session' }, { a: b('one'), c: b('THREE') }, stored, crypto);
    expect(plan.envelopes['a']).toBe(stored.a);
    expect(plan.envelopes['c']).not.toBe(stored.c);
    expect(plan.stored).toEqual(['c']);
  });

  it('says when a declared Secret is neither in the cluster nor in the store (nothing protected yet)', () => {
    expect(planEnvelope({ name: 'session' }, undefined, {}, crypto)).toMatchObject({ absent: true, missing: [] });
    expect(planEnvelope({ name: 'session' }, {}, {}, crypto).absent).toBe(false);
    expect(planEnvelope({ name: 'session' }, undefined, { a: crypto.encrypt('a', b('one')) }, crypto).absent).toBe(false);
  });

  it('restores values missing from the Secret, or the whole Secret, from the store', () => {
    const stored = { a: crypto.encrypt('a', b('one')), c: crypto.encrypt('c', b('three')) };
    const gone = planEnvelope({ name: 'session' }, undefined, stored, crypto);
    expect(Object.fromEntries(Object.entries(gone.restore).map(([k, v]) => [k, v.toString()]))).toEqual({ a: 'one', c: 'three' });
    const partial = planEnvelope({ name: 'session', keys: ['a', 'c'] }, { a: b('one') }, stored, crypto);
    expect(Object.keys(partial.restore)).toEqual(['c']);
  });

  it('reports declared keys found nowhere', () => {
    expect(planEnvelope({ name: 'session', keys: ['a', 'b'] }, { a: b('one') }, {}, crypto).missing).toEqual(['b']);
  });

  it('refuses a stored envelope that does not open (tampered store, or copied from another Secret)', () => {
    const moved = encryptValue(dataKey, 'one', { namespace: 'shop', name: 'elsewhere', key: 'a' });
    expect(() => planEnvelope({ name: 'session' }, undefined, { a: moved }, crypto)).toThrow(DecryptError);
  });
});

describe('envelope store', () => {
  it('round-trips the wrapped data key and envelopes through Secret data', () => {
    const data = envelopeStoreData({ wrappedDataKey: 'a.b.c.d.e', envelopes: { s: { k: 'lsenc1.x' } } });
    expect(readEnvelopeStore({ data })).toEqual({ wrappedDataKey: 'a.b.c.d.e', envelopes: { s: { k: 'lsenc1.x' } } });
    expect(readEnvelopeStore(undefined)).toEqual({ wrappedDataKey: undefined, envelopes: {} });
  });

  it('refuses an unreadable store instead of treating it as empty', () => {
    expect(() => readEnvelopeStore({ metadata: { name: 'x' }, data: { 'envelopes.json': Buffer.from('{not json').toString('base64') } })).toThrow('not JSON');
  });
});
