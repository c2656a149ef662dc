// charts/lockstep on the real API server, through Helm's own Go packages (e2e/helm): the rendered
// objects are accepted (server-side dry run) with non-default values, and a real `helm install` /
// `helm upgrade` (changed values change the Deployment, and nothing else) / `helm uninstall`
// leaves the CRDs, the KeyPolicies and their key Secrets in place. The cluster is left as found:
// cluster-scoped objects that existed before (CRDs, RBAC or admission policies from other suites)
// are restored after the uninstall, applied server-side under the field manager the suites'
// `kubectl apply --server-side` uses, so their next apply does not conflict with the restorer. The renders themselves are unit-tested in
// manifests-app/helm-chart.test.ts.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { CHART, helm, helmBinary, renderChart, type ChartObject } from './helm/tool.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, deleteNamespaceAndFinalize, exists, installCrds } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';

const c = clients();
const RELEASE = 'lockstep';
/** The field manager of the suites' `kubectl apply --server-side` (installCrds, installOperatorAccount). */
const FIELD_MANAGER = 'lockstep-e2e';
const kubectl = (args: string[], input?: string): string =>
  execFileSync('kubectl', args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });

let releaseNs: string;
let appNs: string;
let operator: RunningOperator | undefined;
const before: KubernetesObject[] = [];

// What the chart installs, as the API server last stored it before the test (cluster-scoped only:
// the namespaced ones live in the test's own namespace).
async function snapshotClusterScoped(objects: ChartObject[]): Promise<void> {
  for (const o of objects.filter((x) => !x.metadata.namespace)) {
    if (!(await exists(c, o))) continue;
    const live = await c.objects.read({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name } });
    before.push(live);
  }
}

async function restoreClusterScoped(): Promise<void> {
  for (const live of before) {
    const { name, labels, annotations } = live.metadata ?? {};
    if (live.kind === 'CustomResourceDefinition') {
      // Kept by `helm uninstall`: only Helm's ownership marks come off (the next suite's installCrds
      // brings back one that a failed test lost).
      if (!(await exists(c, live))) continue;
      kubectl(['label', 'crd', name ?? '', 'app.kubernetes.io/managed-by-']);
      kubectl(['annotate', 'crd', name ?? '', 'meta.helm.sh/release-name-', 'meta.helm.sh/release-namespace-']);
      continue;
    }
    if (await exists(c, live)) continue;
    const { metadata: _m, status: _s, ...body } = live as KubernetesObject & { status?: unknown };
    const restored = { ...body, metadata: { name, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) } };
    kubectl(['apply', '--server-side', '--force-conflicts', `--field-manager=${FIELD_MANAGER}`, '-f', '-'], JSON.stringify(restored));
  }
}

beforeAll(async () => {
  helmBinary();
  installCrds();
  releaseNs = await createTestNamespace(c, 'e2e-helm');
  appNs = await createTestNamespace(c, 'e2e-helm-app');
}, 1_800_000);

afterAll(async () => {
  if (operator) {
    await deleteNamespaceAndFinalize(c, appNs);
    await operator.stop();
  } else {
    await deleteTestNamespace(c, appNs);
  }
  await deleteTestNamespace(c, releaseNs);
}, 120_000);

describe('charts/lockstep', () => {
  it('renders objects the API server accepts with non-default values (kubectl apply --dry-run=server)', () => {
    const objects = renderChart(['--namespace', releaseNs], {
      replicas: 3, priorityClassName: 'system-cluster-critical',
      'tolerations[0].key': 'dedicated', 'tolerations[0].operator': 'Exists', 'tolerations[0].effect': 'NoSchedule',
      'image.digest': `sha256:${'b'.repeat(64)}`, 'crds.keep': false,
    });
    const yaml = objects.map((o) => `---\n${JSON.stringify(o)}\n`).join('');
    const applied = kubectl(['apply', '--server-side', '--force-conflicts', '--dry-run=server', '--field-manager=lockstep-e2e', '-f', '-'], yaml)
      .trim().split('\n');
    expect(applied).toHaveLength(objects.length);
    for (const line of applied) expect(line).toMatch(/(serverside-applied|unchanged|configured) \(server dry run\)$/);
  });

  it('installs with Helm, `helm upgrade` changes only the Deployment, and `helm uninstall` leaves the CRDs, the KeyPolicies and their key Secrets', async () => {
    const values = { replicas: 0 }; // the operator's image is not published: no pods, only the objects
    await snapshotClusterScoped(renderChart(['--namespace', releaseNs], values));
    try {
      // --take-ownership: the CRDs (and any RBAC) other suites applied with kubectl become the release's,
      // the way a user moves from `kubectl apply -k manifests/` to the chart.
      const install = helm('install', [CHART, '--namespace', releaseNs, '--release', RELEASE, '--take-ownership'], values);
      expect({ status: install.status, stderr: install.stderr }).toEqual({ status: 0, stderr: '' });
      expect(install.stdout).toContain('deployed');
      const deployment = await c.objects.read({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'lockstep-operator', namespace: releaseNs } });
      expect(deployment.metadata?.annotations?.['meta.helm.sh/release-name']).toBe(RELEASE);

      // A KeyPolicy and the key Secret the operator makes for it: what an uninstall must not take.
      operator = startInProcess(c.kc);
      await applyAsUser(c, { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'kept', namespace: appNs }, spec: { keyWrap: { algorithm: 'A256KW' } } } as KubernetesObject);
      const keySecret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'kept-keys', namespace: appNs } };
      await eventually('the KeyPolicy\'s key Secret', async () => ((await exists(c, keySecret)) ? true : undefined), 60_000);

      // New values: the Deployment rolls to them; CRDs, the KeyPolicy and its keys stay as they were.
      const crds = ['encryptedservices', 'keypolicies', 'rotationschedules'].map((plural) => ({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: `${plural}.lockstep.dev` } }));
      const policyRef = { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'kept', namespace: appNs } };
      // The CRDs by resourceVersion; the KeyPolicy and its key Secret (which the running operator
      // may still write) by uid, generation and a digest of the keys (no key material in a diff).
      const digest = (data: unknown) => createHash('sha256').update(JSON.stringify(data ?? {})).digest('hex');
      const state = async () => [
        ...await Promise.all(crds.map(async (o) => (await c.objects.read(o)).metadata?.resourceVersion)),
        ...await Promise.all([policyRef, keySecret].map(async (o) => {
          const live = await c.objects.read(o) as KubernetesObject & { data?: unknown };
          return [live.metadata?.uid, live.metadata?.generation, digest(live.data)];
        })),
      ];
      const untouched = await state();
      const upgrade = helm('upgrade', [CHART, '--namespace', releaseNs, '--release', RELEASE], {
        ...values, 'resources.limits.memory': '768Mi', 'extraEnv[0].name': 'LOCKSTEP_SERVICE_WORKERS', 'extraEnv[0].value': '8',
      });
      expect({ status: upgrade.status, stderr: upgrade.stderr }).toEqual({ status: 0, stderr: '' });
      expect(upgrade.stdout).toContain('upgraded lockstep revision 2: deployed');
      const upgraded = await c.objects.read({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'lockstep-operator', namespace: releaseNs } }) as KubernetesObject & { spec: { template: { spec: { containers: { resources?: { limits?: Record<string, string> }; env?: { name: string; value?: string }[] }[] } } } };
      expect(upgraded.metadata?.generation).toBe((deployment.metadata?.generation ?? 0) + 1);
      const [container] = upgraded.spec.template.spec.containers;
      expect(container?.resources?.limits?.['memory']).toBe('768Mi');
      expect(container?.env).toContainEqual({ name: 'LOCKSTEP_SERVICE_WORKERS', value: '8' });
      expect(await state()).toEqual(untouched);

      const uninstall = helm('uninstall', ['--namespace', releaseNs, '--release', RELEASE]);
      expect({ status: uninstall.status, stderr: uninstall.stderr }).toEqual({ status: 0, stderr: '' });
      expect(uninstall.stdout).toMatch(/kept due to the resource policy/);
      await eventually('the Deployment deleted', async () => ((await exists(c, deployment)) ? undefined : true), 30_000);
      for (const plural of ['encryptedservices', 'keypolicies', 'rotationschedules']) {
        expect(await exists(c, { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: `${plural}.lockstep.dev` } })).toBe(true);
      }
      expect(await exists(c, { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'kept', namespace: appNs } })).toBe(true);
      expect(await exists(c, keySecret)).toBe(true);
    } finally {
      helm('uninstall', ['--namespace', releaseNs, '--release', RELEASE]);
      await restoreClusterScoped();
    }
  }, 180_000);
});
