// The operator as `make run` starts it, from dist/, as a child process authenticated as its own
// ServiceAccount with the RBAC of manifests/ — so the audit log tells its requests from the
// bench's, and its memory is its own process's.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type * as k8s from '@kubernetes/client-node';
import { waitUntil } from './kube.js';

export const OPERATOR_NAMESPACE = 'lockstep-system';
export const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NAMESPACE}:lockstep-operator`;

const kubectl = (root: string, ...args: string[]): string =>
  execFileSync('kubectl', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** CRDs, the operator's namespace, ServiceAccount, RBAC and admission policies, as manifests/ has them. */
export function installManifests(root: string): void {
  kubectl(root, 'apply', '--server-side', '--force-conflicts', '--field-manager=lockstep-bench',
    '-f', 'manifests/crds.yaml', '-f', 'manifests/namespace.yaml', '-f', 'manifests/rbac.yaml', '-f', 'manifests/admission.yaml');
  kubectl(root, 'wait', '--for=condition=Established', '--timeout=60s',
    'crd/encryptedservices.lockstep.dev', 'crd/keypolicies.lockstep.dev', 'crd/rotationschedules.lockstep.dev');
}

/** A kubeconfig file for the operator's ServiceAccount (a token valid for `hours`). */
export function writeOperatorKubeconfig(root: string, base: k8s.KubeConfig, path: string, hours: number): void {
  const token = kubectl(root, 'create', 'token', 'lockstep-operator', '-n', OPERATOR_NAMESPACE, `--duration=${hours}h`).trim();
  const cluster = base.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const caData = cluster.caData ?? (cluster.caFile ? readFileSync(cluster.caFile).toString('base64') : undefined);
  writeFileSync(path, stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'operator',
    clusters: [{ name: 'local', cluster: { server: cluster.server, ...(caData ? { 'certificate-authority-data': caData } : {}) } }],
    users: [{ name: 'operator', user: { token } }],
    contexts: [{ name: 'operator', context: { cluster: 'local', user: 'operator' } }],
  }), { mode: 0o600 });
}

export interface OperatorProcess {
  readonly pid: number;
  readonly metricsUrl: string;
  /** VmHWM and VmRSS of the process, in bytes. */
  memory(): { peak: number; current: number };
  metrics(): Promise<string>;
  stop(): Promise<void>;
  /** The last lines it printed (for errors). */
  tail(): string;
}

/** `VmHWM` / `VmRSS` from /proc/<pid>/status, in bytes. */
export function parseProcStatus(text: string): { peak: number; current: number } {
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { peak: kib('VmHWM'), current: kib('VmRSS') };
}

/** The port from the operator's `serving /healthz, /readyz and /metrics` log line. */
export function metricsPortOf(logs: string): number | undefined {
  for (const line of logs.split('\n')) {
    if (!line.includes('serving /healthz')) continue;
    try {
      const port = (JSON.parse(line) as { port?: unknown }).port;
      if (typeof port === 'number') return port;
    } catch {
      // Not a log record.
    }
  }
  return undefined;
}

export async function startOperator(root: string, kubeconfig: string, env: Record<string, string>): Promise<OperatorProcess> {
  // The flags the image starts Node with (Dockerfile, e2e/images/build.sh): memory figures are the image's.
  const child: ChildProcess = spawn(process.execPath, ['--max-semi-space-size=2', join(root, 'dist/operator/main.js')], {
    cwd: root,
    env: {
      ...process.env,
      KUBECONFIG: kubeconfig,
      LOCKSTEP_NAMESPACE: OPERATOR_NAMESPACE,
      LOCKSTEP_LEADER_ELECT: 'true',
      LOCKSTEP_DEFAULT_ISSUER: 'ClusterIssuer/lockstep-ca',
      LOCKSTEP_METRICS_ADDR: '127.0.0.1:0',
      LOCKSTEP_LOG_LEVEL: 'info',
      LOCKSTEP_APPROVER: 'all',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Keeps the start (the metrics port) and a bounded tail, never the whole log of a long run.
  let head = '';
  let tail = '';
  const take = (d: Buffer): void => {
    const s = d.toString();
    if (head.length < 64_000) head += s;
    tail = (tail + s).slice(-8000);
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let port: number | undefined;
  await waitUntil('the operator to serve /metrics', () => {
    if (child.exitCode !== null) throw new Error(`operator exited (${child.exitCode}):\n${tail}`);
    port = metricsPortOf(head);
    return port !== undefined;
  }, 60_000);
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  const pid = child.pid ?? 0;
  return {
    pid,
    metricsUrl,
    memory: () => parseProcStatus(readFileSync(`/proc/${pid}/status`, 'utf8')),
    metrics: async () => (await fetch(metricsUrl)).text(),
    tail: () => tail,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
