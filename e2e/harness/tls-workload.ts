// Stand-ins for workloads on a cluster without a kubelet: mutual-TLS servers on this host that
// load their certificate and key from an EncryptedService's TLS Secret and the trust bundle from
// the namespace's ConfigMap, polling the API server (as a kubelet refreshes a mounted Secret) and
// hot-reloading with setSecureContext; and a client that handshakes with them continuously.
import { X509Certificate } from 'node:crypto';
import * as net from 'node:net';
import { networkInterfaces } from 'node:os';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { KubernetesObject } from '@kubernetes/client-node';
import { TLS12_CIPHER_SUITES } from '../../operator/api/v1alpha1/index.js';
import { opensslSuites } from '../../operator/rotationschedule/tls-floor.js';
import type { Clients } from './cluster.js';

const TRUST_BUNDLE = 'lockstep-trust-bundle';

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

function listen(server: net.Server, address: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => resolve());
  });
}

export interface Material {
  cert: string;
  key: string;
  /** PEM roots from the namespace's trust bundle. */
  ca: string;
}

export async function readMaterial(c: Clients, namespace: string, service: string): Promise<Material | undefined> {
  const [secret, bundle] = await Promise.all([
    c.core.readNamespacedSecret({ namespace, name: `${service}-tls` }),
    c.core.readNamespacedConfigMap({ namespace, name: TRUST_BUNDLE }),
  ]);
  const cert = secret.data?.['tls.crt'];
  const key = secret.data?.['tls.key'];
  const ca = bundle.data?.['ca.crt'];
  if (!cert || !key || !ca) return undefined;
  return { cert: Buffer.from(cert, 'base64').toString('utf8'), key: Buffer.from(key, 'base64').toString('utf8'), ca };
}

export function serialOfPem(pem: string): string {
  return new X509Certificate(pem).serialNumber.toUpperCase();
}

/** Polls for material every `everyMs` and calls `onChange` when the certificate or bundle changed. */
class MaterialWatch {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly c: Clients,
    private readonly namespace: string,
    private readonly service: string,
    public current: Material,
    private readonly onChange: (m: Material) => void,
    private readonly everyMs = 200,
  ) {}

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      try {
        const next = await readMaterial(this.c, this.namespace, this.service);
        if (next && (next.cert !== this.current.cert || next.key !== this.current.key || next.ca !== this.current.ca)) {
          this.current = next;
          this.onChange(next);
        }
      } catch {
        // A failed poll is retried on the next tick, like a kubelet sync.
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.everyMs);
    };
    this.timer = setTimeout(() => void tick(), this.everyMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

export interface WorkloadOptions {
  /** false: keeps serving the certificate it started with (a workload that cannot hot-reload). */
  hotReload?: boolean;
  /** Highest TLS version the server speaks. */
  maxVersion?: tls.SecureVersion;
  /** Lowest TLS version the server speaks (TLSv1.2 when omitted); TLSv1.3 for a TLS1.3 KeyPolicy. */
  minVersion?: tls.SecureVersion;
  /**
   * Also accept TLS 1.2 ECDHE CBC suites, as Node's defaults do (like tlsapp --cbc). Without it the
   * server offers only the default KeyPolicy's suites: the verifier probes for anything else.
   */
  cbc?: boolean;
  /** false: completes sessions with clients that present no certificate (mTLS not enforced). */
  requireClientCert?: boolean;
  /** true: the same port also answers plaintext HTTP (a connection whose first byte is not a TLS record). */
  acceptPlaintext?: boolean;
}

const CBC_SUITES = 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA';

export class TlsWorkload {
  private server: tls.Server | undefined;
  private front: net.Server | undefined;
  private watch: MaterialWatch | undefined;
  /** Serial of the certificate currently configured on the server. */
  servedSerial = '';
  reloads = 0;

  constructor(
    private readonly c: Clients,
    readonly namespace: string,
    readonly service: string,
    readonly address: string,
    private readonly options: WorkloadOptions = {},
  ) {}

  private listeningPort = 0;

  get port(): number {
    return this.listeningPort;
  }

  async start(): Promise<void> {
    const material = await readMaterial(this.c, this.namespace, this.service);
    if (!material) throw new Error(`${this.service}: no TLS material yet`);
    // Protocol limits belong to the secure context: a reload must carry them too.
    const ciphers = `${opensslSuites(TLS12_CIPHER_SUITES)}${this.options.cbc ? `:${CBC_SUITES}` : ''}`;
    const context = (m: Material): tls.SecureContextOptions => ({
      cert: m.cert, key: m.key, ca: m.ca, ciphers, minVersion: this.options.minVersion ?? 'TLSv1.2', ...(this.options.maxVersion ? { maxVersion: this.options.maxVersion } : {}),
    });
    const requireClientCert = this.options.requireClientCert ?? true;
    this.server = tls.createServer({ ...context(material), requestCert: requireClientCert, rejectUnauthorized: requireClientCert }, (socket) => {
      socket.on('error', () => undefined);
      // Application data both ways: the client speaks first, the server answers and closes.
      socket.once('data', () => socket.end('ok\n'));
    });
    this.server.on('tlsClientError', () => undefined);
    this.servedSerial = serialOfPem(material.cert);
    await listen(this.server, this.options.acceptPlaintext ? '127.0.0.1' : this.address);
    this.listeningPort = (this.server.address() as AddressInfo).port;
    if (this.options.acceptPlaintext) {
      // The TLS server reads from a socket's handle, so a sniffed connection is relayed to it.
      const inner = this.listeningPort;
      this.front = net.createServer((socket) => {
        socket.on('error', () => undefined);
        socket.once('data', (first: Buffer) => {
          if (first[0] !== 0x16) {
            socket.end('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n');
            return;
          }
          const relay = net.connect(inner, '127.0.0.1');
          relay.on('error', () => socket.destroy());
          relay.write(first);
          socket.pipe(relay).pipe(socket);
        });
      });
      await listen(this.front, this.address);
      this.listeningPort = (this.front.address() as AddressInfo).port;
    }
    if (this.options.hotReload === false) return;
    this.watch = new MaterialWatch(this.c, this.namespace, this.service, material, (m) => {
      this.server?.setSecureContext(context(m));
      this.servedSerial = serialOfPem(m.cert);
      this.reloads++;
    });
    this.watch.start();
  }

  async stop(): Promise<void> {
    this.watch?.stop();
    const front = this.front;
    this.front = undefined;
    if (front) await new Promise<void>((resolve) => front.close(() => resolve()));
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
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

export interface HandshakeCounts {
  ok: number;
  failed: number;
  /** First few failure messages with the second they happened at, for the test output. */
  errors: string[];
  elapsedMs: number;
  /** Times this process's event loop stood still for over a second, and the longest (ms). */
  stalls: number;
  longestStallMs: number;
}

/**
 * How long this process's event loop stood still. Servers and client share the test's process, so
 * while it stalls (a long GC, a starved CPU) nothing answers and no timer fires; a handshake's
 * deadline counts only the time the loop was running, or a stall of the test would count as a
 * server that never answered. A timer that fires late is seen here before any later deadline,
 * because Node runs due timers in order of their due time.
 */
export class LoopClock {
  private static readonly tickMs = 50;
  private timer: NodeJS.Timeout | undefined;
  private last = Date.now();
  /** Milliseconds the loop stood still, summed. */
  private stalledMs = 0;
  stalls = 0;
  longestStallMs = 0;

  start(): void {
    this.last = Date.now();
    this.timer = setInterval(() => this.observe(), LoopClock.tickMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Running time on this clock: wall time minus time stood still. */
  now(): number {
    this.observe();
    return Date.now() - this.stalledMs;
  }

  private observe(): void {
    const at = Date.now();
    const late = at - this.last - LoopClock.tickMs;
    this.last = at;
    // A busy loop is late by tens of milliseconds; only what is clearly standing still counts.
    if (late <= 250) return;
    this.stalledMs += late;
    if (late >= 1_000) this.stalls++;
    this.longestStallMs = Math.max(this.longestStallMs, late);
  }
}

/**
 * Handshakes with mutual TLS against `targets` round-robin, `perSecond` times a second, with the
 * identity of `identity` (reloaded like a workload's) and the namespace's trust bundle.
 */
export class HandshakeClient {
  private watch: MaterialWatch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private next = 0;
  private started = 0;
  private inflight = new Set<Promise<void>>();
  private readonly clock = new LoopClock();
  readonly counts: HandshakeCounts = { ok: 0, failed: 0, errors: [], elapsedMs: 0, stalls: 0, longestStallMs: 0 };

  constructor(
    private readonly c: Clients,
    private readonly namespace: string,
    private readonly identity: string,
    private readonly targets: () => TlsWorkload[],
    private readonly perSecond = 25,
  ) {}

  async start(): Promise<void> {
    const material = await readMaterial(this.c, this.namespace, this.identity);
    if (!material) throw new Error(`${this.identity}: no TLS material yet`);
    this.watch = new MaterialWatch(this.c, this.namespace, this.identity, material, () => undefined);
    this.watch.start();
    this.clock.start();
    this.started = Date.now();
    // Open loop with catch-up: a busy event loop fires timers late, so each tick starts every
    // handshake that is due by now; the offered rate stays perSecond however late the timer is.
    this.timer = setInterval(() => {
      const due = Math.floor(((Date.now() - this.started) / 1000) * this.perSecond);
      while (this.next < due) {
        const all = this.targets();
        const target = all[this.next++ % all.length];
        if (!target) return;
        const p = this.handshake(target).finally(() => this.inflight.delete(p));
        this.inflight.add(p);
      }
    }, Math.round(1000 / this.perSecond));
  }

  private handshake(target: TlsWorkload): Promise<void> {
    const m = this.watch!.current;
    const deadlineMs = 5_000;
    const began = this.clock.now();
    return new Promise((resolve) => {
      const socket = tls.connect({
        host: target.address, port: target.port, servername: `${target.service}.${target.namespace}.svc`,
        cert: m.cert, key: m.key, ca: m.ca, minVersion: 'TLSv1.2',
      });
      let settled = false;
      let timeout: NodeJS.Timeout;
      const done = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        if (err) {
          this.counts.failed++;
          const at = ((Date.now() - this.started) / 1000).toFixed(1);
          if (this.counts.errors.length < 10) this.counts.errors.push(`${target.service} at ${at}s: ${err.message}`);
        } else {
          this.counts.ok++;
        }
        socket.destroy();
        resolve();
      };
      // The deadline counts running time only (see LoopClock): after a stall of this process the
      // server gets what is left of its 5s, and a server that never answers still fails.
      const arm = (ms: number) => {
        timeout = setTimeout(() => {
          const ran = this.clock.now() - began;
          if (ran >= deadlineMs) done(new Error(`no answer within ${deadlineMs / 1000}s`));
          else arm(deadlineMs - ran);
        }, ms);
      };
      arm(deadlineMs);
      // Counted only once application data crossed both ways: under TLS 1.3 the server judges
      // the client certificate after the client's 'secureConnect', and says no with an alert.
      let answer = '';
      socket.once('secureConnect', () => socket.write('ping\n'));
      socket.on('data', (d: Buffer) => {
        answer += d.toString();
        if (answer.includes('ok\n')) done();
      });
      socket.once('end', () => done(new Error('the server closed the connection without an answer')));
      socket.once('error', (err) => done(err));
    });
  }

  async stop(): Promise<HandshakeCounts> {
    if (this.timer) clearInterval(this.timer);
    this.watch?.stop();
    await Promise.all([...this.inflight]);
    this.clock.stop();
    this.counts.elapsedMs = Date.now() - this.started;
    this.counts.stalls = this.clock.stalls;
    this.counts.longestStallMs = this.clock.longestStallMs;
    return this.counts;
  }
}

/** For a test's output: how often the test's own process stood still (not counted against servers). */
export function stallNote(counts: HandshakeCounts): string {
  return counts.stalls ? ` (this process stood still ${counts.stalls} times, longest ${(counts.longestStallMs / 1000).toFixed(1)}s)` : '';
}
