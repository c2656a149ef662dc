// The monitoring pack's alerts, evaluated by Prometheus's own rule engine (e2e/promrules: the rule
// manager, PromQL engine, TSDB and scrape parser that `promtool test rules` uses) on scrapes of the
// real operator's /metrics, recorded while it runs on the real API server with cert-manager:
// each alert must become active for the objects in a bad state and stay quiet for the good ones.
// Workloads are mutual-TLS servers on this host (e2e/harness/tls-workload.ts) behind hand-made
// EndpointSlices, probed by the operator's continuous verification; no node is needed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { clusterRules, leaderElectionRules, toPolicyRules } from '../manifests-app/rbac.js';
import { buildPromrules, everActive, evaluate as evaluateRules, matches, ruleFile, scrape, stateAtEnd, type Evaluation, type Scrape } from './harness/alert-rules.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, deleteNamespaceAndFinalize, installCrds, renewCertificate } from './harness/lockstep.js';
import { createTestNamespace } from './harness/namespace.js';
import { OPERATOR_NAMESPACE, operatorAccountConfig } from './harness/operator-account.js';
import { externalOperator, startInProcess, type RunningOperator } from './harness/operator.js';
import { TlsWorkload, readMaterial, serialOfPem, workloadAddress, type WorkloadOptions } from './harness/tls-workload.js';

const c = clients();
let ns: string;
let work: string;
let promrules: string;
const operators: (RunningOperator & { operator?: { manager: { healthPort(): number | undefined } } })[] = [];
const workloads: TlsWorkload[] = [];
/** Probes every 2 s; a replaced certificate may be served for 10 minutes before it counts as stale. */
const VERIFICATION = { periodMs: 2_000, graceMs: 10 * 60_000, concurrency: 4, maxRestartsPerPeriod: 5 };

/** A scrape of this operator's /metrics. */
const scrapeOf = (op: (typeof operators)[number]): Promise<Scrape> => scrape(op.operator?.manager.healthPort());

async function record(op: (typeof operators)[number], count: number, everyMs = 2_000): Promise<Scrape[]> {
  const out: Scrape[] = [];
  for (let i = 0; i < count; i++) {
    out.push(await scrapeOf(op));
    if (i < count - 1) await new Promise((r) => setTimeout(r, everyMs));
  }
  return out;
}

const evaluate = (scrapes: Scrape[], holdMs: number): Evaluation[] => evaluateRules(promrules, work, scrapes, holdMs);

/** `controller/reason` of every LockstepReconcileErrors alert active at some evaluation. */
const failingControllers = (evals: Evaluation[]) =>
  [...new Set(evals.flatMap((e) => e.alerts).filter((a) => matches(a, 'LockstepReconcileErrors', {})).map((a) => `${a.labels['controller']}/${a.labels['reason']}`))].sort();

const policy = (name: string, managedCA: object): KubernetesObject => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name, namespace: ns },
  spec: { certificates: { maxDuration: '48h', defaultIssuer: { managedCA } }, allowed: { namespaces: [ns] } },
} as KubernetesObject);
const service = (name: string, keyPolicy: string, transit?: object): KubernetesObject => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace: ns },
  spec: {
    workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name },
    ports: [{ name: 'https', port: 8443 }], keyPolicyRef: { name: keyPolicy }, ...(transit ? { transit } : {}),
  },
} as KubernetesObject);

/** Serves `name`'s issued certificate from this host, behind a Service and EndpointSlice of its own. */
async function serve(name: string, options: WorkloadOptions = {}): Promise<TlsWorkload> {
  await eventually(`${name} issued`, async () => ((await readMaterial(c, ns, name).catch(() => undefined)) ? true : undefined), 90_000, 500);
  const workload = new TlsWorkload(c, ns, name, workloadAddress(), options);
  await workload.start();
  workloads.push(workload);
  for (const obj of workload.objects()) await applyAsUser(c, obj);
  return workload;
}

/** Rotates the named services' certificates when `rotateNow` is given, else waits for a schedule it does not have. */
const rotation = (name: string, targets: string[], rotateNow?: string): KubernetesObject => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule',
  metadata: { name, namespace: ns, ...(rotateNow ? { annotations: { 'lockstep.dev/rotate-now': rotateNow } } : {}) },
  spec: { targets: { names: targets }, rotate: ['certificates'], strategy: { verification: { timeout: '10s' } } },
} as KubernetesObject);

/** The name of the roles (and bindings) of an operator identity that may not patch NetworkPolicies. */
const limitedRole = () => `e2e-monitoring-limited-${ns}`;
const RBAC = 'rbac.authorization.k8s.io/v1';

/**
 * A ServiceAccount with the install's permissions (its ClusterRole, and its Role in the operator's
 * namespace), less `patch` on NetworkPolicies unless `full`. It lives in the operator's namespace:
 * in the test's own, its token would die with the namespace before the operator finalized it.
 */
function limitedIdentity(full = false): KubernetesObject[] {
  const rules = toPolicyRules(clusterRules).map((r) => (r.resources?.includes('networkpolicies') && !full ? { ...r, verbs: r.verbs.filter((v) => v !== 'patch') } : r));
  const inOperatorNs = { name: limitedRole(), namespace: OPERATOR_NAMESPACE };
  const subjects = [{ kind: 'ServiceAccount', ...inOperatorNs }];
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPERATOR_NAMESPACE } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: inOperatorNs },
    { apiVersion: RBAC, kind: 'ClusterRole', metadata: { name: limitedRole() }, rules },
    { apiVersion: RBAC, kind: 'ClusterRoleBinding', metadata: { name: limitedRole() }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: limitedRole() }, subjects },
    { apiVersion: RBAC, kind: 'Role', metadata: inOperatorNs, rules: toPolicyRules(leaderElectionRules) },
    { apiVersion: RBAC, kind: 'RoleBinding', metadata: inOperatorNs, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: limitedRole() }, subjects },
  ] as KubernetesObject[];
}

beforeAll(async () => {
  if (externalOperator) return;
  work = mkdtempSync(join(tmpdir(), 'lockstep-monitoring-'));
  promrules = buildPromrules();
  installCrds();
  ns = await createTestNamespace(c, 'e2e-monitoring');
  operators.push(startInProcess(c.kc, { verification: VERIFICATION }));
}, 600_000);

afterAll(async () => {
  if (externalOperator) return;
  await deleteNamespaceAndFinalize(c, ns);
  for (const op of operators) await op.stop();
  for (const w of workloads) await w.stop();
  for (const obj of limitedIdentity().filter((o) => o.kind !== 'Namespace')) await c.objects.delete(obj).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

describe('alerts on the real /metrics', () => {
  (externalOperator ? it.skip : it)('rule file passes promtool check rules', () => {
    const run = spawnSync(promrules, ['check', ruleFile(work)], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  (externalOperator ? it.skip : it)('each alert is active for the objects in a bad state and quiet for the good ones', async () => {
    // A CA expiring within 30 days and one for a year; a certificate of 1h and one of 24h; a
    // service whose KeyPolicy does not exist (never Ready).
    await applyAsUser(c, policy('shortca', { commonName: `e2e monitoring short ${ns}`, duration: '720h' }));
    await applyAsUser(c, policy('longca', { commonName: `e2e monitoring long ${ns}` }));
    await applyAsUser(c, service('brief', 'longca', { duration: '1h', renewBefore: '10m' }));
    await applyAsUser(c, service('steady', 'longca', { duration: '24h', renewBefore: '8h' }));
    await applyAsUser(c, service('orphan', 'missing'));
    // A rotation that cannot be verified (no workload serves 'lonely') ends rolled back; 'calm' never runs.
    await applyAsUser(c, service('lonely', 'longca', { duration: '24h', renewBefore: '8h' }));
    await applyAsUser(c, rotation('doomed', ['lonely'], 'now'));
    await applyAsUser(c, rotation('calm', ['steady']));
    // Keys replaced every hour: in the held scrape nothing rotates them, so they grow overdue.
    await applyAsUser(c, { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'hourly', namespace: ns }, spec: { rotation: { period: '1h' } } } as KubernetesObject);
    // Workloads that continuous verification probes: 'open' completes sessions without a client
    // certificate; 'frozen' (1h) does not reload, and keeps serving its first certificate after a
    // renewal (drift, expiring within the hour); 'trusted' (1h too) serves what was issued.
    const short = { duration: '1h', renewBefore: '10m' };
    for (const name of ['open', 'frozen', 'trusted']) await applyAsUser(c, service(name, 'longca', name === 'open' ? undefined : short));
    await serve('open', { requireClientCert: false });
    const frozen = await serve('frozen', { hotReload: false });
    await serve('trusted');
    await renewCertificate(c, ns, 'frozen');
    await eventually('frozen renewed', async () => {
      const material = await readMaterial(c, ns, 'frozen');
      return material && serialOfPem(material.cert) !== frozen.servedSerial ? true : undefined;
    }, 60_000, 500);
    const op = operators[0]!;
    await eventually('CA and certificate expiry series of every object', async () => {
      const { text } = await scrapeOf(op);
      const want = [
        `lockstep_ca_expiry_timestamp_seconds{namespace="cert-manager",certificate="[^"]+",keypolicy="${ns}/shortca"}`,
        `lockstep_ca_expiry_timestamp_seconds{namespace="cert-manager",certificate="[^"]+",keypolicy="${ns}/longca"}`,
        `lockstep_certificate_expiry_timestamp_seconds{namespace="${ns}",service="brief"}`,
        `lockstep_certificate_renewal_timestamp_seconds{namespace="${ns}",service="brief"}`,
        `lockstep_certificate_expiry_timestamp_seconds{namespace="${ns}",service="steady"}`,
        `lockstep_resource_ready{kind="KeyPolicy",namespace="${ns}",name="longca"} 1`,
        `lockstep_rotation_phase{namespace="${ns}",name="doomed",phase="(Failed|RolledBack)"} 1`,
        `lockstep_rotation_phase{namespace="${ns}",name="calm",phase="Idle"} 1`,
        `lockstep_key_created_timestamp_seconds{namespace="${ns}",keypolicy="hourly",kid="[^"]+"}`,
        `lockstep_key_created_timestamp_seconds{namespace="${ns}",keypolicy="longca",kid="[^"]+"}`,
        `lockstep_verification_violations{namespace="${ns}",service="open",kind="mtls_not_enforced"} 1`,
        `lockstep_verification_violations{namespace="${ns}",service="trusted",kind="mtls_not_enforced"} 0`,
        `lockstep_served_certificate_drift_endpoints{namespace="${ns}",service="frozen"} 1`,
        `lockstep_served_certificate_drift_endpoints{namespace="${ns}",service="trusted"} 0`,
        `lockstep_served_certificate_days_to_expiry{namespace="${ns}",service="trusted"} 0\\.0`,
      ];
      return want.every((w) => new RegExp(w).test(text)) ? true : undefined;
    }, 150_000, 1_000);

    // The states hold: evaluate the recording, then the last scrape held for 140 minutes (the
    // longest for: is 1h; hourly's key is overdue once more than an hour past its 1h period, + 15m).
    const evals = evaluate(await record(op, 5), 140 * 60_000);
    const here = { namespace: ns };
    // brief (1h) always has less than an hour left: it alerts only once its renewal is overdue,
    // which the held scrape (nothing renewed for 70 minutes) reaches, and not before.
    expect(stateAtEnd(evals, 'LockstepCertificateExpiringSoon', { ...here, service: 'brief' })).toBe('firing');
    const brief = await c.objects.read({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name: 'brief', namespace: ns } }) as KubernetesObject & { status?: { certificate?: { renewalTime?: string } } };
    const renewalMs = Date.parse(brief.status?.certificate?.renewalTime ?? '');
    expect(Number.isNaN(renewalMs)).toBe(false);
    expect(everActive(evals.filter((e) => e.timeMs < renewalMs), 'LockstepCertificateExpiringSoon', { ...here, service: 'brief' })).toBe(false);
    expect(everActive(evals, 'LockstepCertificateExpiringSoon', { ...here, service: 'steady' })).toBe(false);
    expect(stateAtEnd(evals, 'LockstepCAExpiringSoon', { keypolicy: `${ns}/shortca` })).toBe('firing');
    expect(everActive(evals, 'LockstepCAExpiringSoon', { keypolicy: `${ns}/longca` })).toBe(false);
    expect(stateAtEnd(evals, 'LockstepResourceNotReady', { kind: 'EncryptedService', ...here, name: 'orphan' })).toBe('firing');
    expect(everActive(evals, 'LockstepResourceNotReady', { kind: 'KeyPolicy', ...here, name: 'longca' })).toBe(false);
    const firing = evals.at(-1)!.alerts.find((a) => matches(a, 'LockstepResourceNotReady', { name: 'orphan' }))!;
    expect(firing.annotations['summary']).toBe(`EncryptedService ${ns}/orphan is not Ready`);
    expect(firing.labels['severity']).toBe('warning');
    expect(stateAtEnd(evals, 'LockstepRotationFailed', { ...here, name: 'doomed' })).toBe('firing');
    expect(everActive(evals, 'LockstepRotationFailed', { ...here, name: 'calm' })).toBe(false);
    expect(stateAtEnd(evals, 'LockstepKeyOlderThanPeriod', { ...here, keypolicy: 'hourly' })).toBe('firing');
    expect(everActive(evals, 'LockstepKeyOlderThanPeriod', { ...here, keypolicy: 'longca' })).toBe(false);
    // An endpoint that does not require client certificates fails verification; the others pass.
    expect(stateAtEnd(evals, 'LockstepVerificationFailing', { ...here, service: 'open', kind: 'mtls_not_enforced' })).toBe('firing');
    expect(evals.at(-1)!.alerts.filter((a) => matches(a, 'LockstepVerificationFailing', here)).map((a) => a.labels['service'])).toEqual(['open']);
    // What frozen serves is not what was issued, and expires within the hour; trusted serves a
    // certificate as short, but the issued one (its renewal is cert-manager's business).
    expect(stateAtEnd(evals, 'LockstepServedCertificateExpiringSoon', { ...here, service: 'frozen' })).toBe('firing');
    expect(everActive(evals, 'LockstepServedCertificateExpiringSoon', { ...here, service: 'trusted' })).toBe(false);
    expect(everActive(evals, 'LockstepServedCertificateExpiringSoon', { ...here, service: 'open' })).toBe(false);
    // A leading operator: quiet.
    expect(everActive(evals, 'LockstepNoLeader')).toBe(false);
    // With every permission, the only object that keeps failing is orphan: retried until its KeyPolicy exists.
    expect(failingControllers(evals)).toEqual(['encryptedservice/KeyPolicyNotFound']);
  }, 300_000);

  (externalOperator ? it.skip : it)('LockstepNoLeader fires while no replica holds the Lease', async () => {
    // Another holder keeps the Lease: this replica runs, serves /metrics, and never leads.
    const leaseName = 'monitoring-e2e';
    await c.objects.create({
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: leaseName, namespace: ns },
      spec: { holderIdentity: 'someone-else', leaseDurationSeconds: 3600, renewTime: new Date().toISOString().replace('Z', '000Z') },
    } as KubernetesObject);
    const follower = startInProcess(c.kc, { leaderElection: { namespace: ns, leaseName } });
    operators.push(follower);
    await eventually('follower serves /metrics', async () => ((await scrapeOf(follower)).text.includes('lockstep_leader 0') ? true : undefined), 30_000, 500);
    const evals = evaluate(await record(follower, 3), 6 * 60_000);
    expect(everActive(evals.slice(0, 3), 'LockstepNoLeader')).toBe(true);
    expect(stateAtEnd(evals, 'LockstepNoLeader')).toBe('firing');

    const leading = evaluate(await record(operators[0]!, 3), 6 * 60_000);
    expect(everActive(leading, 'LockstepNoLeader')).toBe(false);
  }, 120_000);

  (externalOperator ? it.skip : it)('LockstepReconcileErrors fires while an object keeps failing, not for other controllers, and not once the identity is fixed', async () => {
    // The only operator now runs as an identity that may not patch NetworkPolicies: every
    // reconcile of a new EncryptedService has that write refused (server-side apply is a patch),
    // reports ChildRefused and is retried.
    for (const op of operators.splice(0)) await op.stop();
    for (const obj of limitedIdentity()) await applyAsUser(c, obj);
    const limited = startInProcess(operatorAccountConfig(c.kc, { namespace: OPERATOR_NAMESPACE, name: limitedRole() }));
    operators.push(limited);
    await applyAsUser(c, service('refused', 'longca'));
    const refused = { controller: 'encryptedservice', reason: 'ChildRefused' };
    const failingNow = (text: string) => /lockstep_reconcile_failing_objects\{controller="encryptedservice",reason="ChildRefused"\} (\d+)/.exec(text)?.[1];
    await eventually('refused reconciles waiting for a retry', async () => (failingNow((await scrapeOf(limited)).text) === '1' ? true : undefined), 60_000, 500);
    const failing = await record(limited, 3);
    const held = evaluate(failing, 20 * 60_000);
    expect(stateAtEnd(held, 'LockstepReconcileErrors', refused)).toBe('firing');
    const firing = held.at(-1)!.alerts.find((a) => matches(a, 'LockstepReconcileErrors', refused))!;
    expect(firing.annotations['summary']).toBe('Lockstep encryptedservice reconciles keep failing (ChildRefused)');
    // The KeyPolicy controller reconciles longca, shortca and hourly with the same identity: quiet
    // (orphan still waits for its KeyPolicy).
    expect(failingControllers(held)).toEqual(['encryptedservice/ChildRefused', 'encryptedservice/KeyPolicyNotFound']);

    // The identity gets its patch back; a change to the service makes the waiting retry come now.
    for (const obj of limitedIdentity(true)) await applyAsUser(c, obj);
    await applyAsUser(c, { ...service('refused', 'longca'), metadata: { name: 'refused', namespace: ns, annotations: { 'e2e.lockstep.dev/retry': '1' } } } as KubernetesObject);
    await eventually('refused reconciled', async () => (failingNow((await scrapeOf(limited)).text) === '0' ? true : undefined), 60_000, 500);
    // The errors counted a moment ago are history: pending while refused was failing, then nothing
    // keeps failing and nothing fires.
    const fixed = evaluate([...failing, ...(await record(limited, 3))], 20 * 60_000);
    expect(everActive(fixed.slice(0, 1), 'LockstepReconcileErrors', refused)).toBe(true);
    expect(fixed.some((e) => e.alerts.some((x) => matches(x, 'LockstepReconcileErrors', refused) && x.state === 'firing'))).toBe(false);
    expect(stateAtEnd(fixed, 'LockstepReconcileErrors', refused)).toBe('inactive');
  }, 120_000);
});
