// Stand-ins for workloads on a cluster without a kubelet: mutual-TLS servers on this host that
// load their certificate and key from an EncryptedService's TLS Secret and the trust bundle from
// the namespace's ConfigMap, polling the API server (as a kubelet refreshes a mounted Secret) and
// hot-reloading with setSecureContext; and a client that handshakes with them continuously.
// Both run in the workload host, a process of their own (workload-host.ts says why); the classes
// here are the test's handles on them.
import { spawn, type ChildProcess } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Clients } from './cluster.js';
import { repoRoot } from './manifests.js';
import type { Call, HandshakeCounts, Reply, Request, Served, WorkloadOptions } from './workload-protocol.js';

export { readMaterial, serialOfPem, type Material } from './tls-material.js';
export type { HandshakeCounts, WorkloadOptions } from './workload-protocol.js';

/**
 * An address of this host that EndpointSlices accept: the API server rejects loopback (and
 * link-local) endpoint addresses, so workloads listen on the first external IPv4 address.
 */
export function workloadAddress(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('169.254.')) return a.address;
    }
  }
  throw new Error('no non-loopback IPv4 address on this host for EndpointSlices to point at');
}

type Result = Omit<Extract<Reply, { ok: true }>, 'call' | 'ok'>;

/**
 * The workload host process, started on first use and let go when nothing runs in it. It never
 * keeps the test process alive, and exits when the test process goes.
 */
class Host {
  private readonly child: ChildProcess;
  private calls = 0;
  private readonly pending = new Map<number, { resolve: (r: Result) => void; reject: (e: Error) => void }>();
  private readonly reloads = new Map<number, (s: Served) => void>();
  private running = 0;
  private exited = false;

  constructor() {
    this.child = spawn(process.execPath, ['--import', 'tsx', 'e2e/harness/workload-host.ts'], {
      cwd: repoRoot, env: process.env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (m: Reply | Served) => {
      if ('served' in m) {
        this.reloads.get(m.served)?.(m);
        return;
      }
      const call = this.pending.get(m.call);
      this.pending.delete(m.call);
      this.idle();
      if (m.ok) call?.resolve(m);
      else call?.reject(new Error(`workload host: ${m.error}`));
    });
    this.child.once('exit', (code, signal) => {
      this.exited = true;
      for (const call of this.pending.values()) call.reject(new Error(`workload host exited (code ${code}, signal ${signal})`));
      this.pending.clear();
      if (host === this) host = undefined;
    });
  }

  call(request: Request): Promise<Result> {
    if (this.exited || !this.child.connected) return Promise.reject(new Error('workload host is gone'));
    const call = ++this.calls;
    // Held while an answer is due, so a test awaiting it does not see an empty event loop.
    this.child.ref();
    this.child.channel?.ref();
    return new Promise<Result>((resolve, reject) => {
      this.pending.set(call, { resolve, reject });
      this.child.send({ call, request } satisfies Call);
    });
  }

  onReload(id: number, listener: (s: Served) => void): void {
    this.reloads.set(id, listener);
  }

  started(): void {
    this.running++;
  }

  stopped(id: number): void {
    this.reloads.delete(id);
    this.running--;
    if (this.running === 0 && this.pending.size === 0) {
      // Nothing left in it: let it go (it exits when the channel closes).
      this.child.disconnect();
      if (host === this) host = undefined;
    }
  }

  private idle(): void {
    if (this.pending.size > 0) return;
    this.child.unref();
    this.child.channel?.unref();
  }
}

let host: Host | undefined;
let ids = 0;
const theHost = () => (host ??= new Host());

export class TlsWorkload {
  private readonly id = ++ids;
  private host: Host | undefined;
  /** Serial of the certificate currently configured on the server (as the host last reported). */
  servedSerial = '';
  reloads = 0;
  private listeningPort = 0;

  constructor(
    // Kept for the callers' shape: the host reads with the same KUBECONFIG.
    _c: Clients,
    readonly namespace: string,
    readonly service: string,
    readonly address: string,
    private readonly options: WorkloadOptions = {},
  ) {}

  get port(): number {
    return this.listeningPort;
  }

  /** The host's handle for this workload (HandshakeClient targets it by this). */
  get hostId(): number {
    return this.id;
  }

  async start(): Promise<void> {
    const h = theHost();
    h.onReload(this.id, (s) => {
      this.servedSerial = s.serial;
      this.reloads = s.reloads;
    });
    const r = await h.call({ op: 'startWorkload', id: this.id, namespace: this.namespace, service: this.service, address: this.address, options: this.options });
    this.host = h;
    h.started();
    this.listeningPort = r.port ?? 0;
    this.servedSerial = r.servedSerial ?? '';
  }

  async stop(): Promise<void> {
    const h = this.host;
    this.host = undefined;
    if (!h) return;
    try {
      await h.call({ op: 'stopWorkload', id: this.id });
    } finally {
      h.stopped(this.id);
    }
  }

  /** A Service without selector and an EndpointSlice pointing at this server. */
  objects(): KubernetesObject[] {
    return [
      {
        apiVersion: 'v1', kind: 'Service', metadata: { name: this.service, namespace: this.namespace },
        spec: { ports: [{ name: 'https', port: 443, targetPort: this.port, protocol: 'TCP' }] },
      } as KubernetesObject,
      {
        apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
        metadata: {
          name: `${this.service}-local`, namespace: this.namespace,
          labels: { 'kubernetes.io/service-name': this.service, 'endpointslice.kubernetes.io/managed-by': 'e2e.lockstep.dev' },
        },
        addressType: 'IPv4',
        ports: [{ name: 'https', port: this.port, protocol: 'TCP' }],
        endpoints: [{ addresses: [this.address], conditions: { ready: true } }],
      } as KubernetesObject,
    ];
  }
}

/**
 * Handshakes with mutual TLS against `targets` round-robin, `perSecond` times a second, with the
 * identity of `identity` (reloaded like a workload's) and the namespace's trust bundle. Runs in
 * the workload host beside the servers; `counts` is filled in by stop().
 */
export class HandshakeClient {
  private readonly id = ++ids;
  private host: Host | undefined;
  readonly counts: HandshakeCounts = { ok: 0, failed: 0, skipped: 0, errors: [], elapsedMs: 0, stalls: 0, longestStallMs: 0 };

  constructor(
    _c: Clients,
    private readonly namespace: string,
    private readonly identity: string,
    private readonly targets: () => TlsWorkload[],
    private readonly perSecond = 25,
  ) {}

  async start(): Promise<void> {
    const h = theHost();
    await h.call({ op: 'startClient', id: this.id, namespace: this.namespace, identity: this.identity, targets: this.targets().map((t) => t.hostId), perSecond: this.perSecond });
    this.host = h;
    h.started();
  }

  async stop(): Promise<HandshakeCounts> {
    const h = this.host;
    this.host = undefined;
    if (!h) return this.counts;
    try {
      const r = await h.call({ op: 'stopClient', id: this.id });
      if (r.counts) Object.assign(this.counts, r.counts);
    } finally {
      h.stopped(this.id);
    }
    return this.counts;
  }
}

/** For a test's output: how often the workload host stood still (not counted against servers). */
export function stallNote(counts: HandshakeCounts): string {
  const notes = [
    counts.stalls ? `the workload host stood still ${counts.stalls} times, longest ${(counts.longestStallMs / 1000).toFixed(1)}s` : '',
    counts.skipped ? `${counts.skipped} due handshakes skipped with a second's worth in flight` : '',
  ].filter(Boolean);
  return notes.length ? ` (${notes.join('; ')})` : '';
}
