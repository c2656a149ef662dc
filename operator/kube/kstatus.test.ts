import { describe, expect, it } from '@jest/globals';
import type { Reason } from '../api/v1alpha1/index.js';
import { setConditions, type ConditionInput } from './conditions.js';
import { kstatusConditions, withKstatus } from './kstatus.js';

const t0 = new Date('2026-01-01T00:00:00Z');
const t1 = new Date('2026-01-01T01:00:00Z');
const c = (type: string, status: 'True' | 'False' | 'Unknown', reason: Reason, message = `${type} ${reason}`): ConditionInput => ({ type, status, reason, message });
const of = (...inputs: ConditionInput[]) => setConditions(undefined, inputs, 1, t0);
const types = (inputs: ConditionInput[]) => inputs.map((k) => `${k.type}=${k.status} ${k.reason}`);

describe('kstatusConditions', () => {
  it('says nothing of a Ready object: neither Reconciling nor Stalled is present', () => {
    expect(kstatusConditions(of(c('Ready', 'True', 'Reconciled'), c('Degraded', 'False', 'Reconciled')))).toEqual([]);
  });
  it('is Reconciling while Ready waits for something that comes by itself (cert-manager issuing)', () => {
    expect(types(kstatusConditions(of(c('Ready', 'False', 'CertificatePending'), c('Degraded', 'False', 'Reconciled'))))).toEqual(['Reconciling=True CertificatePending']);
  });
  it('is Reconciling, not Stalled, when Degraded names a reference that another object of the same apply brings', () => {
    for (const reason of ['KeyPolicyNotFound', 'PeerNotFound', 'IssuerNotFound', 'ReconcileError'] as const) {
      expect(types(kstatusConditions(of(c('Ready', 'False', reason), c('Degraded', 'True', reason))))).toEqual([`Reconciling=True ${reason}`]);
    }
  });
  it('is Stalled, with the Degraded reason and message, when the operator refuses what the spec asks', () => {
    const stalled = kstatusConditions(of(c('Ready', 'False', 'IssuerNotAllowed'), c('Degraded', 'True', 'IssuerNotAllowed', 'the KeyPolicy does not list Issuer x')));
    expect(stalled).toEqual([{ type: 'Stalled', status: 'True', reason: 'IssuerNotAllowed', message: 'the KeyPolicy does not list Issuer x' }]);
  });
  it('is Reconciling while a rotation runs, even when Ready is True', () => {
    expect(types(kstatusConditions(of(c('Ready', 'True', 'RotationScheduled'), c('Rotating', 'True', 'RotationInProgress'), c('Degraded', 'False', 'Reconciled')))))
      .toEqual(['Reconciling=True RotationInProgress']);
  });
  it('is not Stalled when Degraded is True but Ready is too (a warning, not a stop)', () => {
    expect(kstatusConditions(of(c('Ready', 'True', 'Reconciled'), c('Degraded', 'True', 'PolicyViolation')))).toEqual([]);
  });
  it('is Reconciling before any Ready condition exists', () => {
    expect(types(kstatusConditions([]))).toEqual(['Reconciling=True Progressing']);
  });
});

describe('withKstatus', () => {
  it('adds Reconciling while converging and removes it once Ready, keeping the other conditions in order', () => {
    const converging = withKstatus(of(c('Ready', 'False', 'CertificatePending'), c('Degraded', 'False', 'Reconciled')), 1, t0);
    expect(converging.map((k) => k.type)).toEqual(['Ready', 'Degraded', 'Reconciling']);
    const ready = withKstatus(setConditions(converging, [c('Ready', 'True', 'Reconciled')], 1, t1), 1, t1);
    expect(ready.map((k) => k.type)).toEqual(['Ready', 'Degraded']);
  });
  it('keeps lastTransitionTime while Reconciling stays True across writes', () => {
    const first = withKstatus(of(c('Ready', 'False', 'CertificatePending')), 1, t0);
    const again = withKstatus(setConditions(first, [c('Ready', 'False', 'PeerNotFound')], 2, t1), 2, t1);
    const reconciling = again.find((k) => k.type === 'Reconciling');
    expect(reconciling).toMatchObject({ reason: 'PeerNotFound', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 2 });
  });
  it('swaps Reconciling for Stalled when the cause turns into a refusal', () => {
    const first = withKstatus(of(c('Ready', 'False', 'CertificatePending'), c('Degraded', 'False', 'Reconciled')), 1, t0);
    const refused = withKstatus(setConditions(first, [c('Ready', 'False', 'DNSNameNotAllowed'), c('Degraded', 'True', 'DNSNameNotAllowed')], 2, t1), 2, t1);
    expect(refused.filter((k) => k.type === 'Reconciling' || k.type === 'Stalled').map((k) => `${k.type} ${k.lastTransitionTime}`)).toEqual(['Stalled 2026-01-01T01:00:00Z']);
  });
  it('reads a reason this version does not write (an older operator wrote it) as a generic one, keeping the message', () => {
    const old = [{ type: 'Ready', status: 'False' as const, reason: 'SomethingOld', message: 'old words', lastTransitionTime: '2026-01-01T00:00:00Z' },
      { type: 'Degraded', status: 'True' as const, reason: 'SomethingOld', message: 'old words', lastTransitionTime: '2026-01-01T00:00:00Z' }];
    expect(kstatusConditions(old)).toEqual([{ type: 'Stalled', status: 'True', reason: 'ReconcileError', message: 'old words' }]);
    expect(kstatusConditions(old.slice(0, 1))).toEqual([{ type: 'Reconciling', status: 'True', reason: 'Progressing', message: 'old words' }]);
  });
});
