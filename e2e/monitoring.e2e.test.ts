// The monitoring pack's alerts, evaluated by Prometheus's own rule engine (e2e/promrules: the rule
// manager, PromQL engine, TSDB and scrape parser that `promtool test rules` uses) on scrapes of the
// real operator's /metrics, recorded while it runs on the real API server with cert-manager:
// each alert must become active for the objects in a bad state and stay quiet for the good ones.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, deleteNamespaceAndFinalize, installCrds } from './harness/lockstep.js';
import { createTestNamespace } from './harness/namespace.js';
import { externalOperator, startInProcess, type RunningOperator } from './harness/operator.js';

const c = clients();
let ns: string;
let work: string;
let promrules: string;
const operators: (RunningOperator & { operator?: { manager: { healthPort(): number | undefined } } })[] = [];
const RULES = 'manifests/monitoring/prometheusrule.yaml';

interface Scrape { timeMs: number; labels: Record<string, string>; text: string }
interface ActiveAlert { state: 'pending' | 'firing'; labels: Record<string, string>; annotations: Record<string, string> }
interface Evaluation { timeMs: number; alerts: ActiveAlert[]; errors?: string[] }

const TARGET = { job: 'lockstep', instance: 'operator' };

async function scrape(op: (typeof operators)[number]): Promise<Scrape> {
  const port = op.operator?.manager.healthPort();
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return { timeMs: Date.now(), labels: TARGET, text: await res.text() };
}

async function record(op: (typeof operators)[number], count: number, everyMs = 2_000): Promise<Scrape[]> {
  const out: Scrape[] = [];
  for (let i = 0; i < count; i++) {
    out.push(await scrape(op));
    if (i < count - 1) await new Promise((r) => setTimeout(r, everyMs));
  }
  return out;
}

/** The rules of the PrometheusRule in manifests/monitoring/, as a Prometheus rule file. */
function ruleFile(): string {
  const file = join(work, 'rules.yaml');
  const rule = parseAllDocuments(readFileSync(RULES, 'utf8')).map((d) => d.toJS() as { kind?: string; spec?: unknown }).find((o) => o?.kind === 'PrometheusRule');
  if (!rule?.spec) throw new Error(`${RULES} holds no PrometheusRule`);
  writeFileSync(file, stringify(rule.spec));
  return file;
}

function evaluate(scrapes: Scrape[], holdMs: number, stepMs = 30_000): Evaluation[] {
  const input = join(work, `input-${Date.now()}.json`);
  writeFileSync(input, JSON.stringify({ stepMs, holdMs, scrapes }));
  const run = spawnSync(promrules, ['eval', ruleFile(), input], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`promrules eval: ${run.stderr}`);
  const evaluations = JSON.parse(run.stdout) as Evaluation[];
  const errors = evaluations.flatMap((e) => e.errors ?? []);
  if (errors.length) throw new Error(`rule evaluation errors: ${errors.slice(0, 3).join('; ')}`);
  return evaluations;
}

const matches = (a: ActiveAlert, name: string, labels: Record<string, string>) =>
  a.labels['alertname'] === name && Object.entries(labels).every(([k, v]) => a.labels[k] === v);
/** The state of the alert for these labels at the last evaluation, or 'inactive'. */
const stateAtEnd = (evals: Evaluation[], name: string, labels: Record<string, string> = {}) =>
  evals.at(-1)?.alerts.find((a) => matches(a, name, labels))?.state ?? 'inactive';
/** Whether the alert for these labels was active (pending or firing) at any evaluation. */
const everActive = (evals: Evaluation[], name: string, labels: Record<string, string> = {}) =>
  evals.some((e) => e.alerts.some((a) => matches(a, name, labels)));

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

/** Rotates the named services' certificates when `rotateNow` is given, else waits for a schedule it does not have. */
const rotation = (name: string, targets: string[], rotateNow?: string): KubernetesObject => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule',
  metadata: { name, namespace: ns, ...(rotateNow ? { annotations: { 'lockstep.dev/rotate-now': rotateNow } } : {}) },
  spec: { targets: { names: targets }, rotate: ['certificates'], strategy: { verification: { timeout: '10s' } } },
} as KubernetesObject);

beforeAll(async () => {
  if (externalOperator) return;
  work = mkdtempSync(join(tmpdir(), 'lockstep-monitoring-'));
  promrules = join(work, 'promrules');
  const build = spawnSync('go', ['build', '-o', promrules, '.'], {
    cwd: 'e2e/promrules', encoding: 'utf8', env: { ...process.env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' },
  });
  if (build.status !== 0) throw new Error(`go build e2e/promrules: ${build.stderr}`);
  installCrds();
  ns = await createTestNamespace(c, 'e2e-monitoring');
  operators.push(startInProcess(c.kc));
}, 600_000);

afterAll(async () => {
  if (externalOperator) return;
  await deleteNamespaceAndFinalize(c, ns);
  for (const op of operators) await op.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('alerts on the real /metrics', () => {
  (externalOperator ? it.skip : it)('rule file passes promtool check rules', () => {
    const run = spawnSync(promrules, ['check', ruleFile()], { encoding: 'utf8' });
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
    const op = operators[0]!;
    await eventually('CA and certificate expiry series of every object', async () => {
      const { text } = await scrape(op);
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
    // A leading operator, nothing probed: quiet.
    for (const name of ['LockstepNoLeader', 'LockstepVerificationFailing', 'LockstepServedCertificateExpiringSoon']) {
      expect([name, everActive(evals, name)]).toEqual([name, false]);
    }
  }, 240_000);

  (externalOperator ? it.skip : it)('LockstepNoLeader fires while no replica holds the Lease', async () => {
    // Another holder keeps the Lease: this replica runs, serves /metrics, and never leads.
    const leaseName = 'monitoring-e2e';
    await c.objects.create({
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: leaseName, namespace: ns },
      spec: { holderIdentity: 'someone-else', leaseDurationSeconds: 3600, renewTime: new Date().toISOString().replace('Z', '000Z') },
    } as KubernetesObject);
    const follower = startInProcess(c.kc, { leaderElection: { namespace: ns, leaseName } });
    operators.push(follower);
    await eventually('follower serves /metrics', async () => ((await scrape(follower)).text.includes('lockstep_leader 0') ? true : undefined), 30_000, 500);
    const evals = evaluate(await record(follower, 3), 6 * 60_000);
    expect(everActive(evals.slice(0, 3), 'LockstepNoLeader')).toBe(true);
    expect(stateAtEnd(evals, 'LockstepNoLeader')).toBe('firing');

    const leading = evaluate(await record(operators[0]!, 3), 6 * 60_000);
    expect(everActive(leading, 'LockstepNoLeader')).toBe(false);
  }, 120_000);
});
