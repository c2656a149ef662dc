import { describe, expect, it } from '@jest/globals';
import type { EncryptedService } from '../api/v1alpha1/index.js';
import { changesPolicyUsage } from './controller.js';

const service = (over: { generation?: number; keyIds?: string[]; deleting?: boolean; ready?: string } = {}): EncryptedService => ({
  apiVersion: 'lockstep.dev/v1alpha1',
  kind: 'EncryptedService',
  metadata: {
    name: 'api', namespace: 'shop', uid: 'u1', generation: over.generation ?? 1,
    ...(over.deleting ? { deletionTimestamp: '2026-11-30T00:00:00Z' } : {}),
  },
  spec: { workload: { selector: { matchLabels: { app: 'api' } }, serviceAccountName: 'api' }, ports: [{ name: 'https', port: 8443 }], keyPolicyRef: { name: 'kp' } },
  status: {
    ...(over.keyIds ? { keyIds: over.keyIds } : {}),
    conditions: [{ type: 'Ready', status: over.ready ?? 'False', reason: 'x', message: 'y', lastTransitionTime: '2026-11-30T00:00:00Z' }],
  },
} as EncryptedService);

describe('changesPolicyUsage', () => {
  it('ignores status writes that do not touch the kids a service recorded', () => {
    expect(changesPolicyUsage(service({ ready: 'True' }), service())).toBe(false);
    expect(changesPolicyUsage(service({ keyIds: ['k1'], ready: 'True' }), service({ keyIds: ['k1'] }))).toBe(false);
  });
  it('wakes the policy for a spec change, a deletion, and changed kids', () => {
    expect(changesPolicyUsage(service({ generation: 2 }), service())).toBe(true);
    expect(changesPolicyUsage(service({ deleting: true }), service())).toBe(true);
    expect(changesPolicyUsage(service({ keyIds: ['k1', 'k2'] }), service({ keyIds: ['k1'] }))).toBe(true);
    expect(changesPolicyUsage(service({ keyIds: [] }), service({ keyIds: ['k1'] }))).toBe(true);
  });
});
