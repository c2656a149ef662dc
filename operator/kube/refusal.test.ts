import { describe, expect, it } from '@jest/globals';
import { ApiException, type KubernetesObject } from '@kubernetes/client-node';
import { apiErrorCode, describeApiError } from '../runtime/api-error.js';
import { asRefusal, refusable, WriteRefusedError } from './refusal.js';

const status = (code: number, reason: string, message: string): string =>
  JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });
const policy: KubernetesObject = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'api-allow', namespace: 'shop' } };
const quota = 'networkpolicies.networking.k8s.io "api-allow" is forbidden: exceeded quota: children, requested: count/networkpolicies.networking.k8s.io=1, used: count/networkpolicies.networking.k8s.io=2, limited: count/networkpolicies.networking.k8s.io=2';

describe('asRefusal', () => {
  it('names the object and keeps the server\'s reason: which quota, what it limits', () => {
    const refusal = asRefusal(new ApiException(403, 'Forbidden', status(403, 'Forbidden', quota), {}), policy);
    expect(refusal).toBeInstanceOf(WriteRefusedError);
    expect(refusal?.message).toBe(`the API server refused to write NetworkPolicy shop/api-allow (Forbidden): ${quota}`);
    expect(refusal?.target).toBe('NetworkPolicy shop/api-allow');
  });

  it('counts an invalid object (422) as refused, and names a cluster-scoped object without a namespace', () => {
    const sc = { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'enc' } };
    const refusal = asRefusal(new ApiException(422, 'Invalid', status(422, 'Invalid', 'StorageClass.storage.k8s.io "enc" is invalid'), {}), sc);
    expect(refusal?.message).toBe('the API server refused to write StorageClass enc (Invalid): StorageClass.storage.k8s.io "enc" is invalid');
  });

  it('leaves conflicts, outages and throttling to the retry they need', () => {
    for (const code of [409, 429, 500, 503]) {
      expect(asRefusal(new ApiException(code, 'x', status(code, 'Other', 'try again'), {}), policy)).toBeUndefined();
    }
    expect(asRefusal(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), policy)).toBeUndefined();
  });

  it('never carries the body that was sent (a Secret\'s data echoed back)', () => {
    const body = JSON.stringify({ kind: 'Secret', data: { key: 'c2VjcmV0LXNlY3JldA==' } });
    const refusal = asRefusal(new ApiException(422, 'Invalid', body, {}), { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'n' } });
    expect(refusal?.message).toBe('the API server refused to write Secret n/s (Invalid): HTTP 422');
  });

  it('is still read as the API error it was (code and reason for metrics and retries)', () => {
    const refusal = asRefusal(new ApiException(403, 'Forbidden', status(403, 'Forbidden', quota), {}), policy)!;
    expect(apiErrorCode(refusal)).toBe(403);
    expect(describeApiError(refusal).reason).toBe('Forbidden');
  });
});

describe('refusable', () => {
  it('rethrows a refusal as WriteRefusedError and anything else unchanged', async () => {
    await expect(refusable(policy, () => Promise.reject(new ApiException(403, 'Forbidden', status(403, 'Forbidden', quota), {})))).rejects.toBeInstanceOf(WriteRefusedError);
    const conflict = new ApiException(409, 'Conflict', status(409, 'Conflict', 'the object has been modified'), {});
    await expect(refusable(policy, () => Promise.reject(conflict))).rejects.toBe(conflict);
    await expect(refusable(policy, () => Promise.resolve(7))).resolves.toBe(7);
  });
});
