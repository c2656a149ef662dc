// Faults of the fault suite where the API server is up but the operator's writes do not simply
// land, on the real API server: a ResourceQuota that forbids a service's children (a condition
// naming the child and the quota, nothing deleted, converged once the quota is raised, without a
// restart), admission policies that refuse one kind of child each (NetworkPolicies, an encrypted
// volume's claim and LUKS key, materialised and envelope-store Secrets), and a 409 storm — another writer rewriting the operator's children and the services'
// status in a loop — that the operator survives without a hot loop and without losing anything.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { auditLogAvailable, auditLogPath, auditOffset } from './harness/audit-log.js';
import { clients, eventually } from './harness/cluster.js';
import { condition, deleteNamespaceAndFinalize, installCrds, readService, waitForCondition } from './harness/lockstep.js';
import { createTestNamespace } from './harness/namespace.js';
import { externalOperator, startInProcess } from './harness/operator.js';
import type { KeyPolicy } from '../operator/api/v1alpha1/index.js';
import { applyAll, applyPolicy, compare, inventory, policyReady, prepareFleet, unconverged, POLICY, type Fleet } from './faults/fleet.js';

const c = clients();
const networking = c.kc.makeApiClient(k8s.NetworkingV1Api);
const identity = `e2e-writes-${process.pid}`;
let ns = '';
let operator: ReturnType<typeof startInProcess> | undefined;
let first: Fleet;
let second: Fleet;
const QUOTA = 'children';
// The storm test's windows, kept short for CI's time budget.
const QUIET_MS = 5_000;
const STORM_MS = 10_000;
let pending: k8s.KubernetesObject[] = [];

interface MetricJson { name: string; values: { value: number; labels: Record<string, string | number>; metricName?: string }[] }

const ES = { group: 'lockstep.dev', version: 'v1alpha1', plural: 'encryptedservices' };
const KP = { group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies' };
const policiesOf = async (service: string) =>
  (await networking.listNamespacedNetworkPolicy({ namespace: ns, labelSelector: `lockstep.dev/encrypted-service=${service}` })).items;
const converged = (fleet: Fleet) => eventually(`${fleet.names.join(', ')} converged`, async () => ((await unconverged(c, fleet)).length === 0 ? true : undefined), 90_000, 250);

beforeAll(async () => {
  installCrds();
  ns = await createTestNamespace(c, 'e2e-writes');
  operator = startInProcess(c.kc, { identity });
  await applyPolicy(c, ns);
  await policyReady(c, ns);
  // Each service is its own peer: one NetworkPolicy pair and one sealed Secret each.
  const a = await prepareFleet(c, ns, 'a', 1);
  const b = await prepareFleet(c, ns, 'b', 1);
  first = a.fleet;
  second = b.fleet;
  await applyAll(c, a.services);
  await converged(first);
  // Kept for the quota test: applied while the quota forbids its children.
  pending = b.services;
}, 150_000);

afterAll(async () => {
  if (ns) await deleteNamespaceAndFinalize(c, ns);
  await operator?.stop();
}, 120_000);

const setQuota = async (certificates: number, secrets: number) => {
  const hard = { 'count/certificates.cert-manager.io': String(certificates), secrets: String(secrets) };
  await c.objects.patch({ apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name: QUOTA, namespace: ns }, spec: { hard } } as k8s.KubernetesObject,
    undefined, undefined, 'lockstep-e2e-admin', true, k8s.PatchStrategy.ServerSideApply);
  // Quota admission refuses everything a quota covers until the resourcequota controller has counted it.
  await eventually(`ResourceQuota ${QUOTA} counted`, async () => {
    const q = await c.core.readNamespacedResourceQuota({ namespace: ns, name: QUOTA });
    return JSON.stringify(q.status?.hard ?? {}) === JSON.stringify(q.spec?.hard) && q.status?.used?.['count/certificates.cert-manager.io'] !== undefined ? true : undefined;
  }, 90_000);
};

describe('a ResourceQuota that forbids the children', () => {
  it('reports ChildRefused naming the child and the quota, deletes nothing, and converges once the quota is raised', async () => {
    const [a] = first.names;
    const [b] = second.names;
    const before = await inventory(c, ns);
    const existingSecrets = (await c.core.listNamespacedSecret({ namespace: ns })).items.length;
    // Room for what exists, none for another service's Certificate and sealed Secret.
    await setQuota(1, existingSecrets);
    await applyAll(c, pending);

    const refused = await waitForCondition(c, ns, b!, 'TransitReady', 'False', 'ChildRefused', 60_000);
    const transit = condition(refused, 'TransitReady')?.message ?? '';
    expect(transit).toContain(`the API server refused to write Certificate ${ns}/${b} (Forbidden)`);
    expect(transit).toContain(`exceeded quota: ${QUOTA}`);
    expect(transit).toContain('count/certificates.cert-manager.io');
    expect(transit).toContain('nothing was deleted');
    // The server's Status message, not a client exception with its body and stack.
    expect(transit).not.toMatch(/ApiException|HTTP-Code|\n\s+at /);
    const secrets = await waitForCondition(c, ns, b!, 'SecretsReady', 'False', 'ChildRefused', 30_000);
    expect(condition(secrets, 'SecretsReady')?.message).toContain(`refused to write Secret ${ns}/${b}-creds (Forbidden)`);
    expect(condition(secrets, 'SecretsReady')?.message).toContain(`exceeded quota: ${QUOTA}, requested: secrets=1`);
    expect(condition(secrets, 'Ready')?.status).toBe('False');
    expect(condition(secrets, 'Degraded')).toMatchObject({ status: 'True', reason: 'ChildRefused' });
    // What the quota does not cover still converges: the service's NetworkPolicies are there.
    await waitForCondition(c, ns, b!, 'AccessReady', 'True', undefined, 30_000);
    expect((await policiesOf(b!)).length).toBeGreaterThan(0);
    if (operator?.operator) {
      const metrics = await operator.operator.metrics.registry.getMetricsAsJSON() as MetricJson[];
      expect(sum(metrics, 'lockstep_reconcile_errors_total', undefined, { controller: 'encryptedservice', reason: 'ChildRefused' })).toBeGreaterThan(0);
    }
    // The service already there is untouched.
    expect(await unconverged(c, first)).toEqual([]);

    const raised = Date.now();
    await setQuota(10, 100);
    await converged(second);
    const seconds = (Date.now() - raised) / 1000;
    console.log(`quota raised: ${b} Ready ${seconds.toFixed(1)} s later, without a restart`);
    expect(seconds).toBeLessThan(30);
    expect(compare(before, await inventory(c, ns))).toEqual([]);
    await c.core.deleteNamespacedResourceQuota({ namespace: ns, name: QUOTA });
  }, 180_000);
});

interface RefusalCase {
  /** Which children: a resource rule, and the CEL expression that picks them (the rest pass). */
  what: string;
  resources: { apiGroup: string; resource: string }[];
  picks: string;
  /** The condition that reports the refusal; the others must converge meanwhile. */
  condition: 'AccessReady' | 'AtRestReady' | 'SecretsReady';
  child: RegExp;
  withVolume?: boolean;
  /** What stays unwritten while refused. */
  absent: (service: string) => Promise<boolean>;
}

// A missing key is an error in CEL, and an error denies (failurePolicy Fail): test for the key first.
const component = (value: string) => `has(object.metadata.labels) && 'lockstep.dev/component' in object.metadata.labels && object.metadata.labels['lockstep.dev/component'] == '${value}'`;
const REFUSALS: RefusalCase[] = [
  {
    what: 'NetworkPolicies', resources: [{ apiGroup: 'networking.k8s.io', resource: 'networkpolicies' }], picks: 'true',
    condition: 'AccessReady', child: /NetworkPolicy \S+-(allow|default-deny)/, absent: async (s) => (await policiesOf(s)).length === 0,
  },
  {
    what: 'the claim and LUKS key of an encrypted volume', resources: [{ apiGroup: '', resource: 'persistentvolumeclaims' }, { apiGroup: '', resource: 'secrets' }],
    picks: component('at-rest'), condition: 'AtRestReady', child: /(PersistentVolumeClaim|Secret) \S+-data/, withVolume: true,
    absent: async (s) => (await c.core.listNamespacedPersistentVolumeClaim({ namespace: ns, labelSelector: `lockstep.dev/encrypted-service=${s}` })).items.length === 0,
  },
  {
    what: 'materialised and envelope-store Secrets', resources: [{ apiGroup: '', resource: 'secrets' }], picks: component('secrets'),
    condition: 'SecretsReady', child: /Secret \S+/,
    absent: async (s) => (await c.core.listNamespacedSecret({ namespace: ns, labelSelector: `lockstep.dev/encrypted-service=${s},lockstep.dev/component=secrets` })).items.length === 0,
  },
];

describe('an admission policy that refuses a child', () => {
  const admission = c.kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  const name = (i: number) => `lockstep-e2e-refuse-${i}-${ns}`;
  const MESSAGE = 'this namespace gets these objects from the platform team';
  const lift = async (i: number) => {
    await admission.deleteValidatingAdmissionPolicyBinding({ name: name(i) }).catch(() => undefined);
    await admission.deleteValidatingAdmissionPolicy({ name: name(i) }).catch(() => undefined);
  };

  afterAll(async () => {
    for (const i of REFUSALS.keys()) await lift(i);
  });

  it.each(REFUSALS.map((r, i) => [r.what, i] as const))('refusing %s: ChildRefused with the policy\'s message, the other parts converge, nothing is deleted, converged once the policy goes', async (_what, i) => {
    const r = REFUSALS[i]!;
    const before = await inventory(c, ns);
    // Only this namespace's objects the expression picks: a policy of its own (cluster-scoped) and a binding.
    await admission.createValidatingAdmissionPolicy({ body: {
      metadata: { name: name(i) },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: { resourceRules: r.resources.map((x) => ({ apiGroups: [x.apiGroup], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: [x.resource] })) },
        validations: [{ expression: `!(${r.picks})`, message: MESSAGE }],
      },
    } });
    await admission.createValidatingAdmissionPolicyBinding({ body: {
      metadata: { name: name(i) },
      spec: { policyName: name(i), validationActions: ['Deny'], matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } } },
    } });
    // The API server loads a new policy within a few seconds: a dry-run write of a picked object tells when.
    await eventually('the admission policy in force', async () => {
      const probe = { metadata: { name: 'probe', namespace: ns, labels: { 'lockstep.dev/component': r.condition === 'AtRestReady' ? 'at-rest' : 'secrets' } } };
      const write = r.resources[0]!.resource === 'networkpolicies'
        ? networking.createNamespacedNetworkPolicy({ namespace: ns, body: { ...probe, spec: { podSelector: {} } }, dryRun: 'All' })
        : c.core.createNamespacedSecret({ namespace: ns, body: probe, dryRun: 'All' });
      const denied = await write.then(() => false, (err: unknown) => String((err as { body?: unknown }).body ?? err).includes(MESSAGE));
      return denied ? true : undefined;
    }, 60_000, 500);

    const { fleet, services } = await prepareFleet(c, ns, `r${i}`, 1);
    const [p] = fleet.names;
    if (r.withVolume) (services[0] as unknown as { spec: Record<string, unknown> }).spec['atRest'] = { volumes: [{ name: 'data', provider: 'longhorn', size: '1Gi' }] };
    await applyAll(c, services);
    const refused = await waitForCondition(c, ns, p!, r.condition, 'False', 'ChildRefused', 60_000);
    const message = condition(refused, r.condition)?.message ?? '';
    expect(message).toMatch(new RegExp(`the API server refused to write ${r.child.source}.* \\((Invalid|Forbidden)\\)`));
    expect(message).toContain(MESSAGE);
    expect(message).toContain('nothing was deleted');
    // What the policy does not cover converges.
    for (const other of ['TransitReady', 'AccessReady', 'AtRestReady', 'SecretsReady'].filter((t) => t !== r.condition)) {
      await waitForCondition(c, ns, p!, other, 'True', undefined, 60_000);
    }
    expect(await r.absent(p!)).toBe(true);
    expect(compare(before, await inventory(c, ns))).toEqual([]);

    const lifted = Date.now();
    await lift(i);
    await converged(fleet);
    console.log(`admission policy refusing ${r.what} removed: ${p} Ready ${((Date.now() - lifted) / 1000).toFixed(1)} s later, without a restart`);
    expect(await r.absent(p!)).toBe(false);
    expect(compare(before, await inventory(c, ns))).toEqual([]);
  }, 180_000);
});

// --- 409 storm

interface Counts { requests: number; reconciles: number; retries: number; errors: number; writes: number; conflicts: number }

const sum = (metrics: MetricJson[], name: string, metricName = name, labels: Record<string, string> = {}) =>
  metrics.filter((m) => m.name === name).flatMap((m) => m.values)
    .filter((v) => (v.metricName ?? name) === metricName && Object.entries(labels).every(([k, want]) => v.labels[k] === want))
    .reduce((total, v) => total + v.value, 0);

/** The operator's own counts (its metrics), and its requests as the API server's audit log saw them. */
async function counts(offset: number): Promise<Counts> {
  const metrics = await operator!.operator!.metrics.registry.getMetricsAsJSON() as MetricJson[];
  const controller = { controller: 'encryptedservice' };
  const audit = readFileSync(auditLogPath).subarray(offset).toString('utf8').split('\n').filter(Boolean)
    .map((line) => JSON.parse(line) as { verb: string; userAgent?: string; responseStatus?: { code?: number } })
    .filter((e) => e.userAgent?.includes(identity) && ['create', 'update', 'patch', 'delete'].includes(e.verb));
  return {
    requests: sum(metrics, 'lockstep_kube_rate_limit_wait_seconds', 'lockstep_kube_rate_limit_wait_seconds_count'),
    reconciles: sum(metrics, 'lockstep_reconcile_duration_seconds', 'lockstep_reconcile_duration_seconds_count', controller),
    retries: sum(metrics, 'lockstep_workqueue_retries_total', undefined, controller),
    errors: sum(metrics, 'lockstep_reconcile_errors_total', undefined, controller),
    writes: audit.length,
    conflicts: audit.filter((e) => e.responseStatus?.code === 409).length,
  };
}

const delta = (a: Counts, b: Counts): Counts => ({
  requests: b.requests - a.requests, reconciles: b.reconciles - a.reconciles, retries: b.retries - a.retries,
  errors: b.errors - a.errors, writes: b.writes - a.writes, conflicts: b.conflicts - a.conflicts,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Another writer: read-modify-write of every child NetworkPolicy's spec, of every service's and
 * the KeyPolicy's status (a condition of its own), and a Secret's annotations. Two of them run at
 * once, so reads go stale and writes collide (409) with each other's and the operator's.
 */
async function storm(services: string[], ms: number): Promise<{ writes: number; conflicts: number }> {
  const loops = await Promise.all([stormLoop(services, ms, 'x'), stormLoop(services, ms, 'y')]);
  return { writes: loops[0]!.writes + loops[1]!.writes, conflicts: loops[0]!.conflicts + loops[1]!.conflicts };
}

const withCondition = <T extends { status?: { conditions?: object[] } }>(obj: T, message: string): T => {
  const conditions = (obj.status?.conditions ?? []).filter((x) => (x as { type?: string }).type !== 'StormCheck');
  conditions.push({ type: 'StormCheck', status: 'True', reason: 'Storm', message, lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') });
  return { ...obj, status: { ...obj.status, conditions } };
};

async function stormLoop(services: string[], ms: number, writer: string): Promise<{ writes: number; conflicts: number }> {
  let writes = 0;
  let conflicts = 0;
  const tally = async (write: () => Promise<unknown>) => {
    try {
      await write();
      writes++;
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      conflicts++;
    }
  };
  const end = Date.now() + ms;
  for (let round = 0; Date.now() < end; round++) {
    for (const name of services) {
      for (const np of await policiesOf(name)) {
        // A value the operator owns, changed (a key added by another manager would stay: server-side apply keeps other managers' fields).
        np.spec = { ...np.spec, podSelector: { matchLabels: { ...np.spec?.podSelector?.matchLabels, app: `storm-${writer}-${round}` } } };
        await tally(() => networking.replaceNamespacedNetworkPolicy({ namespace: ns, name: np.metadata!.name!, body: np }));
      }
      const es = await readService(c, ns, name);
      await tally(() => c.custom.replaceNamespacedCustomObjectStatus({ ...ES, namespace: ns, name, body: withCondition(es, `${writer} round ${round}`) }));
      await tally(() => c.core.patchNamespacedSecret({ namespace: ns, name: `${name}-creds`, body: { metadata: { annotations: { [`storm-${writer}`]: String(round) } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)));
    }
    const kp = await c.custom.getNamespacedCustomObject({ ...KP, namespace: ns, name: POLICY }) as KeyPolicy;
    await tally(() => c.custom.replaceNamespacedCustomObjectStatus({ ...KP, namespace: ns, name: POLICY, body: withCondition(kp, `${writer} round ${round}`) }));
  }
  return { writes, conflicts };
}

describe('a 409 storm on the children and the status', () => {
  const skip = externalOperator || !auditLogAvailable();
  (skip ? it.skip : it)('converges after it, no hot loop, nothing lost', async () => {
    const services = [...first.names, ...second.names];
    await converged(first);
    await converged(second);
    const specs = async () => JSON.stringify(await Promise.all(services.map(async (s) => (await policiesOf(s)).map((np) => [np.metadata?.name, np.spec]))));
    const desired = await specs();
    const before = await inventory(c, ns);

    const offset = auditOffset();
    const quiet0 = await counts(offset);
    await sleep(QUIET_MS);
    const quiet1 = await counts(offset);
    const stormed = await storm(services, STORM_MS);
    const stormEnd = await counts(offset);
    const stopped = Date.now();
    await eventually('children and status converged after the storm', async () =>
      (await specs()) === desired && (await unconverged(c, { ...first, names: services })).length === 0 ? true : undefined, 30_000, 250);
    const seconds = (Date.now() - stopped) / 1000;
    await sleep(2_000);
    const after = await counts(offset);

    const quiet = delta(quiet0, quiet1);
    const during = delta(quiet1, stormEnd);
    const settle = delta(stormEnd, after);
    console.log(`409 storm on ${services.length} services: the other writer (two loops) made ${stormed.writes} writes and got ${stormed.conflicts} conflicts (409) in ${STORM_MS / 1000} s
  operator, ${QUIET_MS / 1000} s quiet:   ${JSON.stringify(quiet)}
  operator, during it:  ${JSON.stringify(during)}
  operator, after it:    ${JSON.stringify(settle)}; converged ${seconds.toFixed(1)} s after the storm`);

    // Nothing lost, and the other writer's own condition is still there beside the operator's.
    expect(compare(before, await inventory(c, ns))).toEqual([]);
    for (const name of services) expect(condition(await readService(c, ns, name), 'StormCheck')?.reason).toBe('Storm');
    const kp = await c.custom.getNamespacedCustomObject({ ...KP, namespace: ns, name: POLICY }) as KeyPolicy;
    expect(condition(kp, 'StormCheck')?.reason).toBe('Storm');
    expect(condition(kp, 'Ready')?.status).toBe('True');
    // No hot loop: at most about one write of the operator per write of the other, and the
    // retries stay a handful (conflicts are retried with backoff, not at once and for ever).
    expect(during.writes).toBeLessThanOrEqual(stormed.writes + 20);
    expect(during.retries).toBeLessThanOrEqual(20);
    expect(quiet.writes).toBeLessThanOrEqual(2);
    expect(settle.writes).toBeLessThanOrEqual(services.length * 4);
  }, 120_000);
});
