// The operator under API Priority and Fairness throttling, on the real API server. The operator
// runs as a child process under its own ServiceAccount; a FlowSchema of this file sends every
// request of that account to a PriorityLevelConfiguration of three seats that rejects (429) what
// does not fit, instead of queueing it. Then a storm: one KeyPolicy and N EncryptedServices at once.
// What a user relies on: the API server really answered 429 (audit log, and the operator's own
// lockstep_kube_throttled_total), every service still becomes Ready with no Degraded condition,
// no Secret is recreated, the leader keeps its one term and /readyz stays 200, and another
// client — a ServiceAccount in another flow, and the admin — is served throughout.
// LOCKSTEP_E2E_APF=off runs the same storm without the priority level, to compare convergence.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EncryptedService } from '../operator/api/v1alpha1/index.js';
import { MIN_NODE_MAJOR, nodeMajor } from '../operator/runtime/node-version.js';
import { auditEntriesSince, auditLogAvailable, auditOffset } from './harness/audit-log.js';
import { clients, eventually, type Clients } from './harness/cluster.js';
import { applyAsUser, condition, deleteNamespaceAndFinalize, installCrds } from './harness/lockstep.js';
import { repoRoot } from './harness/manifests.js';
import { createTestNamespace } from './harness/namespace.js';
import { OPERATOR_NAMESPACE, OPERATOR_USER, installOperatorAccount, writeOperatorKubeconfig } from './harness/operator-account.js';
import { externalOperator, startChild, type ChildOperator } from './harness/operator.js';
import { metricsPortOf } from '../bench/scale/operator-process.js';

const SERVICES = Number(process.env.LOCKSTEP_E2E_APF_SERVICES ?? 40);
const limited = process.env.LOCKSTEP_E2E_APF !== 'off';
const run = randomBytes(3).toString('hex');
const flowName = `lockstep-e2e-apf-${run}`;
const leaseName = `lockstep-apf-e2e-${run}`;
const identity = `e2e-apf-${run}`;

const c = clients();
const flow = c.kc.makeApiClient(k8s.FlowcontrolApiserverV1Api);
const leases = c.kc.makeApiClient(k8s.CoordinationV1Api);
let ns = '';
let dir = '';
let operator: ChildOperator | undefined;
let healthUrl = '';
let auditStart = 0;

const serviceName = (i: number): string => `svc-${String(i).padStart(3, '0')}`;
const service = (i: number): KubernetesObject => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name: serviceName(i), namespace: ns },
  spec: {
    workload: { selector: { matchLabels: { app: serviceName(i) } }, serviceAccountName: serviceName(i) },
    ports: [{ name: 'https', port: 8443 }],
    keyPolicyRef: { name: 'policy' },
    // A peer each, as in the scale bench: every service also gets its NetworkPolicies.
    access: { ingress: [{ service: { name: serviceName((i + 1) % SERVICES) }, ports: ['https'] }] },
  },
} as KubernetesObject);

async function ignoreNotFound(what: () => Promise<unknown>): Promise<void> {
  try {
    await what();
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
  }
}

/** The three seats: nothing lent, nothing borrowed, and no queue, so a fourth request in flight is refused. */
async function installPriorityLevel(): Promise<void> {
  await flow.createPriorityLevelConfiguration({ body: {
    metadata: { name: flowName },
    spec: { type: 'Limited', limited: { nominalConcurrencyShares: 1, lendablePercent: 0, borrowingLimitPercent: 0, limitResponse: { type: 'Reject' } } },
  } });
  await flow.createFlowSchema({ body: {
    metadata: { name: flowName },
    spec: {
      priorityLevelConfiguration: { name: flowName },
      // Before the built-in service-accounts schema (9000), which would otherwise take the operator.
      matchingPrecedence: 1000,
      distinguisherMethod: { type: 'ByUser' },
      rules: [{
        subjects: [{ kind: 'ServiceAccount', serviceAccount: { name: 'lockstep-operator', namespace: OPERATOR_NAMESPACE } }],
        resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'], clusterScope: true, namespaces: ['*'] }],
        nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
      }],
    },
  } });
  // The API server's flow-control controller writes Dangling=False once it has taken the schema in.
  await eventually('the FlowSchema taken in by the API server', async () => {
    const fs = await flow.readFlowSchemaStatus({ name: flowName });
    return fs.status?.conditions?.some((x) => x.type === 'Dangling' && x.status === 'False') ? true : undefined;
  }, 30_000);
}

/** A client in the default flow for ServiceAccounts (workload-low): reads ConfigMaps of the test namespace. */
async function bystander(): Promise<k8s.CoreV1Api> {
  const rbac = c.kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  await c.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'bystander' } } });
  await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: 'bystander' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }] } });
  await rbac.createNamespacedRoleBinding({ namespace: ns, body: {
    metadata: { name: 'bystander' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'bystander' },
    subjects: [{ kind: 'ServiceAccount', name: 'bystander', namespace: ns }],
  } });
  const token = execFileSync('kubectl', ['create', 'token', 'bystander', '-n', ns, '--duration=1h'], { cwd: repoRoot, encoding: 'utf8' }).trim();
  const cluster = c.kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster');
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({ clusters: [cluster], users: [{ name: 'bystander', token }], contexts: [{ name: 'b', cluster: cluster.name, user: 'bystander' }], currentContext: 'b' });
  return kc.makeApiClient(k8s.CoreV1Api);
}

interface Probe { readonly latencies: number[]; readonly failures: string[]; stop(): Promise<void> }

/** Calls `request` back to back (a pause between) until stopped, timing each call. */
function probe(request: () => Promise<unknown>, pauseMs: number): Probe {
  const latencies: number[] = [];
  const failures: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const start = performance.now();
      try {
        await request();
        latencies.push(performance.now() - start);
      } catch (err) {
        failures.push(String((err as { code?: number }).code ?? err));
      }
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  })();
  return { latencies, failures, stop: async () => { running = false; await loop; } };
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};
const describeLatency = (values: number[]): string =>
  `${values.length} requests, p50 ${percentile(values, 50).toFixed(0)} ms, p95 ${percentile(values, 95).toFixed(0)} ms, max ${Math.max(...values).toFixed(0)} ms`;

/** The sum of a metric's samples whose label set contains `match` (Prometheus text format). */
function sumOf(text: string, name: string, match = ''): number {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `)).filter((l) => l.includes(match))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

async function secretUids(core: Clients['core']): Promise<Map<string, string>> {
  const list = await core.listNamespacedSecret({ namespace: ns });
  return new Map(list.items.map((s) => [s.metadata?.name ?? '', s.metadata?.uid ?? '']));
}

async function services(): Promise<EncryptedService[]> {
  const list = await c.custom.listNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'encryptedservices', namespace: ns });
  return (list as { items: EncryptedService[] }).items;
}

const ready = (es: EncryptedService): boolean =>
  condition(es, 'Ready')?.status === 'True' && es.status?.observedGeneration === es.metadata.generation;

beforeAll(async () => {
  if (externalOperator) return;
  installCrds();
  installOperatorAccount();
  ns = await createTestNamespace(c, 'e2e-apf');
  if (limited) await installPriorityLevel();
  if (auditLogAvailable()) auditStart = auditOffset();
  dir = mkdtempSync(join(tmpdir(), 'lockstep-apf-'));
  const kubeconfig = join(dir, 'operator.kubeconfig');
  writeOperatorKubeconfig(c.kc, kubeconfig);
  // Throttled from its first request on: the informers' initial lists meet the three seats too.
  operator = startChild({
    KUBECONFIG: kubeconfig, LOCKSTEP_LOG_LEVEL: 'info', LOCKSTEP_LEADER_ELECT: 'true',
    LOCKSTEP_NAMESPACE: OPERATOR_NAMESPACE, LOCKSTEP_LEASE_NAME: leaseName, POD_NAME: identity,
  });
  const port = await eventually('the operator serving /readyz', async () => metricsPortOf(operator?.logs() ?? ''), 60_000);
  healthUrl = `http://127.0.0.1:${port}`;
  await eventually('the operator ready and leading', async () =>
    ((await fetch(`${healthUrl}/readyz`)).status === 200 && operator?.logs().includes('acquired leadership') ? true : undefined), 60_000);
}, 150_000);

afterAll(async () => {
  if (externalOperator) return;
  // The schema first and whatever else fails: later files run their operators under the same account.
  if (limited) {
    await ignoreNotFound(() => flow.deleteFlowSchema({ name: flowName })).catch((err: unknown) => console.error(`deleting FlowSchema ${flowName}: ${String(err)}`));
    await ignoreNotFound(() => flow.deletePriorityLevelConfiguration({ name: flowName })).catch((err: unknown) => console.error(`deleting PriorityLevelConfiguration ${flowName}: ${String(err)}`));
  }
  if (ns) await deleteNamespaceAndFinalize(c, ns);
  await operator?.stop();
  await ignoreNotFound(() => leases.deleteNamespacedLease({ namespace: OPERATOR_NAMESPACE, name: leaseName })).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 120_000);

(externalOperator ? describe.skip : describe)(`the operator under API Priority and Fairness (${limited ? 'three seats, Reject' : 'default flow'})`, () => {
  it(`converges ${SERVICES} EncryptedServices applied at once${limited ? ', answered 429,' : ''} without starving other clients or losing its lease`, async () => {
    const others = await bystander();
    await applyAsUser(c, {
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'policy', namespace: ns },
      spec: { certificates: { defaultIssuer: { issuerRef: { kind: 'ClusterIssuer', name: 'lockstep-ca' } } } },
    } as KubernetesObject);

    const readyz: number[] = [];
    const health = probe(async () => readyz.push((await fetch(`${healthUrl}/readyz`)).status), 500);
    const serviceAccount = probe(() => others.listNamespacedConfigMap({ namespace: ns }), 200);
    const admin = probe(() => c.core.listNamespacedConfigMap({ namespace: ns }), 200);
    const start = performance.now();
    await Promise.all(Array.from({ length: SERVICES }, (_, i) => applyAsUser(c, service(i))));
    let converged: number;
    try {
      await eventually(`${SERVICES} services Ready`, async () => ((await services()).filter(ready).length === SERVICES ? true : undefined), 120_000, 500);
      converged = (performance.now() - start) / 1000;
    } finally {
      await Promise.all([health.stop(), serviceAccount.stop(), admin.stop()]);
    }

    // A settled state to compare against: nothing the operator or cert-manager made is made again.
    const before = await secretUids(c.core);
    await new Promise((r) => setTimeout(r, 5_000));
    const after = await secretUids(c.core);
    const metrics = await (await fetch(`${healthUrl}/metrics`)).text();
    const entries = auditLogAvailable() ? auditEntriesSince(auditStart, OPERATOR_USER) : [];
    const rejected = entries.filter((e) => e.responseStatus?.code === 429);
    const lease = await leases.readNamespacedLease({ namespace: OPERATOR_NAMESPACE, name: leaseName });
    // The API server's own account of the level (its seats, what it refused).
    const server = limited ? execFileSync('kubectl', ['get', '--raw', '/metrics'], { cwd: repoRoot, encoding: 'utf8', maxBuffer: 256 << 20 }) : '';
    const level = `priority_level="${flowName}"`;

    console.log([
      `APF ${limited ? `limited (${flowName})` : 'default flow'}: ${SERVICES} services Ready ${converged.toFixed(1)} s after the apply`,
      `429s in the audit log for the operator: ${rejected.length} of ${entries.length} requests (${[...new Set(rejected.map((e) => e.verb))].join(', ')})`,
      `lockstep_kube_throttled_total: retried ${sumOf(metrics, 'lockstep_kube_throttled_total', 'outcome="retried"')}, returned ${sumOf(metrics, 'lockstep_kube_throttled_total', 'outcome="returned"')}`
        + ` (${['main', 'events', 'lease'].map((client) => `${client} ${sumOf(metrics, 'lockstep_kube_throttled_total', `client="${client}"`)}`).join(', ')})`,
      `lockstep_kube_rate_limit_wait_seconds: ${sumOf(metrics, 'lockstep_kube_rate_limit_wait_seconds_sum').toFixed(1)} s over ${sumOf(metrics, 'lockstep_kube_rate_limit_wait_seconds_count')} requests`,
      `lockstep_reconcile_errors_total: ${sumOf(metrics, 'lockstep_reconcile_errors_total')}`,
      `other ServiceAccount (workload-low) during the storm: ${describeLatency(serviceAccount.latencies)}, ${serviceAccount.failures.length} failed`,
      `admin (exempt) during the storm: ${describeLatency(admin.latencies)}, ${admin.failures.length} failed`,
      `/readyz: ${readyz.length} probes, ${readyz.filter((s) => s !== 200).length} not 200`,
      ...(limited ? [`API server: ${sumOf(server, 'apiserver_flowcontrol_nominal_limit_seats', level)} nominal seats, ${sumOf(server, 'apiserver_flowcontrol_rejected_requests_total', level)} requests rejected`] : []),
    ].join('\n'));

    if (limited) {
      // A run that saw no throttling would prove nothing about it.
      if (auditLogAvailable()) expect(rejected.length).toBeGreaterThan(0);
      expect(sumOf(metrics, 'lockstep_kube_throttled_total')).toBeGreaterThan(0);
      // The metric counts answers the server really gave (watches, not counted, may add to the log).
      if (auditLogAvailable()) expect(sumOf(metrics, 'lockstep_kube_throttled_total')).toBeLessThanOrEqual(rejected.length);
    }
    const all = await services();
    expect(all.filter((es) => condition(es, 'Degraded')?.status === 'True').map((es) => `${es.metadata.name}: ${condition(es, 'Degraded')?.message}`)).toEqual([]);
    expect(all.filter(ready)).toHaveLength(SERVICES);
    // Every TLS Secret (and the key Secret) that existed once all were Ready is still the same object.
    expect([...before].filter(([name, uid]) => after.get(name) !== uid).map(([name]) => name)).toEqual([]);
    expect(entries.filter((e) => e.verb === 'delete' && e.objectRef?.resource === 'secrets')).toEqual([]);
    expect(serviceAccount.failures).toEqual([]);
    expect(admin.failures).toEqual([]);
    expect(serviceAccount.latencies.length).toBeGreaterThan(0);
    expect(health.failures).toEqual([]);
    expect(readyz.filter((s) => s !== 200)).toEqual([]);
    // One term: the lease this run created was never taken over, and the leader never stepped down.
    expect(lease.spec?.holderIdentity).toBe(identity);
    expect(lease.spec?.leaseTransitions ?? 0).toBe(0);
    expect(operator?.logs()).not.toContain('lost leadership');
    expect(operator?.process.exitCode).toBeNull();
    // The child operator runs on the test run's Node (process.execPath): Node 24, not PATH's node.
    const started = /"msg":"starting".*"node":"v([\d.]+)"/.exec(operator?.logs() ?? '');
    expect(nodeMajor(started?.[1] ?? '')).toBeGreaterThanOrEqual(MIN_NODE_MAJOR);
  }, 170_000);
});
