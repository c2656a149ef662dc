import { describe, expect, it } from '@jest/globals';
import type { Condition } from '../api/v1alpha1/index.js';
import { transitionEvents } from './transition-events.js';

const c = (type: string, status: 'True' | 'False', reason: string, message = `${type} ${reason}`): Condition =>
  ({ type, status, reason, message, lastTransitionTime: '2026-11-30T00:00:00Z' }) as Condition;

const pending = [
  c('TransitReady', 'False', 'CertificatePending'), c('AccessReady', 'True', 'NetworkPoliciesApplied'),
  c('AtRestReady', 'True', 'NotConfigured'), c('SecretsReady', 'True', 'NotConfigured'),
  c('Ready', 'False', 'CertificatePending', 'TransitReady: waiting for cert-manager'), c('Degraded', 'False', 'Reconciled'),
];
const ready = pending.map((x) => (x.type === 'TransitReady' ? c('TransitReady', 'True', 'CertificateIssued')
  : x.type === 'Ready' ? c('Ready', 'True', 'Reconciled') : x));

describe('transitionEvents', () => {
  it('a new service waiting for its certificate: no Event until it turns Ready (progress, not a problem)', () => {
    expect(transitionEvents(undefined, pending)).toEqual([]);
    expect(transitionEvents([], pending)).toEqual([]);
  });
  it('a service that was Ready and waits again is news: one Warning, not one per condition', () => {
    expect(transitionEvents(ready, pending)).toEqual([
      { type: 'Warning', reason: 'CertificatePending', message: 'Ready: TransitReady: waiting for cert-manager' },
    ]);
  });
  it('issued: one Normal for Ready; nothing once nothing changes', () => {
    expect(transitionEvents(pending, ready)).toEqual([{ type: 'Normal', reason: 'Reconciled', message: 'Ready: Ready Reconciled' }]);
    expect(transitionEvents(ready, ready)).toEqual([]);
  });
  it('a problem with its own reason keeps its own Event; Degraded True is reported', () => {
    const broken = ready.map((x) => (x.type === 'AccessReady' ? c('AccessReady', 'False', 'PeerNotFound')
      : x.type === 'Ready' ? c('Ready', 'False', 'PeerNotFound') : x.type === 'Degraded' ? c('Degraded', 'True', 'PeerNotFound') : x));
    expect(transitionEvents(ready, broken)).toEqual([{ type: 'Warning', reason: 'PeerNotFound', message: 'Ready: Ready PeerNotFound' }]);
    const mixed = pending.map((x) => (x.type === 'AccessReady' ? c('AccessReady', 'False', 'PeerNotFound') : x.type === 'Degraded' ? c('Degraded', 'True', 'PeerNotFound') : x));
    // A first status with a problem is reported in full, even while the certificate is pending.
    expect(transitionEvents(undefined, mixed).map((e) => e.reason).sort()).toEqual(['CertificatePending', 'PeerNotFound', 'PeerNotFound']);
    expect(transitionEvents([c('Degraded', 'False', 'Reconciled')], [c('Degraded', 'True', 'PolicyViolation')]))
      .toEqual([{ type: 'Warning', reason: 'PolicyViolation', message: 'Degraded: Degraded PolicyViolation' }]);
  });
});
