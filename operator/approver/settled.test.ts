import { describe, expect, it } from '@jest/globals';
import { approverView, settled } from './controller.js';
import type { CertificateRequestObject } from './decide.js';

const withConditions = (...conditions: Array<{ type: string; status: string; reason?: string }>): CertificateRequestObject =>
  ({ metadata: {}, spec: {}, status: { conditions } });

describe('settled: requests the approver never writes to again', () => {
  it('is true once anyone approved or denied, or cert-manager finished', () => {
    expect(settled(withConditions({ type: 'Approved', status: 'True' }))).toBe(true);
    expect(settled(withConditions({ type: 'Denied', status: 'True' }))).toBe(true);
    expect(settled(withConditions({ type: 'Ready', status: 'True', reason: 'Issued' }))).toBe(true);
    expect(settled(withConditions({ type: 'Ready', status: 'False', reason: 'Failed' }))).toBe(true);
  });

  it('is false for a pending request', () => {
    expect(settled(withConditions())).toBe(false);
    expect(settled(withConditions({ type: 'Ready', status: 'False', reason: 'Pending' }))).toBe(false);
    expect(settled({ metadata: {}, spec: {} })).toBe(false);
  });
});

describe('approverView: what the cache keeps of a CertificateRequest', () => {
  const request = (conditions: Array<{ type: string; status: string; reason?: string }>) => ({
    apiVersion: 'cert-manager.io/v1', kind: 'CertificateRequest',
    metadata: { name: 'api-1', namespace: 'shop', uid: 'u1', resourceVersion: '7', annotations: { 'cert-manager.io/certificate-name': 'api' }, ownerReferences: [] },
    spec: { request: 'LS0tLS1CRUdJTi...', issuerRef: { name: 'ca', kind: 'ClusterIssuer' }, usages: ['server auth'], duration: '24h' },
    status: { conditions, certificate: 'LS0tLS1CRUdJTiBDRVJU...', ca: 'LS0tLS1CRUdJTiBDQQ...' },
  });

  it('keeps everything a pending request is judged and written by, without the issued certificate and CA', () => {
    const pending = request([]);
    expect(approverView(pending)).toEqual({ ...pending, status: { conditions: [] } });
  });

  it('drops the CSR once the request is settled: it is never judged again', () => {
    const issued = request([{ type: 'Approved', status: 'True' }, { type: 'Ready', status: 'True', reason: 'Issued' }]);
    const { request: _csr, ...spec } = issued.spec;
    expect(approverView(issued)).toEqual({ ...issued, spec, status: { conditions: issued.status.conditions } });
    expect(settled(approverView(issued) as CertificateRequestObject)).toBe(true);
  });
});
