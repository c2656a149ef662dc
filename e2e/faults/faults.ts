// The faults themselves: a process of the local control plane killed with SIGKILL and started
// again (e2e/controlplane/restart.sh), or the operator's own network to the API server cut
// (a TcpProxy the operator's kubeconfig points at). Each resolves when the dependency is back,
// with the time it went away and the time it came back.
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../harness/manifests.js';
import type { TcpProxy } from '../harness/tcp-proxy.js';

export interface Outage {
  readonly downAt: number;
  readonly backAt: number;
}

export interface Fault {
  /** e.g. `kube-apiserver SIGKILL, down 5 s`. */
  readonly name: string;
  inject(): Promise<Outage>;
}

export const COMPONENTS = ['kube-apiserver', 'etcd', 'cert-manager', 'kube-controller-manager'] as const;
export type Component = (typeof COMPONENTS)[number] | 'kubelet';

const run = promisify(execFile);

/** Is this the local cluster of cluster-up.sh (its pids beside the kubeconfig)? */
export function clusterDir(): string | undefined {
  return process.env.KUBECONFIG ? dirname(process.env.KUBECONFIG) : undefined;
}

/**
 * SIGKILL, down for `downSeconds`, started again with the same command line. "Back" is when the
 * API server answers /readyz again (etcd, kube-apiserver) or the process runs (controllers).
 */
export function killAndRestart(component: Component, downSeconds: number): Fault {
  return {
    name: `${component} SIGKILL, down ${downSeconds} s`,
    async inject() {
      const { stdout } = await run('bash', [join(repoRoot, 'e2e/controlplane/restart.sh'), component], {
        env: { ...process.env, CLUSTER_DIR: clusterDir() ?? '', DOWN_SECONDS: String(downSeconds) },
      });
      const [killed, started, ready] = stdout.trim().split(' ').map(Number);
      const apiAffected = component === 'kube-apiserver' || component === 'etcd';
      return { downAt: killed ?? 0, backAt: (apiAffected ? ready : started) ?? 0 };
    },
  };
}

/** The reference: how long the same services take to converge with nothing broken. */
export function noFault(): Fault {
  return {
    name: 'no fault (reference)',
    async inject() {
      const now = Date.now();
      return { downAt: now, backAt: now };
    },
  };
}

export function networkCut(proxy: TcpProxy, seconds: number): Fault {
  return {
    name: `operator ↔ API server network cut for ${seconds} s`,
    async inject() {
      proxy.cut();
      const downAt = Date.now();
      await new Promise((r) => setTimeout(r, seconds * 1000));
      proxy.restore();
      return { downAt, backAt: Date.now() };
    },
  };
}
