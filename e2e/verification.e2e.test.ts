// Continuous verification on the real API server, etcd and cert-manager: mTLS servers in this
// process stand in for workloads (Services without selectors, hand-made EndpointSlices), and the
// operator runs as a child process (killed like a crashed pod) probing every few seconds.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EncryptedService, KeyPolicy } from '../operator/api/v1alpha1/index.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, condition, installCrds, readService, renewCertificate } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startChild, type ChildOperator } from './harness/operator.js';
import { TlsWorkload, readMaterial, serialOfPem, workloadAddress, type WorkloadOptions } from './harness/tls-workload.js';

const c = clients();
const apps = c.kc.makeApiClient(k8s.AppsV1Api);
const eventsApi = c.kc.makeApiClient(k8s.EventsV1Api);
let ns = '';
let child: ChildOperator | undefined;
const workloads = new Map<string, TlsWorkload>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const PERIOD = '2s';
const GRACE_MS = 8_000;
const operatorEnv = { LOCKSTEP_VERIFY_PERIOD: PERIOD, LOCKSTEP_VERIFY_GRACE: `${GRACE_MS / 1000}s`, LOCKSTEP_LOG_LEVEL: 'info' };

function service(name: string, restart?: object): EncryptedService {
  return {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService',
    metadata: { name, namespace: ns },
    spec: {
      workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name, ...(restart ? { restart } : {}) },
      ports: [{ name: 'https', port: 443 }], keyPolicyRef: { name: 'verification' },
    },
  } as EncryptedService;
}

async function deploy(name: string, options: WorkloadOptions = {}, restart?: object): Promise<TlsWorkload> {
  await applyAsUser(c, service(name, restart) as unknown as KubernetesObject);
  await eventually(`${name} issued`, async () => ((await readMaterial(c, ns, name).catch(() => undefined)) ? true : undefined), 90_000);
  const workload = new TlsWorkload(c, ns, name, workloadAddress(), options);
  await workload.start();
  workloads.set(name, workload);
  for (const obj of workload.objects()) await applyAsUser(c, obj);
  return workload;
}

async function waitVerified(name: string, status: string, reason: string, timeoutMs = 60_000): Promise<EncryptedService> {
  return eventually(`${name} Verified=${status} (${reason})`, async () => {
    const es = await readService(c, ns, name);
    const v = condition(es, 'Verified');
    return v?.status === status && v.reason === reason ? es : undefined;
  }, timeoutMs);
}

const renew = (name: string): Promise<void> => renewCertificate(c, ns, name);

/** Managers owning the condition of `type` in status.conditions. */
function ownersOfCondition(es: EncryptedService, type: string): string[] {
  const key = `k:{"type":"${type}"}`;
  return (es.metadata.managedFields ?? [])
    .filter((m) => m.subresource === 'status' && JSON.stringify(m.fieldsV1 ?? {}).includes(JSON.stringify(key).slice(1, -1)))
    .map((m) => m.manager ?? '');
}

beforeAll(async () => {
  installCrds();
  ns = await createTestNamespace(c, 'e2e-verification');
  const policy = { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'verification', namespace: ns }, spec: { keyWrap: { algorithm: 'A256KW' } } } as KeyPolicy;
  await applyAsUser(c, policy as unknown as KubernetesObject);
  child = startChild(operatorEnv);
}, 120_000);

afterAll(async () => {
  // The operator first: one left running would reconcile alongside the next test files' operators
  // (stop 21's CI: doubled KEK rotations, flapping NetworkPolicies), and it keeps probing the workloads.
  await child?.stop();
  for (const w of workloads.values()) await w.stop();
  await deleteTestNamespace(c, ns);
});

describe('continuous verification', () => {
  it('reports Verified=True for a service serving its current certificate; the two status writers keep each other\'s conditions', async () => {
    await deploy('good');
    let es = await waitVerified('good', 'True', 'Verified');
    expect(condition(es, 'Verified')?.message).toContain(serialOfPem((await readMaterial(c, ns, 'good'))!.cert));
    expect(condition(es, 'Ready')?.status).toBe('True');
    // Each condition is owned by its writer alone: a copy applied by the other would be forced
    // back over newer values.
    expect(ownersOfCondition(es, 'Verified')).toEqual(['lockstep-verifier']);
    expect(ownersOfCondition(es, 'Ready')).toEqual(['lockstep-operator']);

    // The EncryptedService reconciler writes status for a new generation; Verified stays.
    const generation = es.metadata.generation ?? 0;
    await applyAsUser(c, { ...service('good'), spec: { ...service('good').spec, deletionPolicy: 'Delete' } } as unknown as KubernetesObject);
    es = await eventually('good status for the new generation, Verified re-stamped', async () => {
      const now = await readService(c, ns, 'good');
      const v = condition(now, 'Verified');
      return now.status?.observedGeneration === generation + 1 && v?.observedGeneration === generation + 1 ? now : undefined;
    }, 30_000);
    expect(condition(es, 'Verified')).toMatchObject({ status: 'True', reason: 'Verified' });
    expect(condition(es, 'Ready')).toMatchObject({ status: 'True', observedGeneration: generation + 1 });
    expect(es.status?.conditions?.map((x) => x.type).sort()).toEqual(['AccessReady', 'AtRestReady', 'Degraded', 'Ready', 'SecretsReady', 'TransitReady', 'Verified']);
    expect(ownersOfCondition(es, 'Verified')).toEqual(['lockstep-verifier']);
  }, 150_000);

  it('writes nothing for a new service whose certificate cannot be issued yet: Ready says why, one status writer', async () => {
    const waiting = { ...service('waiting'), spec: { ...service('waiting').spec, keyPolicyRef: { name: 'absent' } } };
    await applyAsUser(c, waiting as unknown as KubernetesObject);
    const es = await eventually('waiting reports its missing KeyPolicy', async () => {
      const now = await readService(c, ns, 'waiting');
      return condition(now, 'Ready')?.status === 'False' ? now : undefined;
    }, 30_000);
    expect(condition(es, 'Ready')?.message).toContain('absent');
    // Several verifier periods: each looks at the service and finds nothing to say.
    await sleep(4 * 2_000 + 2_000);
    const later = await readService(c, ns, 'waiting');
    expect(condition(later, 'Verified')).toBeUndefined();
    expect((later.metadata.managedFields ?? []).filter((m) => m.subresource === 'status').map((m) => m.manager)).toEqual(['lockstep-operator']);
  }, 60_000);

  it('reports MTLSNotEnforced for a server that completes sessions without a client certificate', async () => {
    await deploy('open', { requireClientCert: false });
    const es = await waitVerified('open', 'False', 'MTLSNotEnforced');
    expect(condition(es, 'Verified')?.message).toMatch(/^\d+\.\d+\.\d+\.\d+:\d+: accepts a client that presents no certificate$/);
  }, 150_000);

  it('reports PlaintextAccepted for a TLS port that also answers plaintext HTTP', async () => {
    await deploy('plain', { acceptPlaintext: true });
    const es = await waitVerified('plain', 'False', 'PlaintextAccepted');
    expect(condition(es, 'Verified')?.message).toContain('HTTP/1.1 200 OK');
  }, 150_000);

  it('reports a workload still serving a renewed certificate as stale, restarts its Deployment once after the grace period, and not again after an operator crash', async () => {
    const restart = { kind: 'Deployment', name: 'stale-app', hotReload: false, maxUnavailable: 1 };
    // Its pods (on a cluster with a node) run as the service's account, or the operator would not
    // issue or renew the service's identity.
    await applyAsUser(c, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'stale', namespace: ns } } as KubernetesObject);
    await applyAsUser(c, {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'stale-app', namespace: ns },
      spec: {
        replicas: 1, selector: { matchLabels: { app: 'stale' } },
        template: { metadata: { labels: { app: 'stale' } }, spec: { serviceAccountName: 'stale', containers: [{ name: 'app', image: 'example.invalid/app:1' }] } },
      },
    } as KubernetesObject);
    const workload = await deploy('stale', { hotReload: false }, restart);
    await waitVerified('stale', 'True', 'Verified');
    const old = workload.servedSerial;

    await renew('stale');
    const renewed = await eventually('stale renewed by cert-manager', async () => {
      const m = await readMaterial(c, ns, 'stale');
      const serial = m ? serialOfPem(m.cert) : undefined;
      return serial && serial !== old ? serial : undefined;
    }, 60_000);
    const renewedAt = Date.now();
    expect(workload.servedSerial).toBe(old);

    const es = await waitVerified('stale', 'False', 'ServingStaleCertificate', 60_000);
    expect(condition(es, 'Verified')?.message).toContain(`serves ${old}, replaced by ${renewed}`);
    const restarted = await eventually('stale-app restarted', async () => {
      const d = await apps.readNamespacedDeployment({ namespace: ns, name: 'stale-app' });
      const value = d.spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt'];
      return value ? { value, generation: d.metadata?.generation ?? 0, at: Date.now() } : undefined;
    }, 60_000);
    // Not before the grace period (counted from the certificate's issuance, so at most this late).
    expect(restarted.at - renewedAt).toBeGreaterThanOrEqual(GRACE_MS - 3_000);
    const recorded = await readService(c, ns, 'stale');
    expect(recorded.status?.verification).toEqual({ restartedForSerial: renewed, restartedAt: restarted.value });

    // The restarted process has no memory of the restart but status: a new restart would
    // write a new restartedAt and a new Deployment generation.
    await sleep(4_000);
    await child!.kill();
    child = startChild(operatorEnv);
    await eventually('the new operator verifying', async () => (/controller started.*"controller":"verification"|"controller":"verification".*controller started/.test(child!.logs()) ? true : undefined), 60_000);
    // Its first probe of every service is due at once; several periods pass.
    await sleep(4 * 2_000 + 2_000);
    const after = await apps.readNamespacedDeployment({ namespace: ns, name: 'stale-app' });
    expect(after.spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']).toBe(restarted.value);
    expect(after.metadata?.generation).toBe(restarted.generation);
    const events = (await eventsApi.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.regarding?.name === 'stale');
    const restartEvents = events.filter((e) => e.reason === 'WorkloadRestarted');
    expect(restartEvents).toHaveLength(1);
    expect(restartEvents[0]?.series).toBeUndefined();
    // Events on a changed verdict, not on every probe (a dozen probes saw the same one), also
    // from the second operator.
    const staleEvents = events.filter((e) => e.reason === 'ServingStaleCertificate');
    expect(staleEvents.map((e) => [e.type, e.series?.count])).toEqual([['Warning', undefined]]);
    // Still stale (no pod runs here to pick the new certificate up), still reported, no second restart.
    expect(condition(await readService(c, ns, 'stale'), 'Verified')).toMatchObject({ status: 'False', reason: 'ServingStaleCertificate' });
  }, 240_000);
});
