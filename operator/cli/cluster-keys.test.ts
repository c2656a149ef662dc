import { describe, expect, it } from '@jest/globals';
import type { V1Secret } from '@kubernetes/client-node';
import type { EncryptedService, KeyPolicy } from '../api/v1alpha1/index.js';
import { ciphertextsUnderTest, policyKeyState } from './cluster-keys.js';

const store = (namespace: string, name: string, policy: string, extra: Partial<V1Secret['metadata']> = {}): V1Secret => ({
  metadata: {
    namespace, name, ...extra,
    labels: { 'lockstep.dev/component': 'secrets', 'lockstep.dev/key-policy': policy, 'lockstep.dev/key-policy-namespace': 'sec', 'lockstep.dev/encrypted-service': name.replace(/-envelope$/, '') },
  },
  data: { 'dek.jwe': Buffer.from('a.b.c.d.e').toString('base64'), 'envelopes.json': Buffer.from('{"db":{"password":"lsenc1.x"}}').toString('base64') },
});

describe('policyKeyState', () => {
  it('takes the policy spec, the key sets and only this policy\'s stores, without per-incarnation annotations', () => {
    const policy: KeyPolicy = {
      metadata: { name: 'vault', namespace: 'sec', uid: 'u1', labels: { team: 'a' }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', note: 'x' } },
      spec: { rotation: { period: '24h' } },
    };
    const keySecret: V1Secret = { metadata: { annotations: { 'lockstep.dev/audit-pending': '[]', 'lockstep.dev/key-policy-uid': 'u1', 'lockstep.dev/rotated-for': 'r1' } }, data: { 'kek.json': 'a', 'seal.json': 'b' } };
    const state = policyKeyState('sec', 'vault', policy, keySecret, [store('shop', 'api-envelope', 'vault'), store('shop', 'web-envelope', 'other')]);
    expect(state.policy).toEqual({ labels: { team: 'a' }, annotations: { note: 'x' }, spec: { rotation: { period: '24h' } } });
    expect(state.keySecret).toEqual({ annotations: { 'lockstep.dev/rotated-for': 'r1' }, data: { 'kek.json': 'a', 'seal.json': 'b' } });
    expect(state.envelopeStores.map((s) => `${s.namespace}/${s.name}`)).toEqual(['shop/api-envelope']);
    expect(policyKeyState('sec', 'vault', undefined, keySecret, []).policy).toBeUndefined();
  });
});

describe('ciphertextsUnderTest', () => {
  it('lists each store with its service and policy, each sealed value with its target, and stores that do not parse', () => {
    const es: EncryptedService = {
      metadata: { name: 'api', namespace: 'shop' },
      spec: {
        workload: { selector: { matchLabels: { app: 'api' } }, serviceAccountName: 'api' },
        ports: [{ name: 'https', port: 8443 }],
        keyPolicyRef: { name: 'vault', namespace: 'sec' },
        secrets: { sealed: [{ name: 'creds', encryptedData: { user: 'j1', pass: 'j2' } }] },
      },
    };
    const broken = { ...store('shop', 'bad-envelope', 'vault'), data: { 'envelopes.json': Buffer.from('not json').toString('base64') } };
    const out = ciphertextsUnderTest([store('shop', 'api-envelope', 'vault'), broken], [es]);
    expect(out.stores).toEqual([{
      namespace: 'shop', name: 'api-envelope', service: 'api', policy: 'sec/vault', wrapped: 'a.b.c.d.e', previousWrapped: undefined, envelopes: { db: { password: 'lsenc1.x' } },
    }]);
    expect(out.sealed.map((s) => `${s.policy} ${s.namespace}/${s.service} ${s.secret}[${s.key}]`)).toEqual(['sec/vault shop/api creds[user]', 'sec/vault shop/api creds[pass]']);
    expect(out.unreadable).toEqual(['shop/bad-envelope']);
  });
});
