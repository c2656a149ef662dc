import { describe, expect, it } from '@jest/globals';
import type { V1Secret } from '@kubernetes/client-node';
import { LABEL_COMPONENT, LABEL_ENCRYPTED_SERVICE, LABEL_KEY_POLICY } from '../api/v1alpha1/index.js';
import { generateDataKey, wrapDataKey } from '../crypto/datakey.js';
import { activeKey, createKeySet, type KeySet } from '../crypto/keyset.js';
import { LABEL_KEY_POLICY_NAMESPACE } from '../keypolicy/names.js';
import { envelopeStoreData } from './envelope-store.js';
import { ANNOTATION_STORE_INTEGRITY, tagFor, verifyEnvelopeStore, type StoreExpectation } from './store-integrity.js';

const expected: StoreExpectation = { namespace: 'shop', service: 'api', policy: { namespace: 'sec', name: 'default' }, serviceUid: 'uid-1' };

async function store(kek: KeySet, tag = true): Promise<V1Secret> {
  const wrapped = await wrapDataKey(kek, generateDataKey(), { namespace: 'shop', name: 'api' });
  const data = envelopeStoreData({ wrappedDataKey: wrapped, envelopes: { db: { password: 'lsenc1.x' } } });
  return {
    metadata: {
      name: 'api-envelope', namespace: 'shop',
      labels: { [LABEL_COMPONENT]: 'secrets', [LABEL_ENCRYPTED_SERVICE]: 'api', [LABEL_KEY_POLICY]: 'default', [LABEL_KEY_POLICY_NAMESPACE]: 'sec' },
      annotations: tag ? { [ANNOTATION_STORE_INTEGRITY]: tagFor(activeKey(kek), expected, data) } : {},
    },
    data,
  };
}

describe('verifyEnvelopeStore', () => {
  it('trusts the store the operator tagged, and names its kid', async () => {
    const kek = await createKeySet('kek', 'A256KW', { now: new Date() });
    expect(verifyEnvelopeStore(await store(kek), expected, kek)).toMatchObject({ trusted: true, kid: activeKey(kek).kid });
  });

  it('refuses a store whose data changed after tagging', async () => {
    const kek = await createKeySet('kek', 'A256KW', { now: new Date() });
    const s = await store(kek);
    s.data = { ...s.data, 'envelopes.json': Buffer.from('{}').toString('base64') };
    expect(verifyEnvelopeStore(s, expected, kek)).toMatchObject({ trusted: false, reason: 'IntegrityMismatch' });
  });

  it('refuses a tag made under another policy\'s KEK, or for another service or policy', async () => {
    const kek = await createKeySet('kek', 'A256KW', { now: new Date() });
    const other = await createKeySet('kek', 'A256KW', { now: new Date() });
    const s = await store(kek);
    s.metadata!.annotations![ANNOTATION_STORE_INTEGRITY] = tagFor(activeKey(other), expected, s.data ?? {});
    expect(verifyEnvelopeStore(s, expected, kek)).toMatchObject({ reason: 'IntegrityMismatch' });
    s.metadata!.annotations![ANNOTATION_STORE_INTEGRITY] = tagFor(activeKey(kek), { ...expected, policy: { namespace: 'sec', name: 'other' } }, s.data ?? {});
    expect(verifyEnvelopeStore(s, expected, kek)).toMatchObject({ reason: 'IntegrityMismatch' });
  });

  it('refuses a Secret at another name, without the labels, or owned by another object', async () => {
    const kek = await createKeySet('kek', 'A256KW', { now: new Date() });
    const renamed = await store(kek);
    renamed.metadata!.name = 'copy-envelope';
    expect(verifyEnvelopeStore(renamed, expected, kek)).toMatchObject({ reason: 'NotOperatorWritten' });
    const unlabelled = await store(kek);
    delete unlabelled.metadata!.labels![LABEL_ENCRYPTED_SERVICE];
    expect(verifyEnvelopeStore(unlabelled, expected, kek)).toMatchObject({ reason: 'NotOperatorWritten' });
    const owned = await store(kek);
    owned.metadata!.ownerReferences = [{ apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', name: 'api', uid: 'uid-2' }];
    expect(verifyEnvelopeStore(owned, expected, kek)).toMatchObject({ reason: 'NotOperatorWritten' });
  });

  it('names a kid the policy does not hold as UnknownKey, and leaves an untagged store to the data key check', async () => {
    const kek = await createKeySet('kek', 'A256KW', { now: new Date() });
    const foreign = await createKeySet('kek', 'A256KW', { now: new Date() });
    expect(verifyEnvelopeStore(await store(foreign), expected, kek)).toMatchObject({ reason: 'UnknownKey' });
    expect(verifyEnvelopeStore(await store(kek, false), expected, kek)).toMatchObject({ trusted: false, legacy: true, kid: activeKey(kek).kid });
  });
});
