import { describe, expect, it } from '@jest/globals';
import type { V1Secret } from '@kubernetes/client-node';
import type { EncryptedService, RotationSchedule } from '../api/v1alpha1/index.js';
import { TEST_LEAF } from '../rotationschedule/test-certificates.js';
import type { Verdict } from './judge.js';
import { decideRestart, jittered, nextProbeAfter, probeTarget, RestartBudget, rotationOwner, type RestartInput } from './plan.js';

const es = (restart?: object): EncryptedService => ({
  metadata: { name: 'api', namespace: 'shop', generation: 1 },
  spec: {
    workload: { selector: {}, serviceAccountName: 'api', ...(restart ? { restart } : {}) },
    ports: [{ name: 'https', port: 8443 }], keyPolicyRef: { name: 'p' },
  },
} as EncryptedService);

const verdict = (over: Partial<Verdict> = {}): Verdict => ({
  status: 'False', reason: 'ServingStaleCertificate', message: '', drift: 1, stalePastGrace: true,
  violations: { stale_certificate: 1, untrusted_certificate: 0, mtls_not_enforced: 0, plaintext_accepted: 0, tls_policy: 0, unreachable: 0 },
  ...over,
});
const noReload = { kind: 'Deployment', name: 'api', hotReload: false, maxUnavailable: 2 };
const input = (over: Partial<RestartInput> = {}): RestartInput => ({
  es: es(noReload), verdict: verdict(), issuedSerial: 'NEW', record: undefined, rotation: undefined, resent: false, ...over,
});

describe('decideRestart: a workload still serving a replaced certificate', () => {
  it('is restarted with its maxUnavailable when it cannot hot-reload', () => {
    expect(decideRestart(input())).toEqual({ action: 'restart', serial: 'NEW', target: { kind: 'Deployment', name: 'api', hotReload: false, maxUnavailable: 2 } });
  });

  it('is left alone before the grace period ends, or when nothing is stale', () => {
    expect(decideRestart(input({ verdict: verdict({ stalePastGrace: false }) })).action).toBe('none');
  });

  it('is left alone when it hot-reloads (the default) or names no workload', () => {
    expect(decideRestart(input({ es: es({ kind: 'Deployment', name: 'api' }) })).action).toBe('none');
    expect(decideRestart(input({ es: es() })).action).toBe('none');
  });

  it('is left to an open rotation that has it as a target', () => {
    expect(decideRestart(input({ rotation: 'nightly' }))).toMatchObject({ action: 'none', why: expect.stringContaining('nightly') });
  });

  it('is restarted once per issued serial: a recorded restart is only re-sent, once per process, with the same value', () => {
    const record = { restartedForSerial: 'NEW', restartedAt: '2026-11-30T00:05:00.123Z' };
    expect(decideRestart(input({ record }))).toEqual({ action: 'resend', target: expect.objectContaining({ name: 'api' }), value: record.restartedAt });
    expect(decideRestart(input({ record, resent: true })).action).toBe('none');
    // A later renewal is a new serial: one more restart.
    expect(decideRestart(input({ record: { ...record, restartedForSerial: 'OLDER' } }))).toMatchObject({ action: 'restart', serial: 'NEW' });
  });
});

describe('RestartBudget: restarts across services roll in batches', () => {
  it('allows max restarts per window and says when the next one may start', () => {
    const b = new RestartBudget(2, 60_000);
    expect([b.take(0), b.take(1_000), b.take(2_000)]).toEqual([true, true, false]);
    expect(b.waitMs(2_000)).toBe(58_000);
    expect(b.take(60_000)).toBe(true);
    expect(b.take(60_500)).toBe(false);
  });
});

describe('probe timing', () => {
  it('jitters the period by at most a tenth either way', () => {
    expect(jittered(100_000, 0)).toBe(90_000);
    expect(jittered(100_000, 0.5)).toBe(100_000);
    expect(jittered(100_000, 0.999999)).toBe(110_000);
  });

  it('looks again as the grace period ends while a renewal propagates, not a whole period later', () => {
    const issued = { serial: 'NEW', notBeforeMs: 0, notAfterMs: 1e9, spiffeId: '' };
    expect(nextProbeAfter(verdict({ stalePastGrace: false, drift: 1 }), issued, 100_000, 600_000, 300_000, 0.5)).toBe(201_000);
    expect(nextProbeAfter(verdict({ stalePastGrace: false, drift: 0 }), issued, 100_000, 600_000, 300_000, 0.5)).toBe(600_000);
  });
});

describe('rotationOwner', () => {
  const rs = (phase: string, names: string[]): RotationSchedule => ({
    metadata: { name: `rs-${phase}`, namespace: 'shop' },
    spec: {},
    status: { phase, startedAt: '2026-11-30T00:00:00Z', targets: names.map((name) => ({ namespace: 'shop', name })) },
  } as unknown as RotationSchedule);

  it('is the schedule whose open rotation targets the service', () => {
    expect(rotationOwner([rs('Completed', ['api']), rs('Verifying', ['api'])], 'shop', 'api')).toBe('rs-Verifying');
    expect(rotationOwner([rs('Rotating', ['web'])], 'shop', 'api')).toBeUndefined();
    expect(rotationOwner([rs('RolledBack', ['api'])], 'shop', 'api')).toBeUndefined();
  });
});

describe('probeTarget', () => {
  const secret = (crt?: string): V1Secret => ({ metadata: { name: 'api-tls' }, data: crt ? { 'tls.crt': Buffer.from(crt).toString('base64'), 'tls.key': Buffer.from('k').toString('base64') } : {} });

  it('waits for an issued certificate and a trust bundle', () => {
    expect(probeTarget(es(), undefined, TEST_LEAF, undefined)).toEqual({ pending: expect.stringContaining('no certificate') });
    expect(probeTarget(es(), secret(TEST_LEAF), undefined, undefined)).toEqual({ pending: expect.stringContaining('trust bundle') });
  });

  it('expects the issued serial, the SPIFFE ID, the bundle and the KeyPolicy TLS settings, with no serial pinned in the handshake', () => {
    const t = probeTarget(es(), secret(TEST_LEAF), TEST_LEAF, { spec: { tls: { minVersion: 'TLS1.3' } } } as never);
    if ('pending' in t) throw new Error(t.pending);
    expect(t.issued.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/api');
    expect(t.issued.serial).toMatch(/^[0-9A-F]+$/);
    expect(t.expectation).toEqual({ roots: [TEST_LEAF], servername: 'api.shop.svc', policy: { minVersion: 'TLS1.3' } });
  });
});
