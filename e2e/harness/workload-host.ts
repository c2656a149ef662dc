// The workload host: a process of its own that runs the stand-in workloads (mutual-TLS servers
// that hot-reload from the API server, as a pod reloads a mounted Secret) and the clients that
// handshake with them, driven by the test process over IPC (tls-workload.ts).
//
// Why a process of its own: in the test's process, the operator under test and the jest runtime
// share one heap and one event loop with the servers, and a multi-second major GC there made
// servers "not answer" — a failure of the test rig, counted against the rotation under test.
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { TLS12_CIPHER_SUITES } from '../../operator/api/v1alpha1/index.js';
import { opensslSuites } from '../../operator/rotationschedule/tls-floor.js';
import { MaterialWatch, readMaterial, serialOfPem, type Material } from './tls-material.js';
import type { Call, HandshakeCounts, Reply, Request, Served, WorkloadOptions } from './workload-protocol.js';

const kc = new k8s.KubeConfig();
kc.loadFromDefault();
const api = { core: kc.makeApiClient(k8s.CoreV1Api) };

const CBC_SUITES = 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA';

function listen(server: net.Server, address: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => resolve());
  });
}

class Workload {
  private server: tls.Server | undefined;
  private front: net.Server | undefined;
  private watch: MaterialWatch | undefined;
  servedSerial = '';
  reloads = 0;
  /** Open connections of both servers: stop() ends them, or close() would wait on a probe still open. */
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(
    readonly namespace: string,
    readonly service: string,
    readonly address: string,
    private readonly options: WorkloadOptions,
    private readonly onReload: (w: Workload) => void,
  ) {}

  async start(): Promise<void> {
    const material = await readMaterial(api, this.namespace, this.service);
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
    this.track(this.server);
    this.servedSerial = serialOfPem(material.cert);
    await listen(this.server, this.options.acceptPlaintext ? '127.0.0.1' : this.address);
    this.port = (this.server.address() as AddressInfo).port;
    if (this.options.acceptPlaintext) {
      // The TLS server reads from a socket's handle, so a sniffed connection is relayed to it.
      const inner = this.port;
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
      this.track(this.front);
      await listen(this.front, this.address);
      this.port = (this.front.address() as AddressInfo).port;
    }
    if (this.options.hotReload === false) return;
    this.watch = new MaterialWatch(api, this.namespace, this.service, material, (m) => {
      this.server?.setSecureContext(context(m));
      this.servedSerial = serialOfPem(m.cert);
      this.reloads++;
      this.onReload(this);
    });
    this.watch.start();
  }

  async stop(): Promise<void> {
    this.watch?.stop();
    const servers = [this.front, this.server].filter((s): s is net.Server => s !== undefined);
    this.front = undefined;
    this.server = undefined;
    const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(closed);
  }

  private track(server: net.Server): void {
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }
}

/**
 * How long this process's event loop stood still. A handshake's deadline counts only the time the
 * loop was running, or a stall of the rig (a starved CPU, a long GC) would count as a server that
 * never answered. A timer that fires late is seen here before any later deadline, because Node
 * runs due timers in order of their due time.
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

/** Handshakes with mutual TLS against `targets` round-robin, `perSecond` times a second. */
class HandshakeLoop {
  private watch: MaterialWatch | undefined;
  /** Built once per identity change: parsing the key and roots for every handshake costs the rig CPU. */
  private context: tls.SecureContext | undefined;
  private timer: NodeJS.Timeout | undefined;
  private next = 0;
  private started = 0;
  private inflight = new Set<Promise<void>>();
  private readonly clock = new LoopClock();
  readonly counts: HandshakeCounts = { ok: 0, failed: 0, skipped: 0, errors: [], elapsedMs: 0, stalls: 0, longestStallMs: 0 };

  constructor(
    private readonly namespace: string,
    private readonly identity: string,
    private readonly targets: () => Workload[],
    private readonly perSecond: number,
  ) {}

  async start(): Promise<void> {
    const material = await readMaterial(api, this.namespace, this.identity);
    if (!material) throw new Error(`${this.identity}: no TLS material yet`);
    const contextOf = (m: Material) => tls.createSecureContext({ cert: m.cert, key: m.key, ca: m.ca, minVersion: 'TLSv1.2' });
    this.context = contextOf(material);
    this.watch = new MaterialWatch(api, this.namespace, this.identity, material, (m) => (this.context = contextOf(m)));
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
        // An overloaded rig must not snowball: past a second's worth in flight, a due handshake
        // is skipped (and reported) rather than queued behind the others until all time out.
        if (this.inflight.size >= this.perSecond) {
          this.counts.skipped++;
          continue;
        }
        const p = this.handshake(target).finally(() => this.inflight.delete(p));
        this.inflight.add(p);
      }
    }, Math.round(1000 / this.perSecond));
  }

  private handshake(target: Workload): Promise<void> {
    const deadlineMs = 5_000;
    const began = this.clock.now();
    return new Promise((resolve) => {
      // No session resumption: each handshake is a full one, judged against the current roots.
      const socket = tls.connect({
        host: target.address, port: target.port, servername: `${target.service}.${target.namespace}.svc`,
        secureContext: this.context, minVersion: 'TLSv1.2',
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
      // The deadline counts running time only (LoopClock): after a stall of this process the
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

const workloads = new Map<number, Workload>();
const clients = new Map<number, HandshakeLoop>();

function send(message: Reply | Served): void {
  process.send?.(message);
}

async function handle(request: Request): Promise<Omit<Extract<Reply, { ok: true }>, 'call' | 'ok'>> {
  switch (request.op) {
    case 'startWorkload': {
      const w = new Workload(request.namespace, request.service, request.address, request.options, (r) => send({ served: request.id, serial: r.servedSerial, reloads: r.reloads }));
      await w.start();
      workloads.set(request.id, w);
      return { port: w.port, servedSerial: w.servedSerial };
    }
    case 'stopWorkload': {
      await workloads.get(request.id)?.stop();
      workloads.delete(request.id);
      return {};
    }
    case 'startClient': {
      const targets = () => request.targets.map((id) => workloads.get(id)).filter((w): w is Workload => !!w);
      const loop = new HandshakeLoop(request.namespace, request.identity, targets, request.perSecond);
      await loop.start();
      clients.set(request.id, loop);
      return {};
    }
    case 'stopClient': {
      const counts = await clients.get(request.id)?.stop();
      clients.delete(request.id);
      return counts ? { counts } : {};
    }
  }
}

process.on('message', (message: Call) => {
  handle(message.request).then(
    (result) => send({ call: message.call, ok: true, ...result }),
    (err: unknown) => send({ call: message.call, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
// The test process went away (or let go of this host): nothing here may outlive it.
process.on('disconnect', () => process.exit(0));
