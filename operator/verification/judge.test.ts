import { describe, expect, it } from '@jest/globals';
import { judge, MAX_MESSAGE, type EndpointObservation, type Issued } from './judge.js';

const T0 = Date.parse('2026-11-30T00:00:00Z');
const GRACE = 300_000;
const issued: Issued = { serial: 'NEW', notBeforeMs: T0, notAfterMs: T0 + 86_400_000, spiffeId: 'spiffe://cluster.local/ns/shop/sa/api' };
const good = (address: string, over: Partial<EndpointObservation> = {}): EndpointObservation => ({
  endpoint: { address, port: 8443 },
  served: { serial: 'NEW', notAfterMs: issued.notAfterMs, uris: [issued.spiffeId] },
  clientCertRequired: true,
  ...over,
});
const stale = { serial: 'OLD', notAfterMs: T0 + 3_600_000, uris: [issued.spiffeId] };

describe('judge: what the endpoints serve against what was issued', () => {
  it('is Verified when every endpoint serves the issued certificate and passes every check', () => {
    const v = judge([good('10.0.0.1'), good('10.0.0.2')], issued, T0 + GRACE * 2, GRACE);
    expect(v).toMatchObject({ status: 'True', reason: 'Verified', drift: 0, stalePastGrace: false, servedNotAfterMs: issued.notAfterMs });
    expect(v.message).toContain('2 endpoints serve NEW');
  });

  it('reports a replaced certificate still served after the grace period as stale, naming the endpoint', () => {
    const v = judge([good('10.0.0.1'), good('10.0.0.2', { served: stale })], issued, T0 + GRACE, GRACE);
    expect(v).toMatchObject({ status: 'False', reason: 'ServingStaleCertificate', drift: 1, stalePastGrace: true, servedNotAfterMs: stale.notAfterMs });
    expect(v.violations.stale_certificate).toBe(1);
    expect(v.message).toBe('10.0.0.2:8443: serves OLD, replaced by NEW issued at 2026-11-30T00:00:00Z');
  });

  it('waits out the grace period (Secret propagation) before calling it stale', () => {
    const v = judge([good('10.0.0.2', { served: stale })], issued, T0 + GRACE - 1, GRACE);
    expect(v).toMatchObject({ status: 'Unknown', reason: 'RenewalPropagating', drift: 1, stalePastGrace: false });
    expect(v.violations.stale_certificate).toBe(0);
  });

  it('gives the same message on every probe of the same state (no status write per period)', () => {
    const a = judge([good('10.0.0.2', { served: stale })], issued, T0 + GRACE, GRACE);
    const b = judge([good('10.0.0.2', { served: stale })], issued, T0 + 10 * GRACE, GRACE);
    expect(b.message).toBe(a.message);
  });

  it.each([
    ['MTLSNotEnforced', 'mtls_not_enforced', { clientCertRequired: false }],
    ['PlaintextAccepted', 'plaintext_accepted', { plaintextAnswer: 'HTTP/1.1 200 OK' }],
    ['UntrustedCertificate', 'untrusted_certificate', { untrusted: ['certificate does not chain to the namespace trust bundle (SELF_SIGNED)'] }],
    ['UntrustedCertificate', 'untrusted_certificate', { served: { serial: 'NEW', notAfterMs: 0, uris: ['spiffe://cluster.local/ns/shop/sa/other'] } }],
    ['PolicyViolation', 'tls_policy', { policy: ['negotiated TLSv1.2, policy requires at least TLS1.3'] }],
    ['Unreachable', 'unreachable', { served: undefined, unreachable: 'no TLS session: connect ECONNREFUSED' }],
  ] as const)('reports %s (%s)', (reason, kind, over) => {
    const v = judge([good('10.0.0.1'), good('10.0.0.2', over as Partial<EndpointObservation>)], issued, T0 + GRACE, GRACE);
    expect(v).toMatchObject({ status: 'False', reason });
    expect(v.violations[kind]).toBe(1);
    expect(v.message.startsWith('10.0.0.2:8443: ')).toBe(true);
  });

  it('names the most severe problem when several are present, and lists them all', () => {
    const v = judge([good('10.0.0.1', { served: stale, clientCertRequired: false, plaintextAnswer: 'HTTP/1.1 200 OK' })], issued, T0 + GRACE, GRACE);
    expect(v.reason).toBe('PlaintextAccepted');
    expect(v.violations).toMatchObject({ plaintext_accepted: 1, mtls_not_enforced: 1, stale_certificate: 1 });
    expect(v.message).toMatch(/serves OLD.*no certificate.*plaintext/);
  });

  it('has nothing to verify without endpoints', () => {
    expect(judge([], issued, T0, GRACE)).toMatchObject({ status: 'Unknown', reason: 'NoEndpoints' });
  });

  it('bounds the message and counts the endpoints left out', () => {
    const many = Array.from({ length: 300 }, (_, i) => good(`10.0.${Math.floor(i / 250)}.${i % 250}`, { clientCertRequired: false }));
    const v = judge(many, issued, T0, GRACE);
    expect(v.message.length).toBeLessThanOrEqual(MAX_MESSAGE + 40);
    expect(v.message).toMatch(/and \d+ more endpoints$/);
    expect(v.violations.mtls_not_enforced).toBe(300);
  });

  it('writes IPv6 endpoints in brackets', () => {
    expect(judge([good('fd00::1', { clientCertRequired: false })], issued, T0, GRACE).message).toMatch(/^\[fd00::1\]:8443: /);
  });
});
