// A write refused by RBAC, on the real API server: the operator runs under its own ServiceAccount
// (so the install's admission policies, which name it, let it write its keys), with the install's
// ClusterRole narrowed to lack the NetworkPolicy writes (an administrator's narrower grant, or a
// rule lost in an upgrade); the install's rules are put back afterwards. The service must say so (AccessReady=False ChildRefused with the
// API server's "forbidden" message), its other parts converge, nothing is deleted, and once the
// rule is back it converges without a restart. Quota and admission refusals are in faults-writes.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { clients, eventually } from './harness/cluster.js';
import { condition, deleteNamespaceAndFinalize, installCrds, waitForCondition } from './harness/lockstep.js';
import { createTestNamespace } from './harness/namespace.js';
import { OPERATOR_NAMESPACE, installOperatorAccount, operatorAccountConfig } from './harness/operator-account.js';
import { externalOperator, startInProcess } from './harness/operator.js';
import { applyAll, applyPolicy, compare, inventory, policyReady, prepareFleet, unconverged } from './faults/fleet.js';

const c = clients();
const rbac = c.kc.makeApiClient(k8s.RbacAuthorizationV1Api);
const networking = c.kc.makeApiClient(k8s.NetworkingV1Api);
const ACCOUNT = { namespace: OPERATOR_NAMESPACE, name: 'lockstep-operator' };
const ROLE = 'lockstep-operator';
const WRITES = ['create', 'patch', 'update', 'delete'];
let ns = '';
let operator: ReturnType<typeof startInProcess> | undefined;
let install: k8s.V1PolicyRule[] = [];

const isNetworkPolicies = (r: k8s.V1PolicyRule) => (r.apiGroups ?? []).includes('networking.k8s.io') && (r.resources ?? []).includes('networkpolicies');
/** The install's rules, with NetworkPolicies readable but not writable. */
const narrowed = (rules: k8s.V1PolicyRule[]) => rules.map((r) => (isNetworkPolicies(r) ? { ...r, verbs: r.verbs.filter((v) => !WRITES.includes(v)) } : r));
const setRules = async (rules: k8s.V1PolicyRule[]) => {
  const role = await rbac.readClusterRole({ name: ROLE });
  await rbac.replaceClusterRole({ name: ROLE, body: { ...role, rules } });
};

beforeAll(async () => {
  if (externalOperator) return;
  installCrds();
  installOperatorAccount();
  install = (await rbac.readClusterRole({ name: ROLE })).rules ?? [];
  expect(install.some((r) => isNetworkPolicies(r) && r.verbs.includes('patch'))).toBe(true);
  await setRules(narrowed(install));
  ns = await createTestNamespace(c, 'e2e-rbac-refused');
  operator = startInProcess(operatorAccountConfig(c.kc, ACCOUNT), { identity: `e2e-rbac-refused-${process.pid}` });
  await applyPolicy(c, ns);
  await policyReady(c, ns);
}, 150_000);

afterAll(async () => {
  if (externalOperator) return;
  if (ns) await deleteNamespaceAndFinalize(c, ns);
  await operator?.stop();
  if (install.length > 0) await setRules(install);
}, 120_000);

(externalOperator ? describe.skip : describe)('a write refused by RBAC', () => {
  it('reports ChildRefused with the API server\'s message, the other parts converge, nothing is deleted, and it converges once the rule is back', async () => {
    const before = await inventory(c, ns);
    const { fleet, services } = await prepareFleet(c, ns, 'n', 1);
    const [name] = fleet.names;
    await applyAll(c, services);

    const refused = await waitForCondition(c, ns, name!, 'AccessReady', 'False', 'ChildRefused', 60_000).catch(async (err: unknown) => {
      const es = await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'encryptedservices', namespace: ns, name: name! });
      console.log(JSON.stringify((es as { status?: unknown }).status, null, 1), operator?.logs().split('\n').filter((l) => l.includes('"warn"') || l.includes('"error"')).slice(-15).join('\n'));
      throw err;
    });
    const message = condition(refused, 'AccessReady')?.message ?? '';
    expect(message).toMatch(new RegExp(`the API server refused to write NetworkPolicy ${ns}/${name}-[a-z-]+ \\(Forbidden\\)`));
    expect(message).toContain(`system:serviceaccount:${ACCOUNT.namespace}:${ACCOUNT.name}`);
    expect(message).toContain('networkpolicies');
    expect(message).toContain('nothing was deleted');
    await waitForCondition(c, ns, name!, 'TransitReady', 'True', undefined, 60_000);
    await waitForCondition(c, ns, name!, 'SecretsReady', 'True', undefined, 30_000);
    expect((await networking.listNamespacedNetworkPolicy({ namespace: ns })).items).toEqual([]);
    expect(compare(before, await inventory(c, ns))).toEqual([]);

    const granted = Date.now();
    await setRules(install);
    await eventually(`${name} converged`, async () => ((await unconverged(c, fleet)).length === 0 ? true : undefined), 60_000, 250);
    console.log(`RBAC rule for NetworkPolicies restored: ${name} Ready ${((Date.now() - granted) / 1000).toFixed(1)} s later, without a restart`);
    expect((await networking.listNamespacedNetworkPolicy({ namespace: ns, labelSelector: `lockstep.dev/encrypted-service=${name}` })).items).toHaveLength(2);
    expect(compare(before, await inventory(c, ns))).toEqual([]);
  }, 180_000);
});
