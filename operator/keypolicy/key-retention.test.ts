import { describe, expect, it } from '@jest/globals';
import { generateDataKey, wrapDataKey } from '../crypto/datakey.js';
import { createKeySet, publicJwks } from '../crypto/keyset.js';
import { sealValue } from '../crypto/seal.js';
import {
  ANNOTATION_KEY_POLICY_UID, KEYS_IN_USE_FINALIZER, deletionBlockedMessage, describeHolders, inUse, keyHolders, keySecretMetadata,
} from './key-retention.js';

const t0 = new Date('2026-11-01T00:00:00Z');
const sets = async () => ({ kek: await createKeySet('kek', 'A256KW', { now: t0 }), seal: await createKeySet('seal', 'ECDH-ES+A256KW', { now: t0 }) });

describe('keyHolders', () => {
  it('counts stores and sealed values under the live keys, and ignores what another policy or nothing holds', async () => {
    const mine = await sets();
    const other = await sets();
    const wrapped = await wrapDataKey(mine.kek, generateDataKey(), { namespace: 'a', name: 'one' });
    const foreign = await wrapDataKey(other.kek, generateDataKey(), { namespace: 'a', name: 'two' });
    const sealed = await sealValue(publicJwks(mine.seal), 'v', { namespace: 'a', name: 's', key: 'k' });
    const holders = keyHolders(mine, [
      { id: 'a/one-envelope', wrapped: [wrapped] },
      { id: 'a/two-envelope', wrapped: [foreign] },
      { id: 'a/broken-envelope', wrapped: ['not a jwe'] },
    ], [{ id: 'a/api', sealed: [sealed, sealed] }, { id: 'a/none', sealed: [] }]);
    expect(holders).toEqual({
      stores: ['a/one-envelope'], services: ['a/api'], sealedValues: 2,
      kids: [mine.kek.keys[0]?.kid, mine.seal.keys[0]?.kid].sort(),
    });
    expect(inUse(holders)).toBe(true);
    expect(inUse(keyHolders(mine, [{ id: 'a/two-envelope', wrapped: [foreign] }], []))).toBe(false);
  });

  it('counts every ciphertext naming a kid when the key sets cannot be read', async () => {
    const other = await sets();
    const foreign = await wrapDataKey(other.kek, generateDataKey(), { namespace: 'a', name: 'two' });
    expect(keyHolders(undefined, [{ id: 'a/two-envelope', wrapped: [foreign, 'garbage'] }], []).stores).toEqual(['a/two-envelope']);
  });
});

describe('deletion messages', () => {
  it('give counts, names (bounded) and kids, the way to force, and never a value', () => {
    const holders = { stores: ['n/a', 'n/b', 'n/c', 'n/d', 'n/e', 'n/f', 'n/g'], services: ['n/api'], sealedValues: 1, kids: ['kek-1', 'seal-1'] };
    expect(describeHolders(holders)).toBe('7 envelope stores (n/a, n/b, n/c, n/d, n/e, and 2 more) and 1 sealed value in 1 EncryptedService (n/api)');
    const message = deletionBlockedMessage('n', 'vault', holders, 'Delete');
    expect(message).toContain('keys kek-1, seal-1');
    expect(message).toContain('its keys would be deleted');
    expect(message).toContain(`kubectl -n n patch keypolicy vault --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]'`);
    expect(deletionBlockedMessage('n', 'vault', holders, 'Retain')).toContain('its keys are kept');
  });
});

describe('keySecretMetadata', () => {
  const owner = { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', name: 'vault', uid: 'old', controller: true, blockOwnerDeletion: true };
  const other = { apiVersion: 'example.com/v1', kind: 'Thing', name: 'x', uid: 'x' };

  it('drops the KeyPolicy owner reference of a Secret written before keys outlived their policy', () => {
    const change = keySecretMetadata({ name: 'vault-keys', ownerReferences: [owner, other], annotations: { a: 'b' }, resourceVersion: '7' }, 'old', false);
    expect(change?.metadata.ownerReferences).toEqual([other]);
    expect(change?.metadata.annotations).toEqual({ a: 'b', [ANNOTATION_KEY_POLICY_UID]: 'old' });
    expect(change?.metadata.resourceVersion).toBe('7');
    expect(change?.adoptedFrom).toBeUndefined();
  });

  it('reports a re-created policy taking over the keys, by annotation or by the legacy owner', () => {
    expect(keySecretMetadata({ annotations: { [ANNOTATION_KEY_POLICY_UID]: 'old' } }, 'new', false)?.adoptedFrom).toBe('old');
    expect(keySecretMetadata({ ownerReferences: [owner] }, 'new', false)?.adoptedFrom).toBe('old');
    expect(keySecretMetadata({}, 'new', false)?.adoptedFrom).toBeUndefined();
  });

  it('holds the in-use finalizer exactly while keys are used, and never adds one during deletion', () => {
    const base = { annotations: { [ANNOTATION_KEY_POLICY_UID]: 'u' }, finalizers: ['other'] };
    expect(keySecretMetadata(base, 'u', true)?.metadata.finalizers).toEqual(['other', KEYS_IN_USE_FINALIZER]);
    expect(keySecretMetadata({ ...base, finalizers: ['other', KEYS_IN_USE_FINALIZER] }, 'u', true)).toBeUndefined();
    expect(keySecretMetadata({ ...base, finalizers: ['other', KEYS_IN_USE_FINALIZER] }, 'u', false)?.metadata.finalizers).toEqual(['other']);
    expect(keySecretMetadata(base, 'u', false)).toBeUndefined();
    const deleting = { ...base, deletionTimestamp: new Date() };
    expect(keySecretMetadata(deleting, 'u', true)).toBeUndefined();
    expect(keySecretMetadata({ ...deleting, finalizers: [KEYS_IN_USE_FINALIZER] }, 'u', true)).toBeUndefined();
  });
});
