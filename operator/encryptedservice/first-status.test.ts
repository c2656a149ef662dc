import { describe, expect, it } from '@jest/globals';
import type { ConditionInput } from '../kube/conditions.js';
import { FIRST_STATUS_BACKLOG, FIRST_STATUS_GRACE_MS, firstStatusDelay, type FirstStatusInput } from './first-status.js';

const c = (type: string, status: 'True' | 'False', reason: string): ConditionInput => ({ type, status, reason: reason as ConditionInput['reason'], message: `${type} ${reason}` });
const pending = [
  c('TransitReady', 'False', 'CertificatePending'), c('AccessReady', 'True', 'NetworkPoliciesApplied'),
  c('AtRestReady', 'True', 'NotConfigured'), c('SecretsReady', 'True', 'NotConfigured'),
  c('Ready', 'False', 'CertificatePending'), c('Degraded', 'False', 'Reconciled'),
];
const now = new Date('2026-12-01T05:00:00Z');
const ago = (ms: number) => new Date(now.getTime() - ms);
const behind = { backlog: FIRST_STATUS_BACKLOG, waiting: false };
const delay = (input: Omit<FirstStatusInput, 'backlog' | 'waiting'> & Partial<FirstStatusInput>) => firstStatusDelay({ ...behind, ...input });

describe('firstStatusDelay', () => {
  it('without a backlog the first status is written at once (kstatus calls an object without status done)', () => {
    expect(delay({ status: undefined, conditions: pending, certificateCreatedAt: undefined, now, backlog: FIRST_STATUS_BACKLOG - 1 })).toBeUndefined();
    expect(delay({ status: undefined, conditions: pending, certificateCreatedAt: undefined, now, backlog: 0 })).toBeUndefined();
  });

  it('a service that chose to wait goes on waiting when the backlog is gone: its write would be wasted', () => {
    expect(delay({ status: undefined, conditions: pending, certificateCreatedAt: ago(10_000), now, backlog: 0, waiting: true })).toBe(FIRST_STATUS_GRACE_MS - 10_000);
  });

  it('a new service whose only unfinished part is issuance waits for the certificate, up to the grace, while the operator is behind', () => {
    expect(delay({ status: undefined, conditions: pending, certificateCreatedAt: undefined, now })).toBe(FIRST_STATUS_GRACE_MS);
    expect(delay({ status: {}, conditions: pending, certificateCreatedAt: ago(12_000), now })).toBe(FIRST_STATUS_GRACE_MS - 12_000);
  });

  it('reports once the grace is over: a slow or broken issuer is not hidden', () => {
    expect(delay({ status: undefined, conditions: pending, certificateCreatedAt: ago(FIRST_STATUS_GRACE_MS), now })).toBeUndefined();
    expect(delay({ status: undefined, conditions: pending, certificateCreatedAt: ago(5 * 60_000), now })).toBeUndefined();
  });

  it('never waits once a status was written: later changes are reported at once', () => {
    expect(delay({ status: { observedGeneration: 1 }, conditions: pending, certificateCreatedAt: undefined, now })).toBeUndefined();
    expect(delay({ status: { conditions: [{ type: 'Ready', status: 'False', reason: 'CertificatePending', message: '', lastTransitionTime: now.toISOString() }] }, conditions: pending, certificateCreatedAt: undefined, now })).toBeUndefined();
  });

  it('reports at once anything a user must act on, or anything else still unfinished', () => {
    const withOther = (x: ConditionInput) => pending.map((p) => (p.type === x.type ? x : p));
    for (const conditions of [
      withOther(c('AccessReady', 'False', 'PeerNotFound')),
      withOther(c('SecretsReady', 'False', 'DecryptFailed')),
      withOther(c('TransitReady', 'False', 'IssuerNotFound')),
      withOther(c('Degraded', 'True', 'PolicyViolation')),
      pending.filter((p) => p.type !== 'Degraded'),
    ]) {
      expect(delay({ status: undefined, conditions, certificateCreatedAt: undefined, now })).toBeUndefined();
    }
  });

  it('has nothing to wait for when the service is Ready on its first reconcile', () => {
    const ready = pending.map((p) => (p.type === 'TransitReady' || p.type === 'Ready' ? { ...p, status: 'True' as const, reason: 'Reconciled' as ConditionInput['reason'] } : p));
    expect(delay({ status: undefined, conditions: ready, certificateCreatedAt: undefined, now })).toBeUndefined();
  });
});
