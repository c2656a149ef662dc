import { describe, expect, it } from '@jest/globals';
import { resourceState } from './resource-state.js';

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
  });
});
