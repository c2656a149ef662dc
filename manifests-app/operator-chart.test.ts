import { describe, expect, it } from '@jest/globals';
import { renderInstall } from './render.js';
import { fileAt, findObject, fixtureCrds, objectsIn, type K8sObject } from './test-support.js';

type Container = {
  name: string;
  image: string;
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports?: Array<{ name: string; containerPort: number }>;
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
};
type PodSpec = {
  serviceAccountName?: string;
  securityContext?: Record<string, unknown>;
  containers: Container[];
  volumes?: Array<{ name: string; emptyDir?: unknown }>;
  topologySpreadConstraints?: Array<{ topologyKey: string; labelSelector?: { matchLabels?: Record<string, string> } }>;
  affinity?: { podAntiAffinity?: unknown };
};
type Deployment = K8sObject & {
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
};

function render(image?: string) {
  const files = renderInstall({ crds: fixtureCrds(), version: '9.8.7', ...(image ? { image } : {}) });
  return objectsIn(fileAt(files, 'manifests/operator.yaml'));
}

function deployment(objects: K8sObject[]): Deployment {
  return findObject(objects, 'Deployment', 'lockstep-operator') as Deployment;
}

function operatorContainer(d: Deployment): Container {
  const c = d.spec.template.spec.containers.find((x) => x.name === 'operator');
  if (!c) throw new Error('no operator container');
  return c;
}

function portNumber(container: Container, port: string | number | undefined): number | undefined {
  return typeof port === 'number' ? port : container.ports?.find((p) => p.name === port)?.containerPort;
}

describe('operator Deployment', () => {
  const objects = render();
  const d = deployment(objects);
  const pod = d.spec.template.spec;
  const c = operatorContainer(d);

  it('runs two replicas with leader election on', () => {
    expect(d.metadata.namespace).toBe('lockstep-system');
    expect(d.spec.replicas).toBe(2);
    expect(c.env).toContainEqual({ name: 'LOCKSTEP_LEADER_ELECT', value: 'true' });
    expect(pod.serviceAccountName).toBe('lockstep-operator');
  });

  it('defaults the image to the package version and accepts an override', () => {
    expect(c.image).toBe('ghcr.io/lockstep-dev/lockstep-operator:9.8.7');
    expect(operatorContainer(deployment(render('registry.local/lockstep:dev'))).image).toBe('registry.local/lockstep:dev');
  });

  it('cannot run as root, escalate, write its root file system or keep capabilities', () => {
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.securityContext?.['privileged']).not.toBe(true);
  });

  it('has a writable /tmp backed by an emptyDir', () => {
    const mount = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
    expect(mount).toBeDefined();
    const volume = pod.volumes?.find((v) => v.name === mount?.name);
    expect(volume?.emptyDir).toBeDefined();
  });

  it('declares CPU and memory requests and limits', () => {
    for (const kind of ['requests', 'limits'] as const) {
      expect(Object.keys(c.resources?.[kind] ?? {}).sort()).toEqual(['cpu', 'memory']);
    }
  });

  it('probes /healthz and /readyz on the metrics port 8080', () => {
    expect(c.ports).toContainEqual({ name: 'metrics', containerPort: 8080, protocol: 'TCP' });
    expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(portNumber(c, c.livenessProbe?.httpGet?.port)).toBe(8080);
    expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(portNumber(c, c.readinessProbe?.httpGet?.port)).toBe(8080);
    expect(c.env).toContainEqual({ name: 'LOCKSTEP_METRICS_ADDR', value: ':8080' });
  });

  it('learns its pod name and namespace from the downward API', () => {
    const fieldOf = (name: string) => c.env?.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;
    expect(fieldOf('POD_NAME')).toBe('metadata.name');
    expect(fieldOf('POD_NAMESPACE')).toBe('metadata.namespace');
    expect(fieldOf('LOCKSTEP_NAMESPACE')).toBe('metadata.namespace');
    expect(c.env).toContainEqual({ name: 'LOCKSTEP_DEFAULT_ISSUER', value: 'ClusterIssuer/lockstep-ca' });
  });

  it('spreads replicas across nodes, selecting its own pods', () => {
    const spread = pod.topologySpreadConstraints?.find((t) => t.topologyKey === 'kubernetes.io/hostname');
    expect(spread?.labelSelector?.matchLabels).toEqual(d.spec.selector.matchLabels);
    expect(pod.affinity?.podAntiAffinity).toBeDefined();
  });

  it('selects the pods its template labels', () => {
    expect(d.spec.template.metadata.labels).toMatchObject(d.spec.selector.matchLabels);
  });
});

describe('PodDisruptionBudget and metrics Service', () => {
  const objects = render();
  const d = deployment(objects);

  it('keeps at least one replica through voluntary disruptions', () => {
    const pdb = findObject(objects, 'PodDisruptionBudget') as K8sObject & {
      spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    };
    expect(pdb.metadata.namespace).toBe('lockstep-system');
    expect(pdb.spec.minAvailable).toBe(1);
    expect(pdb.spec.selector.matchLabels).toEqual(d.spec.selector.matchLabels);
  });

  it('exposes port 8080 named metrics, annotated for Prometheus, on the operator pods', () => {
    const svc = findObject(objects, 'Service') as K8sObject & {
      spec: { selector: Record<string, string>; ports: Array<{ name: string; port: number; targetPort: string | number }> };
    };
    expect(svc.metadata.namespace).toBe('lockstep-system');
    expect(svc.metadata.annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '8080',
      'prometheus.io/path': '/metrics',
    });
    expect(svc.spec.selector).toEqual(d.spec.selector.matchLabels);
    const port = svc.spec.ports.find((p) => p.name === 'metrics');
    expect(port?.port).toBe(8080);
    expect(portNumber(operatorContainer(d), port?.targetPort)).toBe(8080);
  });
});

describe('the probe source the operator admits by default', () => {
  it('is the Deployment\'s own pod selector, so an installed operator can verify what it manages', async () => {
    const { OPERATOR_POD_LABELS } = await import('../operator/config.js');
    const { SELECTOR_LABELS } = await import('./install-names.js');
    expect(OPERATOR_POD_LABELS).toEqual(SELECTOR_LABELS);
  });
});
