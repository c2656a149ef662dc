import { describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import type { V1ConfigMap, V1EndpointSlice, V1Secret } from '@kubernetes/client-node';
import { effectiveKeyWrap, type EncryptedService, type KeyPolicy, type RotationSchedule, type RotationScheduleStatus } from '../api/v1alpha1/index.js';
import { activeKey, createKeySet } from '../crypto/keyset.js';
import { rotateBoth } from '../keypolicy/key-plan.js';
import type { CertManagerObject } from '../encryptedservice/reconciler.js';
import type { Applier } from '../kube/apply.js';
import type { Informer } from '../runtime/informer.js';
import { createLogger, MemorySink } from '../runtime/logger.js';
import { createMetrics } from '../runtime/metrics.js';
import type { KeySets } from '../keypolicy/key-plan.js';
import type { CaRotation } from './ca-rotation.js';
import type { LeafCertificates } from './leaf-certificates.js';
import { RotationScheduleReconciler, rotatedKinds, type EndpointVerifier } from './reconciler.js';
import type { Claim } from './claims.js';
import { RestartRefused, type WorkloadRestarter } from './workload-restart.js';
import { TEST_LEAF } from './test-certificates.js';

// The reconciler against an in-memory world: what it writes, in which order, and what it
// touches. Public test certificates only (keys discarded): two leaves with different serials.
const OLD = TEST_LEAF;
const NEW = `-----BEGIN CERTIFICATE-----
MIIBIjCByQIUCDgawPAty7AOTmLPvBhtpYym+R4wCgYIKoZIzj0EAwIwFjEUMBIG
A1UEAwwLdGVzdCByb290IEEwIBcNMjYxMTI4MDIxNjE2WhgPMjEyNjExMDQwMjE2
MTZaMBAxDjAMBgNVBAMMBWxlYWYyMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
varBqwQ3vMv3P/GhHPGtHzQ5MlmoAjTZbGk4CbGD+EgtNfGGB4a/5A8o6sGHFls5
VgoXrnwzNXIbatqJWCUdBzAKBggqhkjOPQQDAgNIADBFAiEAjxbpgpnYQn43yEwC
gRd4U7lfIEdOy8FAa8NYkmyLSx8CICrnvj2GqqtsobzE0C2t/BI/fUS3d+EjCQwK
y9VcWtBw
-----END CERTIFICATE-----
`;
const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toUpperCase();
const b64 = (s: string) => Buffer.from(s).toString('base64');
const T0 = Date.parse('2026-03-02T12:00:00Z');

function cache<T extends { metadata?: { name?: string; namespace?: string } }>(items: () => T[]): Informer<T> {
  const all = () => items();
  return {
    get: (ns: string | undefined, name: string) => all().find((o) => o.metadata?.name === name && (ns === undefined || o.metadata?.namespace === ns)),
    getByKey: (key: string) => all().find((o) => `${o.metadata?.namespace}/${o.metadata?.name}` === key),
    list: (ns?: string) => all().filter((o) => ns === undefined || o.metadata?.namespace === ns),
  } as unknown as Informer<T>;
}

function world(names: string[], spec: Partial<RotationSchedule['spec']> = {}) {
  let now = T0;
  const log: string[] = [];
  const pem: Record<string, string> = Object.fromEntries(names.map((n) => [n, OLD]));
  const served: Record<string, string> = Object.fromEntries(names.map((n) => [n, serialOf(OLD)]));
  const issuing: Record<string, boolean> = {};
  // Knobs for the failure tests: cert-manager's last failure per service, a side effect that
  // throws, a workload that refuses restarts, a claim another rotation holds.
  const failedAt: Record<string, string> = {};
  const knobs: { readerError?: Error; restartError?: Error; heldBy?: { namespace: string; schedule: string; rotationId: string }; certManagerMissing?: boolean } = {};
  const restarts: string[] = [];
  const events: string[] = [];
  let rs: RotationSchedule = {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule',
    metadata: { name: 'nightly', namespace: 'ns', uid: 'u', generation: 1, creationTimestamp: new Date(T0 - 60_000) as unknown as Date, annotations: { 'lockstep.dev/rotate-now': 'go' } },
    spec: { targets: { names }, rotate: ['certificates'], strategy: { canarySteps: [10, 100], maxInFlight: 1, pauseBetweenSteps: '0s', verification: { timeout: '10s' } }, ...spec },
    status: {},
  };
  const services: EncryptedService[] = names.map((name) => ({
    metadata: { name, namespace: 'ns' },
    spec: { workload: { selector: {}, serviceAccountName: name }, ports: [{ name: 'https', port: 443 }], keyPolicyRef: { name: 'p' } },
  }) as unknown as EncryptedService);
  const secrets = (): V1Secret[] => names.map((n) => ({ metadata: { name: `${n}-tls`, namespace: 'ns' }, data: { 'tls.crt': b64(pem[n]!), 'tls.key': b64('key') } }));
  const certificates = (): CertManagerObject[] => names.map((n) => ({
    metadata: { name: n, namespace: 'ns' },
    status: { ...(failedAt[n] ? { lastFailureTime: failedAt[n] } : {}), conditions: issuing[n] ? [{ type: 'Issuing', status: 'True' }] : [{ type: 'Issuing', status: 'False', message: 'issuer refused' }, { type: 'Ready', status: 'True' }] },
  }));
  const bundle: V1ConfigMap = { metadata: { name: 'lockstep-trust-bundle', namespace: 'ns' }, data: { 'ca.crt': '' } };
  let policy = { metadata: { name: 'p', namespace: 'ns' }, spec: {} } as KeyPolicy;
  // The KeyPolicy side of key rotations: the key sets as stored, and the envelope stores by name.
  const keyState: { sets?: KeySets; stores: Record<string, V1Secret> } = { stores: {} };
  const keys = {
    async requestKekRotation(_ns: string, name: string, value: string) { log.push(`rotate-now ${name} ${value}`); },
    async requestReactivation(_ns: string, name: string, value: string) { log.push(`reactivate ${name} ${value.split('@')[0]}`); },
    async requestDataKeyRotation(_ns: string, name: string, value: string) { log.push(`rotate-data-key ${name} ${value}`); },
    async requestDataKeyRestore(_ns: string, name: string, value: string) { log.push(`restore-data-key ${name} ${value}`); },
    async keySets() { return keyState.sets ? { sets: keyState.sets, secret: {} as V1Secret } : undefined; },
    async secret(_ns: string, name: string) { return keyState.stores[name]; },
  };
  const leaves = {
    async backup(_ns: string, name: string, _id: string, build: () => V1Secret) {
      log.push(`backup ${name}`);
      return build().metadata?.annotations?.['lockstep.dev/serial'] ?? '';
    },
    async triggerIssuance(_ns: string, name: string) {
      log.push(`trigger ${name}`);
      issuing[name] = true;
      return true;
    },
    async cancelIssuance(_ns: string, name: string) { log.push(`cancel ${name}`); },
    async restore(_ns: string, name: string) {
      log.push(`restore ${name}`);
      pem[name] = OLD;
      return { result: 'restored' as const, serial: serialOf(OLD) };
    },
  } as unknown as LeafCertificates;
  const applier = {
    async applyStatus(_ref: unknown, status: RotationScheduleStatus) {
      const targets = (status.targets ?? []).map((t) => `${t.name}:${t.phase}`).join(',');
      log.push(`status ${status.phase} ${targets}`);
      rs = { ...rs, status: structuredClone(status) };
    },
    async apply() { return { changed: true }; },
  } as unknown as Applier;
  const verify: EndpointVerifier = async (endpoints, expected) =>
    endpoints.map((endpoint) => {
      const name = endpoint.address;
      return { endpoint, problems: served[name] === expected.serial ? [] : [`serves certificate ${served[name]}, want the new ${expected.serial}`] };
    });
  const reconciler = new RotationScheduleReconciler({
    caches: {
      rotationSchedules: cache(() => [rs]),
      encryptedServices: cache(() => services),
      keyPolicies: cache(() => [policy]),
      certificates: cache(certificates),
      secrets: cache(secrets),
      configMaps: cache(() => [bundle]),
    },
    reader: {
      schedule: async () => structuredClone(rs),
      // One endpoint per service, addressed by the service name so the fake verifier can find it.
      endpointSlices: async (_ns, service): Promise<V1EndpointSlice[]> => {
        if (knobs.readerError) throw knobs.readerError;
        return [{ addressType: 'IPv4', ports: [{ name: 'https', port: 8443 }], endpoints: [{ addresses: [service] }] }];
      },
    },
    applier, leaves, keys, ca: {} as CaRotation, restarter: {
      async restart(_t: unknown, _ns: string, value: string) {
        if (knobs.restartError) throw knobs.restartError;
        log.push('restart');
        const again = restarts.includes(value);
        restarts.push(value);
        return { result: again ? 'already-restarted' as const : 'restarted' as const };
      },
    } as unknown as WorkloadRestarter,
    claims: {
      async acquire(claims: readonly Claim[]) {
        log.push(`claim ${claims.map((c) => `${c.kind}:${c.name}`).join(',')}`);
        return knobs.heldBy ? { ok: false as const, claim: claims[0]!, heldBy: knobs.heldBy } : { ok: true as const };
      },
      async releaseAll() { log.push('release'); },
    },
    events: { record: (_o: unknown, _t: unknown, reason: string) => { events.push(reason); } }, metrics: createMetrics(), logger: createLogger({ sink: new MemorySink() }),
    certManager: { problem: () => (knobs.certManagerMissing ? { reason: 'CertManagerMissing', message: 'install cert-manager v1.x: cert-manager.io/v1 Certificate not served' } : undefined) },
    verify, now: () => new Date(now),
  });
  return {
    log, pem, served, issuing, failedAt, knobs, restarts, events,
    get rs() { return rs; },
    keyState, services,
    setPolicy(next: KeyPolicy) { policy = next; },
    setRs(next: RotationSchedule) { rs = next; },
    /** cert-manager finished issuing `name`. */
    issue(name: string) { pem[name] = NEW; issuing[name] = false; },
    advance(ms: number) { now += ms; },
    reconcile: () => reconciler.reconcile('ns/nightly'),
  };
}

describe('RotationScheduleReconciler', () => {
  it('backs up the canary and records it Rotating before triggering its re-issuance', async () => {
    const w = world(['a', 'b']);
    await w.reconcile();
    expect(w.rs.status).toMatchObject({ phase: 'Rotating', lastRotateNow: 'go', trigger: 'Manual' });
    w.log.length = 0;
    await w.reconcile();
    expect(w.log).toEqual(['backup a', 'status Rotating a:Rotating,b:Pending', 'trigger a']);
    expect(w.rs.status?.targets?.[0]?.previousRevision).toBe(serialOf(OLD));
  });

  it('runs canary then the rest, verifying each served certificate, to Completed', async () => {
    const w = world(['a', 'b']);
    await w.reconcile();
    await w.reconcile();
    w.issue('a');
    w.served.a = serialOf(NEW);
    await w.reconcile(); // issued: Verifying
    expect(w.rs.status?.targets?.[0]).toMatchObject({ phase: 'Verifying', newRevision: serialOf(NEW) });
    await w.reconcile(); // verified -> next step
    expect(w.rs.status?.targets?.map((t) => t.phase)).toEqual(['Succeeded', 'Pending']);
    expect(w.rs.status?.currentStep).toBe(1);
    await w.reconcile(); // begin b
    w.issue('b');
    w.served.b = serialOf(NEW);
    await w.reconcile();
    await w.reconcile();
    expect(w.rs.status?.phase).toBe('Completed');
    expect(w.rs.status?.history?.[0]).toMatchObject({ outcome: 'Completed', targets: 2 });
    expect(w.log.filter((l) => l.startsWith('trigger'))).toEqual(['trigger a', 'trigger b']);
  });

  it('after a crash between persisting and triggering, triggers once; never while cert-manager is issuing', async () => {
    const w = world(['a', 'b']);
    await w.reconcile();
    await w.reconcile();
    // Simulate the crash: cert-manager never saw the trigger.
    w.issuing.a = false;
    w.log.length = 0;
    await w.reconcile();
    expect(w.log.filter((l) => l.startsWith('trigger'))).toEqual(['trigger a']);
    w.log.length = 0;
    await w.reconcile();
    expect(w.log.filter((l) => l.startsWith('trigger') || l.startsWith('backup'))).toEqual([]);
  });

  it('waits, without touching any target, while another rotation holds a claim; starts once it is free', async () => {
    const w = world(['a']);
    w.knobs.heldBy = { namespace: 'ns', schedule: 'other', rotationId: 'manual-1' };
    await w.reconcile();
    expect(w.rs.status?.phase).toBe('Idle');
    expect(w.rs.status?.waiting).toMatch(/rotation manual-1 of RotationSchedule ns\/other/);
    expect(w.rs.status?.conditions?.find((c) => c.type === 'Rotating')).toMatchObject({ status: 'False', reason: 'RotationWaiting' });
    expect(w.log.filter((l) => l.startsWith('backup') || l.startsWith('trigger'))).toEqual([]);
    delete w.knobs.heldBy;
    await w.reconcile();
    expect(w.rs.status?.phase).toBe('Rotating');
    expect(w.rs.status?.waiting).toBeUndefined();
  });

  it('restarts a workload that cannot hot-reload once, also when the operator dies between the restart and the status write', async () => {
    const w = world(['a']);
    w.services[0]!.spec.workload.restart = { kind: 'Deployment', name: 'a', hotReload: false };
    await w.reconcile();
    await w.reconcile();
    w.issue('a');
    const beforeRestart = structuredClone(w.rs);
    w.log.length = 0;
    await w.reconcile();
    // The restart value is persisted before the restart is written.
    expect(w.log.filter((l) => l === 'restart' || l.startsWith('status'))).toEqual(['status Rotating a:Rotating', 'restart', 'status Verifying a:Verifying']);
    const persistedBeforeRestart = w.rs.status?.targets?.[0]?.restartedAt;
    // The crash: the status says Rotating with the restart value recorded, the restart happened.
    w.setRs({ ...beforeRestart, status: { ...beforeRestart.status, targets: beforeRestart.status?.targets?.map((t) => ({ ...t, restartedAt: persistedBeforeRestart! })) } });
    await w.reconcile();
    expect(w.restarts).toHaveLength(2);
    expect(new Set(w.restarts).size).toBe(1);
    expect(w.rs.status?.targets?.[0]).toMatchObject({ phase: 'Verifying', restartedAt: persistedBeforeRestart });
  });

  it('a restart the API refuses fails the target at once and rolls it back', async () => {
    const w = world(['a']);
    w.services[0]!.spec.workload.restart = { kind: 'StatefulSet', name: 'typo', hotReload: false };
    w.knobs.restartError = new RestartRefused('cannot restart StatefulSet ns/typo: NotFound');
    await w.reconcile();
    await w.reconcile();
    w.issue('a');
    await w.reconcile();
    await w.reconcile();
    expect(w.rs.status?.phase).toBe('RolledBack');
    expect(w.rs.status?.failure).toMatchObject({ reason: 'RestartFailed', message: expect.stringMatching(/typo: NotFound/) });
    expect(w.pem.a).toBe(OLD);
  });

  it('a target deleted mid-rotation fails at once, and the next rotate-now still runs', async () => {
    const w = world(['a']);
    await w.reconcile();
    await w.reconcile();
    w.services.splice(0, 1);
    await w.reconcile();
    await w.reconcile();
    expect(w.rs.status?.phase).toBe('RolledBack');
    expect(w.rs.status?.failure).toMatchObject({ reason: 'TargetGone' });
    expect(w.log).toContain('cancel a');
    expect(w.log).toContain('release');
    w.setRs({ ...w.rs, metadata: { ...w.rs.metadata, annotations: { 'lockstep.dev/rotate-now': 'again' } } });
    await w.reconcile();
    expect(w.rs.status).toMatchObject({ phase: 'Completed', lastRotateNow: 'again' });
  });

  it('a failed issuance ends the target with cert-manager\'s reason instead of re-triggering every second', async () => {
    const w = world(['a']);
    await w.reconcile();
    await w.reconcile();
    w.issuing.a = false;
    w.failedAt.a = new Date(T0 + 1_000).toISOString();
    w.advance(2_000);
    w.log.length = 0;
    await w.reconcile();
    expect(w.log.filter((l) => l.startsWith('trigger'))).toEqual([]);
    await w.reconcile();
    expect(w.rs.status?.failure).toMatchObject({ reason: 'IssuanceFailed', message: expect.stringMatching(/issuer refused/) });
  });

  it('a side effect that keeps failing ends the rotation Failed after its timeout, with the error', async () => {
    const w = world(['a']);
    await w.reconcile();
    await w.reconcile();
    w.issue('a');
    await w.reconcile();
    w.knobs.readerError = new Error('endpointslices is forbidden');
    await expect(w.reconcile()).rejects.toThrow(/forbidden/);
    expect(w.rs.status).toMatchObject({ phase: 'Verifying', lastError: expect.stringMatching(/forbidden/) });
    w.advance(30_000);
    await expect(w.reconcile()).rejects.toThrow(/forbidden/);
    w.advance(31_000);
    await w.reconcile();
    expect(w.rs.status).toMatchObject({ phase: 'Failed', failure: { reason: 'ReconcileError' } });
    expect(w.rs.status?.errorSince).toBeUndefined();
    expect(w.log).toContain('release');
  });

  /** Runs the rotation `w` starts on its single target 'a' to Completed, then reconciles twice more: nothing may start again. */
  async function rotatesOnce(w: ReturnType<typeof world>, started?: Record<string, unknown>): Promise<void> {
    await w.reconcile();
    if (started) expect(w.rs.status).toMatchObject(started);
    await w.reconcile();
    w.issue('a');
    w.served.a = serialOf(NEW);
    await w.reconcile();
    await w.reconcile();
    expect(w.rs.status?.phase).toBe('Completed');
    w.log.length = 0;
    await w.reconcile();
    await w.reconcile();
    expect(w.log.filter((l) => !l.startsWith('status'))).toEqual([]);
    expect(w.rs.status?.history).toHaveLength(1);
  }

  it('without cert-manager a due rotation does not start: nothing claimed or triggered, the conditions say why, once; it starts when cert-manager is back', async () => {
    const w = world(['a', 'b']);
    w.knobs.certManagerMissing = true;
    expect(await w.reconcile()).toEqual({ requeueAfter: 10_000 });
    await w.reconcile();
    expect(w.log.filter((l) => !l.startsWith('status'))).toEqual([]);
    expect(w.events).toEqual(['CertManagerMissing']);
    expect(w.rs.status?.phase).toBe('Idle');
    expect(w.rs.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False', reason: 'CertManagerMissing', message: 'certificates not rotated: install cert-manager v1.x: cert-manager.io/v1 Certificate not served',
    });
    delete w.knobs.certManagerMissing;
    await w.reconcile();
    expect(w.rs.status).toMatchObject({ phase: 'Rotating', lastRotateNow: 'go' });
  });

  it('a key rotation does not need cert-manager', async () => {
    const w = world(['a'], { rotate: ['keyEncryptionKeys'] });
    w.knobs.certManagerMissing = true;
    await w.reconcile();
    expect(w.rs.status?.phase).toBe('Rotating');
  });

  it('the same rotate-now value never starts a second rotation', async () => {
    await rotatesOnce(world(['a']));
  });

  it('an emergency schedule that also carries a rotate-now value rotates once, not twice', async () => {
    await rotatesOnce(world(['a'], { emergency: true }), { trigger: 'Emergency', lastRotateNow: 'go', emergencyGeneration: 1 });
  });

  it('a canary that keeps serving the old certificate past the timeout is rolled back; later targets untouched', async () => {
    const w = world(['a', 'b', 'c']);
    await w.reconcile();
    await w.reconcile();
    w.issue('a'); // issued, but the workload never reloads: still serves OLD
    await w.reconcile();
    expect(w.rs.status?.targets?.[0]?.phase).toBe('Verifying');
    w.advance(5_000);
    await w.reconcile();
    expect(w.rs.status?.phase).toBe('Verifying');
    w.advance(6_000);
    await w.reconcile();
    expect(w.rs.status?.phase).toBe('RolledBack');
    expect(w.rs.status?.failure).toMatchObject({ reason: 'VerificationFailed', target: 'ns/a' });
    expect(w.rs.status?.targets?.map((t) => [t.name, t.phase])).toEqual([['a', 'RolledBack'], ['b', 'Pending'], ['c', 'Pending']]);
    expect(w.log.filter((l) => !l.startsWith('status'))).toEqual(['claim service:a,service:b,service:c', 'backup a', 'trigger a', 'cancel a', 'restore a', 'release']);
    expect(w.pem.a).toBe(OLD);
    expect(w.rs.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'RolledBack' });
  });

  it('with autoRollback false a failed verification ends Failed and restores nothing', async () => {
    const w = world(['a', 'b'], { strategy: { canarySteps: [10, 100], autoRollback: false, verification: { timeout: '10s' } } });
    await w.reconcile();
    await w.reconcile();
    w.issue('a');
    await w.reconcile();
    w.advance(11_000);
    await w.reconcile();
    expect(w.rs.status?.phase).toBe('Failed');
    expect(w.log).not.toContain('restore a');
  });
});

describe('RotationScheduleReconciler key rotation', () => {
  const keyWrap = effectiveKeyWrap({ algorithm: 'A256KW' });
  async function keyWorld(names: string[], spec: Partial<RotationSchedule['spec']> = {}) {
    const w = world(names, { rotate: ['keyEncryptionKeys'], ...spec });
    const t = new Date(T0 - 3_600_000);
    w.keyState.sets = { kek: await createKeySet('kek', 'A256KW', { now: t }), seal: await createKeySet('seal', 'ECDH-ES+A256KW', { now: t }) };
    const settle = () => w.setPolicy({
      metadata: { name: 'p', namespace: 'ns' }, spec: {},
      status: { activeKid: activeKey(w.keyState.sets!.kek).kid, conditions: [{ type: 'Rotating', status: 'False', reason: 'RotationCompleted', message: '', lastTransitionTime: '' }] },
    } as KeyPolicy);
    settle();
    // Object.assign, not a spread: the spread would freeze w's `rs` getter.
    return Object.assign(w, {
      /** What the KeyPolicy reconciler does for a rotate-now value: rotate, re-wrap, report. */
      async policyRotates() {
        w.keyState.sets = (await rotateBoth(w.keyState.sets!, keyWrap, { retention: 2, retireAfterMs: 3_600_000 }, {}, new Date(T0))).keySets;
        settle();
      },
    });
  }

  it('rotates the shared KEK once, canary first, records the kids and completes after verifying each target', async () => {
    const w = await keyWorld(['a', 'b']);
    const before = activeKey(w.keyState.sets!.kek).kid;
    await w.reconcile(); // start
    await w.reconcile(); // begin a, persisted before asking
    expect(w.log.filter((l) => !l.startsWith('status Rotating a:Pending'))).toEqual(['claim service:a,service:b,keypolicy:p,keypolicy:p', 'status Rotating a:Rotating,b:Pending', `rotate-now p rotationschedule-${w.rs.status?.rotationId}`]);
    await w.reconcile(); // not rotated yet: asks again with the same value
    await w.policyRotates();
    const after = activeKey(w.keyState.sets!.kek).kid;
    await w.reconcile(); // rotated and re-wrapped: Verifying
    expect(w.rs.status?.targets?.[0]).toMatchObject({ phase: 'Verifying', previousRevision: before, newRevision: after });
    await w.reconcile(); // verified: next step
    await w.reconcile(); // begin b: the policy a already rotated is not asked for a second KEK
    expect(w.rs.status?.targets?.[1]).toMatchObject({ phase: 'Rotating', previousRevision: before });
    await w.reconcile();
    await w.reconcile();
    expect(w.rs.status?.phase).toBe('Completed');
    expect(w.rs.status?.targets?.map((t) => [t.name, t.phase, t.newRevision])).toEqual([['a', 'Succeeded', after], ['b', 'Succeeded', after]]);
    expect(w.rs.status?.history?.[0]).toMatchObject({ outcome: 'Completed', rotated: ['keyEncryptionKeys'] });
    expect(new Set(w.log.filter((l) => l.startsWith('rotate-now')))).toEqual(new Set([`rotate-now p rotationschedule-${w.rs.status?.rotationId}`]));
    expect(w.log.filter((l) => l.startsWith('reactivate'))).toEqual([]);
  });

  it('a KEK that does not rotate within the timeout is rolled back to the kid active before; later targets untouched', async () => {
    const w = await keyWorld(['a', 'b']);
    const before = activeKey(w.keyState.sets!.kek).kid;
    await w.reconcile();
    await w.reconcile();
    w.advance(11_000);
    await w.reconcile();
    expect(w.rs.status?.phase).toBe('RolledBack');
    expect(w.rs.status?.failure).toMatchObject({ reason: 'KeyRotationTimeout', target: 'ns/a' });
    expect(w.rs.status?.targets?.map((t) => [t.name, t.phase])).toEqual([['a', 'RolledBack'], ['b', 'Pending']]);
    expect(w.log).toContain(`reactivate p ${before}`);
    expect(w.rs.status?.targets?.[0]?.message).toContain(`KEK ${before} of KeyPolicy ns/p made active again`);
  });

  it('asks each target for a fresh data key with dataKeys, and undoes it for a failed target', async () => {
    const w = await keyWorld(['a'], { rotate: ['dataKeys'] });
    w.services[0]!.spec.secrets = { envelope: [{ name: 'a-conf' }] };
    w.keyState.stores['a-envelope'] = { metadata: { name: 'a-envelope', annotations: { 'lockstep.dev/data-key-id': 'dek-000000000000000000000001' } } };
    await w.reconcile();
    await w.reconcile();
    const value = `rotationschedule-${w.rs.status?.rotationId}`;
    expect(w.rs.status?.targets?.[0]).toMatchObject({ phase: 'Rotating', previousRevision: 'dek-000000000000000000000001' });
    expect(w.log).toContain(`rotate-data-key a ${value}`);
    w.advance(11_000);
    await w.reconcile();
    expect(w.rs.status?.phase).toBe('RolledBack');
    expect(w.log).toContain(`restore-data-key a ${value}`);
    expect(w.log.filter((l) => l.startsWith('reactivate'))).toEqual([]);
  });
});

describe('rotatedKinds', () => {
  it('rotates keys in a schedule of their own', () => {
    expect(rotatedKinds(['certificates', 'keyEncryptionKeys'])).toEqual(['certificates']);
    expect(rotatedKinds(['ca', 'certificates', 'dataKeys'])).toEqual(['ca', 'certificates']);
    expect(rotatedKinds(['keyEncryptionKeys', 'dataKeys'])).toEqual(['keyEncryptionKeys', 'dataKeys']);
  });
});
