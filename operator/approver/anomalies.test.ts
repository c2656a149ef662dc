import { describe, expect, it } from '@jest/globals';
import { ALERTS } from '../../manifests-app/monitoring.js';
import { anomaliesOf, BURST_LIMIT, BURST_WINDOW_MS, describeOutside } from './anomalies.js';
import { csrDer, parseCsr, type ParsedCsr } from './csr.js';
import type { Decision, ServiceRef } from './decide.js';
import { buildCsr, type CsrOptions } from './test-csr.js';

const API = { namespace: 'shop', name: 'api' };
const API_NAMES = ['api', 'api.shop', 'api.shop.svc', 'api.shop.svc.cluster.local', 'spiffe://cluster.local/ns/shop/sa/api'];
const namesOf = (ref: { namespace: string; name: string }) => (ref.name === 'api' ? API_NAMES : undefined);
const csr = (options: CsrOptions): ParsedCsr => parseCsr(csrDer(buildCsr(options)));
const denied = (claims: string[], claimed: ServiceRef[]): Decision =>
  ({ verdict: 'deny', reason: 'NotFromDeclaredService', message: 'm', claims, claimed });

describe('anomaliesOf', () => {
  it('counts an approved request for its service and finds nothing anomalous in it', () => {
    expect(anomaliesOf({ verdict: 'approve', reason: 'MatchesEncryptedService', message: 'm', service: API }, undefined, namesOf))
      .toEqual({ identities: [API], unmatched: false, outside: [] });
    expect(anomaliesOf({ verdict: 'approve', reason: 'NoLockstepIdentity', message: 'm' }, undefined, namesOf).identities).toEqual([]);
    expect(anomaliesOf({ verdict: 'ignore' }, undefined, namesOf)).toEqual({ identities: [], unmatched: false, outside: [] });
  });

  it('flags a claim that matches no declared service as unmatched, and a denial claiming nothing not at all', () => {
    const ghost = csr({ uris: ['spiffe://cluster.local/ns/shop/sa/ghost'] });
    expect(anomaliesOf(denied(['SPIFFE ID spiffe://cluster.local/ns/shop/sa/ghost'], []), ghost, namesOf))
      .toEqual({ identities: [], unmatched: true, outside: [] });
    expect(anomaliesOf(denied([], []), undefined, namesOf).unmatched).toBe(false);
  });

  it('counts SANs outside the claimed service\'s names by form, and none for the exact names', () => {
    const extra = csr({ dnsNames: ['API.shop.svc', 'evil.example.com'], uris: [API_NAMES[4]!], ipAddresses: ['10.0.0.1'] });
    const found = anomaliesOf(denied(['SPIFFE ID …'], [API]), extra, namesOf);
    expect(found.identities).toEqual([API]);
    expect(found.outside).toEqual([{ service: API, counts: { DNS: 1, URI: 0, IP: 1, email: 0 } }]);
    expect(describeOutside(found.outside[0]!.counts)).toBe('2 (DNS 1, IP 1)');
    expect(JSON.stringify(found)).not.toContain('evil');

    const exact = csr({ dnsNames: API_NAMES.slice(0, 4), uris: [API_NAMES[4]!] });
    expect(anomaliesOf(denied(['SPIFFE ID …'], [API]), exact, namesOf).outside).toEqual([]);
    // A service that gets no certificate has no names to be outside of.
    expect(anomaliesOf(denied(['x'], [{ namespace: 'shop', name: 'unissued' }]), extra, namesOf).outside).toEqual([]);
  });
});

describe('the request-rate alert', () => {
  it('uses the burst limit and window the approver\'s Events use', () => {
    const rule = ALERTS.find((a) => a.alert === 'LockstepCertificateRequestBurst');
    expect(rule?.expr).toContain(`[${BURST_WINDOW_MS / 60_000}m])) > ${BURST_LIMIT}`);
  });
});
