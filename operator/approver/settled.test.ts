import { describe, expect, it } from '@jest/globals';
import { settled } from './controller.js';
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
