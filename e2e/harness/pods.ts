// Real workloads on the local node (e2e/node/): Deployments of the tlsapp image that serve mTLS
// from the files the kubelet mounts (the service's TLS Secret, the namespace's trust bundle),
// and short-lived probe pods that connect from inside the pod network, where NetworkPolicies
// are enforced. Images are built locally and imported (e2e/images/): never pulled.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { it } from '@jest/globals';
import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import { eventually, type Clients } from './cluster.js';

export const TLSAPP_IMAGE = 'lockstep.local/tlsapp:dev';
export const TLS_PORT = 8443;
export const PLAINTEXT_PORT = 8080;
const TRUST_BUNDLE = 'lockstep-trust-bundle';

/**
 * True when the cluster is the local control plane with its node (e2e/node/) and the node is
 * Ready. The data-plane suites need that node: its images are imported there, this process
 * reaches its pod IPs, and its host guards are what they check. On another cluster (kind) they
 * are skipped with a message.
 */
export async function nodeReady(c: Clients): Promise<boolean> {
  const kubeconfig = process.env.KUBECONFIG ?? '';
  if (!existsSync(join(dirname(kubeconfig), 'node', 'ready-seconds'))) return false;
  const nodes = await c.core.listNode();
  return nodes.items.some((n) => n.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'));
}

/** `it` for a test that needs the local node: passes with a message where there is none (kind). */
export function nodeTest(ready: () => boolean) {
  return (name: string, fn: () => Promise<void>, timeout?: number) =>
    it(name, async () => {
      if (!ready()) {
        console.log(`skipped (needs the local node of make cluster-up): ${name}`);
        return;
      }
      await fn();
    }, timeout);
}

// Pod Security "restricted", as a hardened workload runs.
const restricted = {
  runAsNonRoot: true,
  runAsUser: 65532,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

function tlsVolumes(secretName: string) {
  return {
    volumes: [
      { name: 'tls', secret: { secretName } },
      { name: 'trust', configMap: { name: TRUST_BUNDLE } },
    ],
    volumeMounts: [
      { name: 'tls', mountPath: '/tls', readOnly: true },
      { name: 'trust', mountPath: '/trust', readOnly: true },
    ],
  };
}

export interface ServerOptions {
  namespace: string;
  name: string;
  /** Pod labels; the EncryptedService's workload selector must match them. */
  labels: Record<string, string>;
  serviceAccountName: string;
  /** The TLS Secret to serve (`<service>-tls`). */
  secretName: string;
  replicas?: number;
  /** Extra `tlsapp serve` flags, e.g. ['--reload=start'] or ['--plaintext-listen', ':8080']. */
  args?: string[];
  /** The workload controller; a StatefulSet gets its Service as governing (headless) service. */
  kind?: 'Deployment' | 'StatefulSet';
}

/** A Deployment (or StatefulSet) serving mutual TLS on TLS_PORT, and a Service selecting it (EndpointSlices come from
 * the controller). Connections go to pod IPs: without kube-proxy, ClusterIPs are not served. */
export function tlsServer(o: ServerOptions): KubernetesObject[] {
  const { volumes, volumeMounts } = tlsVolumes(o.secretName);
  const statefulSet = o.kind === 'StatefulSet';
  const workload = {
    apiVersion: 'apps/v1',
    kind: statefulSet ? 'StatefulSet' : 'Deployment',
    metadata: { name: o.name, namespace: o.namespace },
    spec: {
      replicas: o.replicas ?? 1,
      selector: { matchLabels: o.labels },
      ...(statefulSet
        ? { serviceName: o.name, podManagementPolicy: 'Parallel', updateStrategy: { type: 'RollingUpdate' } }
        : { strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } } }),
      template: {
        metadata: { labels: o.labels },
        spec: {
          serviceAccountName: o.serviceAccountName,
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 2,
          volumes,
          containers: [{
            name: 'tlsapp',
            image: TLSAPP_IMAGE,
            imagePullPolicy: 'Never',
            // Mutual TLS: a client certificate that chains to the namespace's trust bundle is required.
            args: ['serve', '--listen', `:${TLS_PORT}`, '--cert', '/tls/tls.crt', '--key', '/tls/tls.key', '--ca', '/trust/ca.crt',
              '--client-auth', 'require', ...(o.args ?? [])],
            ports: [{ name: 'https', containerPort: TLS_PORT }],
            readinessProbe: { tcpSocket: { port: TLS_PORT }, periodSeconds: 1 },
            securityContext: restricted,
            volumeMounts,
          }],
        },
      },
    },
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: o.name, namespace: o.namespace },
    spec: {
      selector: o.labels,
      ports: [{ name: 'https', port: TLS_PORT, targetPort: TLS_PORT }],
      ...(statefulSet ? { clusterIP: 'None' } : {}),
    },
  };
  return [workload, service];
}

export function serviceAccount(namespace: string, name: string): KubernetesObject {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } } as KubernetesObject;
}

/** Ready pods of a Deployment (by its labels), with their IPs. */
export async function readyPods(c: Clients, namespace: string, labels: Record<string, string>, count: number, timeoutMs = 90_000): Promise<V1Pod[]> {
  const selector = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
  return eventually(`${count} ready pod(s) ${selector} in ${namespace}`, async () => {
    const pods = (await c.core.listNamespacedPod({ namespace, labelSelector: selector })).items
      .filter((p) => !p.metadata?.deletionTimestamp && p.status?.podIP
        && p.status.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'));
    return pods.length === count ? pods : undefined;
  }, timeoutMs, 500);
}

export interface ProbeLine {
  ok: boolean;
  error?: string;
  servedSerial?: string;
  tls?: string;
  ms?: number;
  /** The server's application message (`tlsapp serve --message-file`), sent to verified clients only. */
  message?: string;
  /** When the attempt started (RFC 3339). */
  time?: string;
}

export interface LoadFigures {
  ok: number;
  failed: number;
  seconds: number;
  /** Good handshakes (application data both ways) per second. */
  rate: number;
  errors: string[];
}

/** Counts of a loop probe's attempts; each attempt is a fresh handshake that wrote a request and read a response. */
export function loadFigures(lines: readonly ProbeLine[]): LoadFigures {
  const times = lines.map((l) => Date.parse(l.time ?? '')).filter((t) => !Number.isNaN(t));
  const seconds = times.length > 1 ? (Math.max(...times) - Math.min(...times)) / 1000 : 0;
  const ok = lines.filter((l) => l.ok).length;
  const errors = [...new Set(lines.filter((l) => !l.ok).map((l) => l.error ?? 'unknown'))].slice(0, 5);
  return { ok, failed: lines.length - ok, seconds, rate: seconds > 0 ? ok / seconds : 0, errors };
}

export function describeLoad(f: LoadFigures): string {
  return `${f.ok} handshakes ok, ${f.failed} failed, ${f.rate.toFixed(1)}/s over ${f.seconds.toFixed(1)}s${f.errors.length ? `; errors: ${f.errors.join(' | ')}` : ''}`;
}

export interface ProbeResult {
  /** The probe's own verdict: exit 0 (every attempt as expected). */
  passed: boolean;
  lines: ProbeLine[];
  log: string;
}

export interface ProbeOptions {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** `tlsapp probe` flags (--url ... --count ...). */
  args: string[];
  /** A TLS Secret to mount at /tls (the client certificate), with the trust bundle at /trust. */
  secretName?: string;
  /**
   * The account the probe runs as. A probe carrying a service's labels is one of its pods, and the
   * operator issues that service's identity only while all its pods run as its account.
   */
  serviceAccountName?: string;
  timeoutMs?: number;
}

// A pod running `tlsapp probe <args>` (once, or with --loop), inside the pod network.
function probePod(o: Omit<ProbeOptions, 'timeoutMs'>, args: string[]): V1Pod {
  const mounts = o.secretName ? tlsVolumes(o.secretName) : { volumes: [], volumeMounts: [] };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: o.name, namespace: o.namespace, labels: o.labels },
    spec: {
      restartPolicy: 'Never',
      ...(o.serviceAccountName ? { serviceAccountName: o.serviceAccountName } : {}),
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 1,
      volumes: mounts.volumes,
      containers: [{
        name: 'probe',
        image: TLSAPP_IMAGE,
        imagePullPolicy: 'Never',
        args: ['probe', ...args],
        securityContext: restricted,
        volumeMounts: mounts.volumeMounts,
      }],
    },
  };
}

/** Runs `tlsapp probe` once in a pod of its own (inside the pod network) and returns its lines. */
export async function runProbe(c: Clients, o: ProbeOptions): Promise<ProbeResult> {
  await c.core.createNamespacedPod({ namespace: o.namespace, body: probePod(o, o.args) });
  try {
    const done = await eventually(`probe pod ${o.namespace}/${o.name} finished`, async () => {
      const p = await c.core.readNamespacedPod({ namespace: o.namespace, name: o.name });
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
    }, o.timeoutMs ?? 60_000, 300);
    const log = await c.core.readNamespacedPodLog({ namespace: o.namespace, name: o.name, container: 'probe' });
    return { passed: done.status?.phase === 'Succeeded', lines: parseLines(log), log };
  } finally {
    await c.core.deleteNamespacedPod({ namespace: o.namespace, name: o.name, gracePeriodSeconds: 0 }).catch(() => undefined);
  }
}

export function parseLines(log: string): ProbeLine[] {
  const out: ProbeLine[] = [];
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as ProbeLine);
    } catch {
      // a partial last line while the pod still writes
    }
  }
  return out;
}

/** A long-running probe pod (`--loop`), for tests that watch traffic across a change. */
export async function startLoopProbe(c: Clients, o: Omit<ProbeOptions, 'timeoutMs'>): Promise<{ lines(): Promise<ProbeLine[]>; stop(): Promise<void> }> {
  await c.core.createNamespacedPod({ namespace: o.namespace, body: probePod(o, ['--loop', ...o.args]) });
  await eventually(`loop probe ${o.name} running`, async () => {
    const p = await c.core.readNamespacedPod({ namespace: o.namespace, name: o.name });
    return p.status?.phase === 'Running' ? true : undefined;
  }, 60_000, 300);
  const read = async () => parseLines(await c.core.readNamespacedPodLog({ namespace: o.namespace, name: o.name, container: 'probe' }));
  return {
    lines: read,
    stop: async () => {
      await c.core.deleteNamespacedPod({ namespace: o.namespace, name: o.name, gracePeriodSeconds: 0 }).catch(() => undefined);
    },
  };
}
