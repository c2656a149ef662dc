// RotationSchedule end to end on the real API server, etcd and cert-manager. Workloads are mTLS
// servers in this process, on this host's address, that load their certificate from the TLS Secret and
// hot-reload it; Services without selectors and hand-made EndpointSlices point at them, so the
// operator's verification connects to them exactly as it would to pods.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import * as k8s from '@kubernetes/client-node';
import type { KeyPolicy, RotationSchedule } from '../operator/api/v1alpha1/index.js';
import type { Operator } from '../operator/app.js';
import { managedCAIssuerName } from '../operator/keypolicy/names.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, installCrds } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startChild, startInProcess, type ChildOperator, type RunningOperator } from './harness/operator.js';
import { RotationRig } from './harness/rotation-rig.js';
import { HandshakeClient, stallNote, serialOfPem } from './harness/tls-workload.js';

const c = clients();
let ns = '';
let operator: RunningOperator & { operator?: Operator };
let child: ChildOperator | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let rig: RotationRig;
const workloads = { get: (name: string) => rig.workloads.get(name), values: () => rig.workloads.values() };
const retire = (names: string[]) => rig.retire(names);
const service = (...args: Parameters<RotationRig['service']>) => rig.service(...args);
const schedule = (...args: Parameters<RotationRig['schedule']>) => rig.schedule(...args);
const readSchedule = (name: string) => rig.readSchedule(name);
const waitSchedule = (...args: Parameters<RotationRig['waitSchedule']>) => rig.waitSchedule(...args);
const annotate = (...args: Parameters<RotationRig['annotate']>) => rig.annotate(...args);
const serial = (name: string) => rig.serial(name);
const deploy = (...args: Parameters<RotationRig['deploy']>) => rig.deploy(...args);

beforeAll(async () => {
  installCrds();
  ns = await createTestNamespace(c, 'e2e-rotation');
  rig = new RotationRig(c, ns, 'rotation');
  const policy: KeyPolicy = { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'rotation', namespace: ns }, spec: { keyWrap: { algorithm: 'A256KW' }, certificates: { allowedIssuers: [{ name: 'rot-ca', kind: 'Issuer' }] } } } as KeyPolicy;
  await applyAsUser(c, policy as unknown as KubernetesObject);
  operator = startInProcess(c.kc);
}, 120_000);

afterAll(async () => {
  await rig?.stop();
  await deleteTestNamespace(c, ns);
  await operator?.stop();
  await child?.stop();
});

describe('leaf certificate rotation', () => {
  it('rotates several services canary first while a client handshakes with mTLS: zero failed handshakes', async () => {
    const names = ['alpha', 'bravo', 'charlie'];
    await deploy(names);
    const before = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await serial(n)] as const)));
    const client = new HandshakeClient(c, ns, 'alpha', () => names.map((n) => workloads.get(n)!), 30);
    await client.start();
    await sleep(2_000);

    await applyAsUser(c, schedule('leaves', {
      targets: { names },
      strategy: { canarySteps: [34, 100], maxInFlight: 2, pauseBetweenSteps: '2s', verification: { timeout: '60s' } },
    }, { 'lockstep.dev/rotate-now': 'first' }) as unknown as KubernetesObject);

    let rs: RotationSchedule;
    try {
      rs = await waitSchedule('leaves', 'Completed', (r) => r.status?.phase === 'Completed' && r.status.lastRotateNow === 'first', 150_000);
      await sleep(2_000);
    } finally {
      await client.stop();
    }
    const counts = client.counts;
    const rate = counts.ok / (counts.elapsedMs / 1000);
    console.log(`mTLS handshakes during leaf rotation: ${counts.ok} succeeded, ${counts.failed} failed, ${rate.toFixed(1)}/s over ${(counts.elapsedMs / 1000).toFixed(1)}s${stallNote(counts)}${counts.errors.length ? `; errors: ${counts.errors.join(' | ')}` : ''}`);
    expect(counts.failed).toBe(0);
    // The client kept handshaking all along (30/s offered; a rig too starved to keep up skips, and shows here).
    expect(rate).toBeGreaterThanOrEqual(10);

    // Canary first: 34% of 3 rounds up to 2 targets in step 1 (alpha, bravo), then charlie.
    expect(rs.status?.targets?.map((t) => [t.name, t.step, t.phase])).toEqual([['alpha', 0, 'Succeeded'], ['bravo', 0, 'Succeeded'], ['charlie', 1, 'Succeeded']]);
    for (const n of names) {
      const target = rs.status?.targets?.find((t) => t.name === n);
      const now = await serial(n);
      expect(now).not.toBe(before[n]);
      expect(target?.previousRevision).toBe(before[n]);
      expect(target?.newRevision).toBe(now);
      expect(workloads.get(n)?.servedSerial).toBe(now);
    }
    expect(rs.status?.history?.[0]).toMatchObject({ outcome: 'Completed', trigger: 'Manual', targets: 3, rotated: ['certificates'] });
    expect(rs.status?.conditions?.find((x) => x.type === 'Ready')).toMatchObject({ status: 'True', reason: 'RotationCompleted' });
    expect(rs.status?.conditions?.find((x) => x.type === 'Rotating')).toMatchObject({ status: 'False' });

    // The same rotate-now value never triggers again.
    await annotate('leaves', { 'lockstep.dev/rotate-now': 'first' });
    await sleep(3_000);
    const again = await readSchedule('leaves');
    expect(again.status?.history).toHaveLength(1);
    expect(await serial('alpha')).toBe(rs.status?.targets?.[0]?.newRevision);
    await retire(names);
  }, 240_000);

  it('rolls back when the canary never reloads: RolledBack with the reason, previous certificate restored, later targets untouched', async () => {
    const names = ['romeo', 'sierra', 'tango'];
    await deploy(names, { romeo: { hotReload: false } });
    const before = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await serial(n)] as const)));

    await applyAsUser(c, schedule('broken-canary', {
      targets: { names },
      strategy: { canarySteps: [10, 100], maxInFlight: 1, pauseBetweenSteps: '1s', verification: { timeout: '10s' } },
    }, { 'lockstep.dev/rotate-now': 'go' }) as unknown as KubernetesObject);

    const rs = await waitSchedule('broken-canary', 'RolledBack', (r) => r.status?.phase === 'RolledBack', 120_000);
    console.log(`rollback: ${JSON.stringify(rs.status?.failure)}`);
    expect(rs.status?.failure).toMatchObject({ reason: 'VerificationFailed', target: `${ns}/romeo` });
    expect(rs.status?.failure?.message).toMatch(new RegExp(`serves certificate ${before.romeo}, want the new`));
    const romeo = rs.status?.targets?.find((t) => t.name === 'romeo');
    expect(romeo).toMatchObject({ phase: 'RolledBack', previousRevision: before.romeo });
    expect(romeo?.message).toContain(`restored previous certificate ${before.romeo}`);
    expect(romeo?.newRevision).not.toBe(before.romeo);
    expect(rs.status?.conditions?.find((x) => x.type === 'Ready')).toMatchObject({ status: 'False', reason: 'RolledBack' });
    expect(rs.status?.conditions?.find((x) => x.type === 'Degraded')).toMatchObject({ status: 'True', reason: 'RolledBack' });
    expect(rs.status?.history?.[0]).toMatchObject({ outcome: 'RolledBack' });

    // The previous certificate is back and stays: cert-manager does not re-issue over it.
    expect(await serial('romeo')).toBe(before.romeo);
    await sleep(5_000);
    expect(await serial('romeo')).toBe(before.romeo);
    expect(workloads.get('romeo')?.servedSerial).toBe(before.romeo);

    const events = (await c.kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns })).items;
    expect(events.some((e) => e.regarding?.name === 'broken-canary' && e.type === 'Warning' && e.reason === 'RolledBack' && e.note?.includes(`restored previous certificate ${before.romeo}`))).toBe(true);
    const metrics = await operator.operator?.metrics.registry.metrics();
    expect(metrics).toMatch(/lockstep_rotations_total\{kind="certificates",outcome="RolledBack"\} 1/);
    expect(metrics).toMatch(/lockstep_rotation_duration_seconds_count\{kind="certificates"\} [1-9]/);

    // Targets of later steps were never touched.
    for (const n of ['sierra', 'tango']) {
      expect(rs.status?.targets?.find((t) => t.name === n)).toMatchObject({ phase: 'Pending' });
      expect(rs.status?.targets?.find((t) => t.name === n)?.previousRevision).toBeUndefined();
      expect(await serial(n)).toBe(before[n]);
    }
    await retire(names);
  }, 180_000);
});

describe('verification against the KeyPolicy TLS policy', () => {
  it('a workload that negotiates below the policy minimum fails verification and is rolled back', async () => {
    const strict = { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'tls13', namespace: ns }, spec: { keyWrap: { algorithm: 'A256KW' }, tls: { minVersion: 'TLS1.3' } } };
    await applyAsUser(c, strict as KubernetesObject);
    await deploy(['oscar'], { oscar: { keyPolicy: 'tls13', maxVersion: 'TLSv1.2' } });
    const before = await serial('oscar');
    await applyAsUser(c, schedule('tls-policy', {
      targets: { names: ['oscar'] }, strategy: { canarySteps: [100], verification: { timeout: '10s' } },
    }, { 'lockstep.dev/rotate-now': 't1' }) as unknown as KubernetesObject);
    const rs = await waitSchedule('tls-policy', 'RolledBack', (r) => r.status?.phase === 'RolledBack');
    expect(rs.status?.failure?.message).toContain('negotiated TLSv1.2, policy requires at least TLS1.3');
    // The workload did reload the new certificate: only the protocol failed the check.
    expect(rs.status?.failure?.message).not.toContain('want the new');
    expect(await serial('oscar')).toBe(before);
    await retire(['oscar']);
  }, 120_000);

  it('the floor counts, not only the best handshake: a workload that also accepts TLS 1.2 under a TLS1.3 policy, or a CBC suite under TLS1.2, is rolled back; one that refuses both completes', async () => {
    const strict = { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'tls13', namespace: ns }, spec: { keyWrap: { algorithm: 'A256KW' }, tls: { minVersion: 'TLS1.3' } } };
    await applyAsUser(c, strict as KubernetesObject);
    // papa negotiates TLS 1.3 with us but would take 1.2 from an older client; quebec prefers an
    // AEAD suite but accepts CBC; romeo speaks only what its TLS1.3 policy allows.
    await deploy(['papa', 'quebec', 'romeo'], { papa: { keyPolicy: 'tls13' }, quebec: { cbc: true }, romeo: { keyPolicy: 'tls13', minVersion: 'TLSv1.3' } });
    const before = { papa: await serial('papa'), quebec: await serial('quebec') };
    for (const name of ['papa', 'quebec', 'romeo']) {
      await applyAsUser(c, schedule(`floor-${name}`, {
        targets: { names: [name] }, strategy: { canarySteps: [100], verification: { timeout: '10s' } },
      }, { 'lockstep.dev/rotate-now': 'f1' }) as unknown as KubernetesObject);
    }
    const papa = await waitSchedule('floor-papa', 'RolledBack', (r) => r.status?.phase === 'RolledBack');
    expect(papa.status?.failure?.message).toMatch(/accepts TLSv1\.2 with TLS_\w+, below the policy minimum TLS1\.3/);
    expect(papa.status?.failure?.message).not.toContain('negotiated');
    const quebec = await waitSchedule('floor-quebec', 'RolledBack', (r) => r.status?.phase === 'RolledBack');
    expect(quebec.status?.failure?.message).toMatch(/accepts TLSv1\.2 with TLS_ECDHE_\w+_CBC_SHA, a cipher suite the TLS policy does not allow/);
    expect(await serial('papa')).toBe(before.papa);
    expect(await serial('quebec')).toBe(before.quebec);
    const romeo = await waitSchedule('floor-romeo', 'Completed', (r) => r.status?.phase === 'Completed' && r.status.lastRotateNow === 'f1');
    expect(romeo.status?.targets?.[0]?.message).toContain('meets the TLS policy');
    await retire(['papa', 'quebec', 'romeo']);
  }, 150_000);
});

describe('workloads that cannot hot-reload', () => {
  it("are restarted through restartedAt (sub-second value) without touching the workload's rollout strategy, then verified", async () => {
    const restart = { kind: 'Deployment', name: 'november', hotReload: false, maxUnavailable: 1 };
    const deployment = {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'november', namespace: ns },
      spec: {
        replicas: 2, selector: { matchLabels: { app: 'november' } },
        // Its pods (on a cluster with a node) run as the service's account, or the operator would
        // refuse to issue november's identity to them.
        template: { metadata: { labels: { app: 'november' } }, spec: { serviceAccountName: 'november', containers: [{ name: 'app', image: 'registry.example/november:1' }] } },
      },
    } as KubernetesObject;
    await applyAsUser(c, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'november', namespace: ns } } as KubernetesObject);
    await applyAsUser(c, deployment);
    const apps = c.kc.makeApiClient(k8s.AppsV1Api);
    const before = await apps.readNamespacedDeployment({ namespace: ns, name: 'november' });
    // The local stand-in reloads, as the restarted pods would load the new Secret.
    await deploy(['november'], { november: { restart } });
    await applyAsUser(c, schedule('restarts', {
      targets: { names: ['november'] }, strategy: { canarySteps: [100], verification: { timeout: '30s' } },
    }, { 'lockstep.dev/rotate-now': 'r1' }) as unknown as KubernetesObject);
    const rs = await waitSchedule('restarts', 'Completed', (r) => r.status?.phase === 'Completed' && r.status.lastRotateNow === 'r1');
    const target = rs.status?.targets?.[0];
    expect(target?.restartedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const live = await apps.readNamespacedDeployment({ namespace: ns, name: 'november' });
    expect(live.spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']).toBe(target?.restartedAt);
    // The user's (GitOps) strategy is theirs: the restart rolls out with it, unchanged.
    expect(live.spec?.strategy).toEqual(before.spec?.strategy);
    const restarter = (live.metadata?.managedFields ?? []).filter((f) => JSON.stringify(f.fieldsV1 ?? {}).includes('restartedAt'));
    expect(restarter.length).toBeGreaterThan(0);
    for (const entry of restarter) expect(JSON.stringify(entry.fieldsV1)).not.toContain('f:strategy');
    await retire(['november']);
  }, 120_000);

  it('a restart the API refuses (a misspelled workload) ends the rotation at once with the reason, previous certificate restored', async () => {
    await deploy(['oscar'], { oscar: { restart: { kind: 'Deployment', name: 'oscar-typo', hotReload: false } } });
    const before = await serial('oscar');
    await applyAsUser(c, schedule('typo', {
      targets: { names: ['oscar'] }, strategy: { canarySteps: [100], verification: { timeout: '5m' } },
    }, { 'lockstep.dev/rotate-now': 't1' }) as unknown as KubernetesObject);
    const started = Date.now();
    const rs = await waitSchedule('typo', 'RolledBack', (r) => r.status?.phase === 'RolledBack' && r.status.lastRotateNow === 't1');
    // Long before the 5m timeout: a refused restart is not retried.
    expect(Date.now() - started).toBeLessThan(90_000);
    expect(rs.status?.failure).toMatchObject({ reason: 'RestartFailed', message: expect.stringMatching(/oscar-typo/) });
    expect(await serial('oscar')).toBe(before);
    await retire(['oscar']);
  }, 150_000);
});

describe('when rotations start', () => {
  const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

  it('a due scheduled rotation waits for its maintenance window, and runs inside one', async () => {
    await deploy(['echo', 'foxtrot']);
    const echoBefore = await serial('echo');
    const laterStart = Date.now() + 2 * 3_600_000;
    // Every minute, but only in a window two hours from now...
    await applyAsUser(c, schedule('window-later', {
      targets: { names: ['echo'] },
      schedule: { cron: '* * * * *', maintenanceWindows: [{ start: hhmm(laterStart), duration: '15m' }] },
      strategy: { canarySteps: [100], verification: { timeout: '30s' } },
    }) as unknown as KubernetesObject);
    // ...and every minute in a window that opened a minute ago.
    await applyAsUser(c, schedule('window-now', {
      targets: { names: ['foxtrot'] },
      schedule: { cron: '* * * * *', maintenanceWindows: [{ start: hhmm(Date.now() - 60_000), duration: '1h' }] },
      strategy: { canarySteps: [100], verification: { timeout: '30s' } },
    }) as unknown as KubernetesObject);

    const inside = await waitSchedule('window-now', 'a scheduled rotation completed', (r) => r.status?.history?.[0]?.outcome === 'Completed', 120_000);
    expect(inside.status?.history?.[0]?.trigger).toBe('Schedule');

    // By now the every-minute schedule of window-later has been due for a while.
    const created = Date.parse(String((await readSchedule('window-later')).metadata.creationTimestamp));
    await sleep(Math.max(0, created + 65_000 - Date.now()));
    const waiting = await readSchedule('window-later');
    expect(waiting.status?.history ?? []).toEqual([]);
    expect(waiting.status?.phase).toBe('Idle');
    expect(hhmm(Date.parse(waiting.status?.nextRotation ?? ''))).toBe(hhmm(laterStart));
    expect(waiting.status?.conditions?.find((x) => x.type === 'Rotating')).toMatchObject({ status: 'False', reason: 'RotationScheduled' });
    expect(await serial('echo')).toBe(echoBefore);
    await c.custom.deleteNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', namespace: ns, plural: 'rotationschedules', name: 'window-now' });
    await retire(['echo', 'foxtrot']);
  }, 240_000);

  it('pause holds a requested rotation, stops a running one between steps, and resume continues it', async () => {
    await deploy(['golf', 'hotel']);
    const hotelBefore = await serial('hotel');
    await applyAsUser(c, schedule('pausable', {
      targets: { names: ['golf', 'hotel'] },
      strategy: { canarySteps: [50, 100], pauseBetweenSteps: '10s', verification: { timeout: '30s' } },
    }, { 'lockstep.dev/paused': 'true', 'lockstep.dev/rotate-now': 'p1' }) as unknown as KubernetesObject);

    await waitSchedule('pausable', 'Paused', (r) => r.status?.phase === 'Paused');
    await sleep(3_000);
    const held = await readSchedule('pausable');
    expect(held.status?.phase).toBe('Paused');
    expect(held.status?.lastRotateNow).toBeUndefined();
    expect(held.status?.conditions?.find((x) => x.type === 'Rotating')).toMatchObject({ status: 'False', reason: 'RotationPaused' });

    await annotate('pausable', { 'lockstep.dev/paused': null });
    await waitSchedule('pausable', 'canary step verified', (r) => r.status?.lastRotateNow === 'p1' && r.status.currentStep === 1);
    await annotate('pausable', { 'lockstep.dev/paused': 'true' });
    const paused = await waitSchedule('pausable', 'paused between steps', (r) => r.status?.phase === 'Paused');
    expect(paused.status?.targets?.map((t) => [t.name, t.phase])).toEqual([['golf', 'Succeeded'], ['hotel', 'Pending']]);
    // Well past the 10s pause between steps: still held, hotel untouched.
    await sleep(12_000);
    expect((await readSchedule('pausable')).status?.phase).toBe('Paused');
    expect(await serial('hotel')).toBe(hotelBefore);

    await annotate('pausable', { 'lockstep.dev/paused': null });
    const done = await waitSchedule('pausable', 'Completed', (r) => r.status?.phase === 'Completed');
    expect(done.status?.targets?.map((t) => [t.name, t.phase])).toEqual([['golf', 'Succeeded'], ['hotel', 'Succeeded']]);
    expect(await serial('hotel')).not.toBe(hotelBefore);
    await retire(['golf', 'hotel']);
  }, 180_000);

  it('emergency rotates at once, ignoring the pause annotation, windows and the pause between steps, once', async () => {
    await deploy(['india', 'juliet']);
    const before = { india: await serial('india'), juliet: await serial('juliet') };
    await applyAsUser(c, schedule('compromise', {
      targets: { names: ['india', 'juliet'] },
      emergency: true,
      schedule: { interval: '24h', maintenanceWindows: [{ start: hhmm(Date.now() + 2 * 3_600_000), duration: '15m' }] },
      strategy: { canarySteps: [50, 100], pauseBetweenSteps: '1h', autoRollback: false, verification: { timeout: '30s' } },
    }, { 'lockstep.dev/paused': 'true' }) as unknown as KubernetesObject);

    const rs = await waitSchedule('compromise', 'emergency rotation completed', (r) => r.status?.history?.[0]?.outcome === 'Completed', 90_000);
    expect(rs.status?.history?.[0]?.trigger).toBe('Emergency');
    expect(rs.status?.emergencyGeneration).toBe(rs.metadata.generation);
    expect(await serial('india')).not.toBe(before.india);
    expect(await serial('juliet')).not.toBe(before.juliet);
    await sleep(3_000);
    expect((await readSchedule('compromise')).status?.history).toHaveLength(1);
    await retire(['india', 'juliet']);
  }, 120_000);
});

describe('no key material leaks', () => {
  it('no private key of a rotated service appears in the operator logs, Events or RotationSchedule status', async () => {
    const secrets = (await c.core.listNamespacedSecret({ namespace: ns })).items;
    const keys = secrets.flatMap((s) => [s.data?.['tls.key']].filter((k): k is string => !!k));
    expect(keys.length).toBeGreaterThan(0);
    // Both encodings: the Secret's base64, and the PEM body a log line could carry.
    const needles = keys.flatMap((k) => [k.slice(0, 48), Buffer.from(k, 'base64').toString('utf8').split('\n')[1] ?? 'x'.repeat(64)]);
    const events = JSON.stringify((await c.kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns })).items);
    const schedules = JSON.stringify(await c.custom.listNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', namespace: ns, plural: 'rotationschedules' }));
    const logs = operator.logs();
    for (const needle of needles) {
      expect(logs).not.toContain(needle);
      expect(events).not.toContain(needle);
      expect(schedules).not.toContain(needle);
    }
  });
});

describe('CA rotation with overlap', () => {
  const rootsIn = () => rig.bundleRoots();

  it('completes with the operator killed at each stage in turn: zero failed handshakes, no root dropped while a certificate chains to it', async () => {
    // From here on the operator runs as a child process that can be SIGKILLed like a crashed pod.
    await operator.stop();
    child = startChild();
    await rig.testRootIssuer('rotation e2e root');
    const names = ['kilo', 'lima', 'mike'];
    await deploy(names, {}, 'rot-ca');

    // Invariant, checked all along: every service's certificate chains to a root in the bundle.
    const chains = rig.chainChecker(names);
    let chained = { checks: 0, violations: 0 };
    const client = new HandshakeClient(c, ns, 'kilo', () => names.map((n) => workloads.get(n)!), 30);
    await client.start();

    const kills: string[] = [];
    const order = ['AddRoot', 'VerifyTrust', 'ReissueLeaves', 'VerifyLeaves', 'Overlap', 'DropOldRoot', 'Done'];
    // Overlap is zero-length in emergency mode; the next test kills the operator during a real one.
    const stages = ['AddRoot', 'VerifyTrust', 'ReissueLeaves', 'DropOldRoot'];
    let previousId: string | undefined;
    let rotations = 0;
    try {
      for (const stage of stages) {
        // A stage can pass between two polls: try again with the next rotation (at most 3 times).
        for (let attempt = 0; attempt < 3 && kills.at(-1) !== stage; attempt++) {
          if (rotations++ === 0) {
            // Emergency: rotates at once with the shortest overlap (the old root goes once every leaf moved).
            await applyAsUser(c, schedule('ca', {
              targets: { names }, rotate: ['ca', 'certificates'], emergency: true,
              ca: { issuerRef: { name: 'rot-ca', kind: 'Issuer' }, overlap: '1h' },
              strategy: { canarySteps: [34, 100], maxInFlight: 2, pauseBetweenSteps: '1s', autoRollback: false, verification: { timeout: '60s' } },
            }) as unknown as KubernetesObject);
          } else {
            await annotate('ca', { 'lockstep.dev/rotate-now': `again-${rotations}` });
          }
          const seen = await eventually(`CA rotation ${rotations} at ${stage}`, async () => {
            const rs = await readSchedule('ca');
            const id = rs.status?.rotationId;
            if (!id || id === previousId) return undefined;
            const at = rs.status?.phase === 'Completed' ? 'Done' : (rs.status?.ca?.stage ?? '');
            return order.indexOf(at) >= order.indexOf(stage) ? { id, at } : undefined;
          }, 120_000, 50);
          await child.kill();
          kills.push(seen.at);
          const oldRootSerial = (await readSchedule('ca')).status?.ca?.oldRootSerial;
          child = startChild();
          const done = await waitSchedule('ca', `rotation ${seen.id} completed`, (r) => r.status?.history?.[0]?.rotationId === seen.id, 150_000);
          if (done.status?.history?.[0]?.outcome !== 'Completed') console.log(`rotation ${seen.id} after a kill at ${seen.at}: ${JSON.stringify({ history: done.status?.history?.[0], failure: done.status?.failure, ca: done.status?.ca })}`);
          expect(done.status?.history?.[0]?.outcome).toBe('Completed');
          expect(done.status?.ca?.stage).toBe('Done');
          const serials = (await rootsIn()).map(serialOfPem);
          expect(serials).toContain(done.status?.ca?.newRootSerial);
          expect(serials).not.toContain(oldRootSerial);
          for (const n of names) expect(workloads.get(n)?.servedSerial).toBe(await serial(n));
          previousId = seen.id;
        }
      }
    } finally {
      chained = await chains.stop();
      await client.stop();
    }
    const { checks, violations } = chained;
    const counts = client.counts;
    const rate = counts.ok / (counts.elapsedMs / 1000);
    console.log(`CA rotations with the operator killed at ${kills.join(', ')}: mTLS handshakes ${counts.ok} succeeded, ${counts.failed} failed, ${rate.toFixed(1)}/s over ${(counts.elapsedMs / 1000).toFixed(1)}s${stallNote(counts)}; chain-to-bundle checks ${checks}, violations ${violations}${counts.errors.length ? `; errors: ${counts.errors.join(' | ')}` : ''}`);
    for (const stage of stages) expect(kills).toContain(stage);
    expect(counts.failed).toBe(0);
    expect(rate).toBeGreaterThanOrEqual(10);
    expect(violations).toBe(0);
    expect(checks).toBeGreaterThan(0);
  }, 600_000);

  it('outside emergency mode both roots stay published for the overlap after every leaf moved', async () => {
    const names = ['kilo', 'lima', 'mike'];
    const before = (await rootsIn()).map(serialOfPem);
    await applyAsUser(c, schedule('ca', {
      targets: { names }, rotate: ['ca', 'certificates'],
      ca: { issuerRef: { name: 'rot-ca', kind: 'Issuer' }, overlap: '1h' },
      strategy: { canarySteps: [34, 100], maxInFlight: 2, pauseBetweenSteps: '1s', verification: { timeout: '60s' } },
    }, { 'lockstep.dev/rotate-now': 'with-overlap' }) as unknown as KubernetesObject);
    const rs = await waitSchedule('ca', 'in overlap', (r) => r.status?.lastRotateNow === 'with-overlap' && r.status.ca?.stage === 'Overlap', 120_000);
    const endsIn = Date.parse(rs.status?.ca?.overlapEndsAt ?? '') - Date.now();
    expect(endsIn).toBeGreaterThan(55 * 60_000);
    expect(endsIn).toBeLessThanOrEqual(3_600_000);
    const roots = (await rootsIn()).map(serialOfPem);
    expect(roots).toEqual(expect.arrayContaining([...before, rs.status?.ca?.newRootSerial]));
    expect(roots).toContain(rs.status?.ca?.oldRootSerial);
    // Every leaf already comes from the new root, yet the old one stays trusted.
    for (const n of names) expect(rs.status?.targets?.find((t) => t.name === n)?.phase).toBe('Succeeded');
    expect(rs.status?.phase).toBe('Verifying');
    expect(rs.status?.conditions?.find((x) => x.type === 'Rotating')).toMatchObject({ status: 'True', reason: 'RotationInProgress' });

    // Killed during the overlap: the restarted operator keeps waiting for the same end, both roots kept.
    await child?.kill();
    child = startChild();
    await sleep(8_000);
    const after = await readSchedule('ca');
    expect(after.status?.ca?.stage).toBe('Overlap');
    expect(after.status?.ca?.overlapEndsAt).toBe(rs.status?.ca?.overlapEndsAt);
    expect((await rootsIn()).map(serialOfPem)).toEqual(expect.arrayContaining([rs.status?.ca?.oldRootSerial, rs.status?.ca?.newRootSerial]));
  }, 180_000);
});

describe("a KeyPolicy's managed CA", () => {
  it('is rotated by a schedule beside the policy, and its reconciler keeps the issuer on the new CA', async () => {
    // The CA rotation above stays in its overlap: it holds this namespace's bundle until it ends.
    await c.custom.deleteNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', namespace: ns, plural: 'rotationschedules', name: 'ca' }).catch(() => undefined);
    const policy = {
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'managed', namespace: ns },
      spec: { keyWrap: { algorithm: 'A256KW' }, certificates: { defaultIssuer: { managedCA: { commonName: 'e2e managed root' } } } },
    };
    await applyAsUser(c, policy as unknown as KubernetesObject);
    await deploy(['uniform'], { uniform: { keyPolicy: 'managed' } });
    const issuerName = managedCAIssuerName(ns, 'managed');
    const issuerSecret = async () => ((await c.custom.getClusterCustomObject({ group: 'cert-manager.io', version: 'v1', plural: 'clusterissuers', name: issuerName })) as { spec?: { ca?: { secretName?: string } } }).spec?.ca?.secretName;
    // The service is issued by the policy's own CA (not a leftover Secret of an earlier service).
    await eventually('uniform issued by the managed CA', async () => {
      const cert = await c.custom.getNamespacedCustomObject({ group: 'cert-manager.io', version: 'v1', namespace: ns, plural: 'certificates', name: 'uniform' }) as { spec?: { issuerRef?: { name?: string } }; status?: { conditions?: { type: string; status: string }[] } };
      return cert.spec?.issuerRef?.name === issuerName && cert.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ? true : undefined;
    }, 90_000);
    const firstSecret = await issuerSecret();
    const before = await serial('uniform');

    await applyAsUser(c, schedule('managed-ca', {
      targets: { names: ['uniform'] }, rotate: ['ca', 'certificates'], emergency: true,
      ca: { overlap: '1h' },
      strategy: { canarySteps: [100], autoRollback: false, verification: { timeout: '60s' } },
    }) as unknown as KubernetesObject);
    const rs = await waitSchedule('managed-ca', 'Completed', (r) => r.status?.history?.[0]?.outcome !== undefined, 180_000);
    expect(rs.status?.history?.[0]).toMatchObject({ outcome: 'Completed' });
    expect(rs.status?.ca?.secretName).toMatch(/^lockstep-ca-/);
    expect(rs.status?.ca?.previousSecretName).toBe(firstSecret);
    // The KeyPolicy reconciler owns the issuer; after it reconciled again, the issuer still signs with the new CA.
    await annotateKeyPolicy('managed', { 'e2e.lockstep.dev/touch': String(Date.now()) });
    await sleep(5_000);
    expect(await issuerSecret()).toBe(rs.status?.ca?.secretName);
    expect(await serial('uniform')).not.toBe(before);
    expect(workloads.get('uniform')?.servedSerial).toBe(await serial('uniform'));
  }, 300_000);
});

async function annotateKeyPolicy(name: string, annotations: Record<string, string>): Promise<void> {
  await c.custom.patchNamespacedCustomObject(
    { group: 'lockstep.dev', version: 'v1alpha1', namespace: ns, plural: 'keypolicies', name, body: { metadata: { annotations } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
}
