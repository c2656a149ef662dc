import { describe, expect, it } from '@jest/globals';
import type { EncryptedService } from '../api/v1alpha1/index.js';
import { inputsChanged } from './controller.js';

const base = {
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService',
  metadata: { name: 'web', namespace: 'shop', generation: 3, labels: { tier: 'front' }, annotations: { note: 'a' }, finalizers: ['lockstep.dev/cleanup'] },
  spec: { workload: { selector: {} }, ports: [{ name: 'https', port: 443 }], keyPolicyRef: { name: 'p' } },
  status: { observedGeneration: 3, conditions: [] },
} as unknown as EncryptedService;

const withMeta = (meta: Partial<EncryptedService['metadata']>, status?: object): EncryptedService =>
  ({ ...base, metadata: { ...base.metadata, ...meta }, ...(status ? { status } : {}) }) as EncryptedService;

describe('inputsChanged: which updates of a service wake its own reconcile', () => {
  it('not a status write (its own or the verifier\'s), nor the finalizer it just added', () => {
    expect(inputsChanged(withMeta({ resourceVersion: '9' }, { observedGeneration: 3, conditions: [{ type: 'Verified' }] }), base)).toBe(false);
    expect(inputsChanged(base, withMeta({ finalizers: [] }))).toBe(false);
  });
  it('a spec change, labels, annotations, deletion, or the finalizer removed by someone else', () => {
    expect(inputsChanged(withMeta({ generation: 4 }), base)).toBe(true);
    expect(inputsChanged(withMeta({ labels: { tier: 'back' } }), base)).toBe(true);
    expect(inputsChanged(withMeta({ annotations: {} }), base)).toBe(true);
    expect(inputsChanged(withMeta({ deletionTimestamp: new Date() }), base)).toBe(true);
    expect(inputsChanged(withMeta({ finalizers: [] }), base)).toBe(true);
  });
});
