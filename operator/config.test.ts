import { describe, expect, it } from '@jest/globals';
import { configFromEnv, OPERATOR_POD_LABELS, VERIFICATION_DEFAULTS } from './config.js';

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

describe('configFromEnv: continuous verification', () => {
  it('is on by default, every few minutes, with a grace longer than Secret propagation', () => {
    const v = configFromEnv({}).verification;
    expect(v).toEqual(VERIFICATION_DEFAULTS);
    expect(v!.graceMs).toBeGreaterThan(2 * 60_000);
  });

  it('takes durations and counts', () => {
    expect(configFromEnv({ LOCKSTEP_VERIFY_PERIOD: '3s', LOCKSTEP_VERIFY_GRACE: '10s', LOCKSTEP_VERIFY_CONCURRENCY: '2', LOCKSTEP_VERIFY_MAX_RESTARTS: '1' }).verification)
      .toEqual({ periodMs: 3_000, graceMs: 10_000, concurrency: 2, maxRestartsPerPeriod: 1 });
  });

  it('is off on request', () => {
    expect(configFromEnv({ LOCKSTEP_VERIFY_PERIOD: 'off' }).verification).toBeUndefined();
  });

  it('rejects malformed values with the variable name', () => {
    expect(() => configFromEnv({ LOCKSTEP_VERIFY_GRACE: '5 minutes' })).toThrow(/LOCKSTEP_VERIFY_GRACE/);
    expect(() => configFromEnv({ LOCKSTEP_VERIFY_PERIOD: '0s' })).toThrow(/LOCKSTEP_VERIFY_PERIOD/);
    expect(() => configFromEnv({ LOCKSTEP_VERIFY_CONCURRENCY: '0' })).toThrow(/LOCKSTEP_VERIFY_CONCURRENCY/);
  });
});

describe('LOCKSTEP_SERVICE_WORKERS', () => {
  it('is unset by default (the operator uses SERVICE_WORKERS_DEFAULT), a whole number when set', () => {
    expect(configFromEnv({}).serviceWorkers).toBeUndefined();
    expect(configFromEnv({ LOCKSTEP_SERVICE_WORKERS: '3' }).serviceWorkers).toBe(3);
  });
  it('rejects what is not a worker count, naming the variable', () => {
    for (const bad of ['0', '2.5', 'many', '65']) expect(() => configFromEnv({ LOCKSTEP_SERVICE_WORKERS: bad })).toThrow(/LOCKSTEP_SERVICE_WORKERS/);
  });
});

describe('LOCKSTEP_KUBE_REQUEST_TIMEOUT', () => {
  it('is unset by default (the clients use REQUEST_TIMEOUT_DEFAULT_MS), a duration when set, and names the variable when malformed', () => {
    expect(configFromEnv({}).kubeRequestTimeoutMs).toBeUndefined();
    expect(configFromEnv({ LOCKSTEP_KUBE_REQUEST_TIMEOUT: '45s' }).kubeRequestTimeoutMs).toBe(45_000);
    for (const bad of ['0s', '30', 'soon']) expect(() => configFromEnv({ LOCKSTEP_KUBE_REQUEST_TIMEOUT: bad })).toThrow(/LOCKSTEP_KUBE_REQUEST_TIMEOUT/);
  });
});

describe('LOCKSTEP_APPROVER', () => {
  it('decides Lockstep identities by default, everything or nothing on request', () => {
    expect(configFromEnv({}).approver).toBe('identities');
    expect(configFromEnv({ LOCKSTEP_APPROVER: 'all' }).approver).toBe('all');
    expect(configFromEnv({ LOCKSTEP_APPROVER: 'off' }).approver).toBe('off');
  });

  it('refuses anything else', () => {
    expect(() => configFromEnv({ LOCKSTEP_APPROVER: 'yes' })).toThrow('LOCKSTEP_APPROVER: not identities, all or off: yes');
  });
});

describe('configFromEnv: audit rate limit', () => {
  it('is unset by default (the trail uses its default), takes COUNT/DURATION, and names the variable when malformed', () => {
    expect(configFromEnv({}).auditRateLimit).toBeUndefined();
    expect(configFromEnv({ LOCKSTEP_AUDIT_RATE_LIMIT: '50/5m' }).auditRateLimit).toEqual({ maxPerWindow: 50, windowMs: 300_000 });
    for (const bad of ['50', '0/1m', 'x/1m', '5/soon', '5/100ms']) {
      expect(() => configFromEnv({ LOCKSTEP_AUDIT_RATE_LIMIT: bad })).toThrow(/LOCKSTEP_AUDIT_RATE_LIMIT/);
    }
  });
});
