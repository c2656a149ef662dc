// charts/lockstep against manifests/, rendered by Helm's own Go packages (e2e/helm). With default
// values the chart renders the objects `kubectl kustomize manifests/` does; values land where a
// user expects them; `helm lint --strict` passes. The install itself is e2e/helm.e2e.test.ts.
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { byKey, CHART, helm, objectKey, parseObjects, renderChart, repoRoot, type ChartObject } from '../e2e/helm/tool.js';
import { crdTemplate, namespacedTemplate } from './helm-chart.js';

// The one object manifests/ has and the chart does not: Helm creates the release namespace
// (`helm install --create-namespace`) and must not own it. Its Pod Security labels are set by
// hand (docs/install.md).
const ONLY_IN_MANIFESTS = ['Namespace//lockstep-system'];

type PodSpec = {
  priorityClassName?: string;
  tolerations?: unknown[];
  nodeSelector?: Record<string, string>;
  containers: Array<{ image: string; args?: string[]; env: Array<{ name: string; value?: string }> }>;
};
const podSpec = (objects: ChartObject[]): PodSpec => {
  const deployment = objects.find((o) => o.kind === 'Deployment');
  if (!deployment) throw new Error('no Deployment rendered');
  return (deployment as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
};
const env = (spec: PodSpec, name: string) => spec.containers[0]?.env.find((e) => e.name === name)?.value;

describe('charts/lockstep', () => {
  it('renders with default values exactly the objects of `kubectl kustomize manifests/` (less the Namespace)', () => {
    const kustomized = byKey(parseObjects(execFileSync('kubectl', ['kustomize', `${repoRoot}manifests`], { encoding: 'utf8' })));
    const chart = byKey(renderChart());
    for (const key of ONLY_IN_MANIFESTS) {
      expect(kustomized.has(key)).toBe(true);
      kustomized.delete(key);
    }
    expect([...chart.keys()]).toEqual([...kustomized.keys()]);
    for (const [key, object] of chart) expect({ key, object }).toEqual({ key, object: kustomized.get(key) });
  });

  it('passes `helm lint --strict` with default and with non-default values', () => {
    for (const set of [{}, { replicas: 1, 'metrics.serviceMonitor.enabled': true, 'crds.install': false }]) {
      const run = helm('lint', [CHART], set);
      expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    }
  });

  it('puts replicas, priorityClassName, tolerations, nodeSelector, image, issuer, env and args where they belong', () => {
    const objects = renderChart([], {
      replicas: 3,
      priorityClassName: 'system-cluster-critical',
      'tolerations[0].key': 'dedicated', 'tolerations[0].operator': 'Equal', 'tolerations[0].value': 'security', 'tolerations[0].effect': 'NoSchedule',
      'nodeSelector.kubernetes\\.io/os': 'linux',
      'image.repository': 'registry.example/lockstep', 'image.tag': '9.9.9', 'image.digest': `sha256:${'a'.repeat(64)}`,
      defaultIssuer: 'Issuer/team-ca',
      'extraEnv[0].name': 'LOCKSTEP_SERVICE_WORKERS', 'extraEnv[0].value': '8',
      'extraArgs[0]': '--trace-warnings',
    });
    const deployment = objects.find((o) => o.kind === 'Deployment') as unknown as { spec: { replicas: number } };
    expect(deployment.spec.replicas).toBe(3);
    const spec = podSpec(objects);
    expect(spec.priorityClassName).toBe('system-cluster-critical');
    expect(spec.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'security', effect: 'NoSchedule' }]);
    expect(spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(spec.containers[0]?.image).toBe(`registry.example/lockstep:9.9.9@sha256:${'a'.repeat(64)}`);
    expect(env(spec, 'LOCKSTEP_DEFAULT_ISSUER')).toBe('Issuer/team-ca');
    expect(env(spec, 'LOCKSTEP_SERVICE_WORKERS')).toBe('8');
    expect(spec.containers[0]?.args).toEqual(['--trace-warnings']);
  });

  it('defaults the image tag to the chart appVersion', () => {
    const appVersion = /^appVersion: "?([^"\n]+)"?$/m.exec(execFileSync('cat', [`${CHART}/Chart.yaml`], { encoding: 'utf8' }))?.[1];
    expect(podSpec(renderChart()).containers[0]?.image).toBe(`ghcr.io/lockstep-dev/lockstep-operator:${appVersion}`);
  });

  it('renders a ServiceMonitor on the metrics Service when metrics.serviceMonitor.enabled', () => {
    expect(renderChart().some((o) => o.kind === 'ServiceMonitor')).toBe(false);
    const objects = renderChart([], { 'metrics.serviceMonitor.enabled': true, 'metrics.serviceMonitor.interval': '15s', 'metrics.serviceMonitor.labels.release': 'kube-prometheus' });
    const monitor = objects.find((o) => o.kind === 'ServiceMonitor') as ChartObject & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; interval: string }> } };
    const service = objects.find((o) => o.kind === 'Service') as ChartObject & { spec: { ports: Array<{ name: string }> } };
    expect(monitor.metadata.labels).toMatchObject({ release: 'kube-prometheus' });
    expect(monitor.metadata.namespace).toBe('lockstep-system');
    expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: service.spec.ports[0]?.name, interval: '15s' })]);
    const refused = helm('template', [CHART], { 'metrics.serviceMonitor.enabled': true, 'metrics.service.enabled': false });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('metrics.serviceMonitor.enabled needs metrics.service.enabled');
  });

  it('follows crds.install and crds.keep', () => {
    const crds = (objects: ChartObject[]) => objects.filter((o) => o.kind === 'CustomResourceDefinition');
    expect(crds(renderChart()).map((c) => c.metadata.annotations?.['helm.sh/resource-policy'])).toEqual(['keep', 'keep', 'keep']);
    const notKept = crds(renderChart([], { 'crds.keep': false }));
    expect(notKept).toHaveLength(3);
    for (const crd of notKept) expect(crd.metadata.annotations).toEqual({ 'argocd.argoproj.io/sync-options': 'Prune=false,Delete=false' });
    expect(crds(renderChart([], { 'crds.install': false }))).toEqual([]);
  });

  it('runs in the release namespace: objects, RBAC subjects and the admission policies\' service-account match', () => {
    const objects = renderChart(['--namespace', 'security-ops']);
    const text = JSON.stringify(objects);
    expect(text).not.toContain('lockstep-system');
    expect(text).toContain('system:serviceaccount:security-ops:lockstep-operator');
    for (const o of objects.filter((x) => ['Deployment', 'Service', 'ServiceAccount', 'Role', 'RoleBinding'].includes(x.kind))) {
      expect(objectKey(o)).toContain('/security-ops/');
    }
    const binding = objects.find((o) => o.kind === 'ClusterRoleBinding') as ChartObject & { subjects: Array<{ namespace: string }> };
    expect(binding.subjects.map((s) => s.namespace)).toEqual(['security-ops']);
  });
});

describe('chart template generation', () => {
  it('refuses text Helm would execute', () => {
    expect(() => namespacedTemplate('---\nkind: X\nmetadata: {name: "{{ x }}"}\n', 'x.yaml')).toThrow('x.yaml: contains "{{"');
  });

  it('refuses a CRD without the keep annotation (crds.keep would switch nothing)', () => {
    expect(() => crdTemplate('---\nkind: CustomResourceDefinition\nmetadata:\n  name: a\n', 'crds.yaml')).toThrow('without helm.sh/resource-policy: keep');
  });
});
