import { describe, expect, it } from '@jest/globals';
import { parseDuration } from '../api/v1alpha1/index.js';
import { issuanceFailedSince, renewalTime } from './leaf-certificates.js';

const H = 3_600_000;

describe('renewalTime (cert-manager RenewalTime)', () => {
  it('renews a third of the lifetime before expiry by default, or as renewBefore / renewBeforePercentage say', () => {
    expect(renewalTime(0, 24 * H, {}, parseDuration)).toBe(16 * H);
    expect(renewalTime(0, 24 * H, { renewBefore: '2h' }, parseDuration)).toBe(22 * H);
    expect(renewalTime(0, 24 * H, { renewBeforePercentage: 25 }, parseDuration)).toBe(18 * H);
  });

  it('falls back to a third when renewBefore is not shorter than the lifetime', () => {
    expect(renewalTime(0, 24 * H, { renewBefore: '48h' }, parseDuration)).toBe(16 * H);
  });
});

describe('issuanceFailedSince', () => {
  const cert = (lastFailureTime?: string) => ({
    status: { ...(lastFailureTime ? { lastFailureTime } : {}), conditions: [{ type: 'Issuing', status: 'False', message: 'issuer not ready' }] },
  });

  it("reports cert-manager's message for a failure at or after the trigger, nothing for an older one", () => {
    const since = Date.parse('2026-11-30T10:00:00Z');
    expect(issuanceFailedSince(cert('2026-11-30T10:00:05Z'), since)).toBe('issuer not ready');
    expect(issuanceFailedSince(cert('2026-11-30T09:00:00Z'), since)).toBeUndefined();
    expect(issuanceFailedSince(cert(), since)).toBeUndefined();
  });
});
