import { describe, expect, it } from '@jest/globals';
import { caState, resourceState } from './resource-state.js';

const object = (generation: number, status: object) => ({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name: 'api', namespace: 'shop', generation }, status });
const ready = (observedGeneration: number, status = 'True') => ({ type: 'Ready', status, reason: 'R', message: 'm', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration });

describe('resourceState', () => {
  it('is ready when Ready is True for the current generation, and reports the certificate notAfter', () => {
    expect(resourceState(object(2, { conditions: [ready(2)], certificate: { notAfter: '2026-12-01T00:00:00Z' } }))).toEqual({
      kind: 'EncryptedService', namespace: 'shop', name: 'api', ready: true, certificateNotAfterMs: Date.parse('2026-12-01T00:00:00Z'),
    });
  });
  it('is not ready when Ready is True for an older generation, or False, or missing', () => {
    expect(resourceState(object(3, { conditions: [ready(2)] })).ready).toBe(false);
    expect(resourceState(object(2, { conditions: [ready(2, 'False')] })).ready).toBe(false);
    expect(resourceState(object(1, {})).ready).toBe(false);
  });
  it('reports no expiry before a certificate is issued', () => {
    expect(resourceState(object(1, { certificate: {} }))).not.toHaveProperty('certificateNotAfterMs');
    expect(resourceState(object(1, { certificate: {} }))).not.toHaveProperty('certificateRenewalMs');
  });
  it('reports when the certificate is due for renewal', () => {
    const state = resourceState(object(1, { certificate: { notAfter: '2026-12-01T00:00:00Z', renewalTime: '2026-11-30T16:00:00Z' } }));
    expect(state.certificateRenewalMs).toBe(Date.parse('2026-11-30T16:00:00Z'));
  });
  it('reports a KeyPolicy\'s rotation period (the default when unset) and a RotationSchedule\'s phase', () => {
    const policy = (rotation?: object) => ({ kind: 'KeyPolicy', metadata: { name: 'p', namespace: 'shop', generation: 1 }, spec: rotation ? { rotation } : {} });
    expect(resourceState(policy({ period: '1h30m' })).rotationPeriodSeconds).toBe(5400);
    expect(resourceState(policy()).rotationPeriodSeconds).toBe(720 * 3600);
    expect(resourceState(object(1, {}))).not.toHaveProperty('rotationPeriodSeconds');
    const schedule = (status: object) => ({ kind: 'RotationSchedule', metadata: { name: 'r', namespace: 'shop', generation: 1 }, status });
    expect(resourceState(schedule({ phase: 'RolledBack' })).phase).toBe('RolledBack');
    expect(resourceState(schedule({})).phase).toBe('Idle');
    expect(resourceState(object(1, {}))).not.toHaveProperty('phase');
  });
});

describe('caState', () => {
  const labels = { 'app.kubernetes.io/managed-by': 'lockstep', 'lockstep.dev/key-policy': 'p', 'lockstep.dev/key-policy-namespace': 'shop' };
  const cert = (spec: object, status: object, l: Record<string, string> = labels) => ({ kind: 'Certificate', metadata: { name: 'root', namespace: 'cert-manager', labels: l }, spec, status });
  it('reports an issued CA the operator made, with the KeyPolicy it belongs to', () => {
    expect(caState(cert({ isCA: true }, { notAfter: '2027-01-01T00:00:00Z' }))).toEqual({
      namespace: 'cert-manager', certificate: 'root', keypolicy: 'shop/p', notAfterMs: Date.parse('2027-01-01T00:00:00Z'),
    });
    expect(caState(cert({ isCA: true }, { notAfter: '2027-01-01T00:00:00Z' }, { 'app.kubernetes.io/managed-by': 'lockstep' }))?.keypolicy).toBe('');
  });
  it('ignores leaves, certificates not issued yet and certificates Lockstep did not make', () => {
    expect(caState(cert({}, { notAfter: '2027-01-01T00:00:00Z' }))).toBeUndefined();
    expect(caState(cert({ isCA: true }, {}))).toBeUndefined();
    expect(caState(cert({ isCA: true }, { notAfter: '2027-01-01T00:00:00Z' }, {}))).toBeUndefined();
  });
});
