import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.js';

// /healthz: the process is alive and serving. /readyz: every informer has synced (followers
// included — they keep warm caches so a handover is fast); 503 names what is not ready. A check
// may be ready and still wait for something (a dependency not installed): the body says what.
// /metrics: the operator's own registry.

export interface ReadinessCheck {
  /** e.g. `informer/certificates`. */
  readonly name: string;
  ready(): boolean;
  /** What part of the work waits for, when it does (shown on /readyz, ready or not). */
  waitingFor?(): string | undefined;
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly failing: readonly string[];
  /** `name: what it waits for`. */
  readonly waiting: readonly string[];
}

export function evaluateReadiness(checks: Iterable<ReadinessCheck>): ReadinessReport {
  const failing: string[] = [];
  const waiting: string[] = [];
  for (const c of checks) {
    let ok = false;
    try {
      ok = c.ready();
      const why = c.waitingFor?.();
      if (why) waiting.push(`${c.name}: ${why}`);
    } catch {
      ok = false;
    }
    if (!ok) failing.push(c.name);
  }
  return { ready: failing.length === 0, failing, waiting };
}

/** The /readyz body: `ok` or what is not ready, then one line per thing waited for. */
export function readinessBody(report: ReadinessReport): string {
  const head = report.ready ? 'ok' : `not ready: ${report.failing.join(', ')}`;
  return [head, ...report.waiting.map((w) => `waiting for ${w}`)].join('\n') + '\n';
}

export function informerSynced(informer: { readonly name: string; hasSynced(): boolean }): ReadinessCheck {
  return { name: `informer/${informer.name}`, ready: () => informer.hasSynced() };
}

export interface HealthServerOptions {
  /** 0 picks a free port (tests). */
  readonly port: number;
  /** Default all interfaces. */
  readonly host?: string;
  readonly registry: Registry;
  /** Read on every /readyz request, so checks added later count. */
  readonly readiness: () => Iterable<ReadinessCheck>;
  readonly logger: Logger;
}

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  res.end(body);
}

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const log = options.logger.child('health');
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'method not allowed\n');
      return;
    }
    switch (path) {
      case '/healthz':
      case '/livez':
        send(res, 200, 'ok\n');
        return;
      case '/readyz': {
        const report = evaluateReadiness(options.readiness());
        send(res, report.ready ? 200 : 503, readinessBody(report));
        return;
      }
      case '/metrics':
        send(res, 200, await options.registry.metrics(), options.registry.contentType);
        return;
      default:
        send(res, 404, 'not found\n');
    }
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error('health endpoint failed', { err });
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info('serving /healthz, /readyz and /metrics', { port });
  return {
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
