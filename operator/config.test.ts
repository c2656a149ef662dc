import { describe, expect, it } from '@jest/globals';
import { configFromEnv, OPERATOR_POD_LABELS } from './config.js';

describe('configFromEnv: the probe source admitted by generated NetworkPolicies', () => {
  it('defaults to the installed operator pods in the operator namespace', () => {
    expect(configFromEnv({ LOCKSTEP_NAMESPACE: 'ops' }).probeSource).toEqual({ namespace: 'ops', podLabels: { ...OPERATOR_POD_LABELS } });
  });

  it('takes other labels', () => {
    expect(configFromEnv({ LOCKSTEP_PROBE_POD_LABELS: 'app=lockstep, tier=ops' }).probeSource)
      .toEqual({ namespace: 'lockstep-system', podLabels: { app: 'lockstep', tier: 'ops' } });
  });

  it('is off on request', () => {
    expect(configFromEnv({ LOCKSTEP_PROBE_POD_LABELS: 'off' }).probeSource).toBeUndefined();
  });

  it('rejects a malformed value with the variable name', () => {
    expect(() => configFromEnv({ LOCKSTEP_PROBE_POD_LABELS: '=x' })).toThrow(/LOCKSTEP_PROBE_POD_LABELS/);
  });
});
