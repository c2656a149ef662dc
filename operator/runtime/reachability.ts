import { sleep, systemClock, type Clock } from './clock.js';
import type { Logger } from './logger.js';

// Whether the API server answers. Every request the operator sends that gets no answer at all
// (connection refused or reset, TLS cut) says it is down (throttledHttp reports them). While it
// is, everything that failed backs off on its own, and by the time the server is back those
// backoffs are long (an informer that failed four times waits 16 s, a key that failed six times
// 32 s). So while it is down one cheap probe a second (GET /readyz, which every user may read)
// finds out when it is back, and whoever subscribed (the manager: informers relist, failed keys
// are retried with their backoff reset) is told at once. Only the probe says "back": a server
// that is starting answers some requests (404 for paths not installed yet, 503) before it is
// ready, and waking everything then would only fail it again with a longer backoff. A 503 never
// says "down" either: one unavailable API (an aggregated one) must not wake everything in a loop.

export interface ReachabilityOptions {
  /** True when the API server answers and is ready (GET /readyz is 200). */
  readonly probe: (signal: AbortSignal) => Promise<boolean>;
  /** Between probes while the server is down. Default 1 s. */
  readonly intervalMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Told 1 or 0 at every change, and 1 at the start (a gauge). */
  readonly report?: (reachable: 0 | 1) => void;
}

export class Reachability {
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly log: Logger | undefined;
  private readonly listeners = new Set<() => void>();
  private readonly stopController = new AbortController();
  private down = false;
  private downSince = 0;
  private probing: Promise<void> | undefined;

  constructor(private readonly opts: ReachabilityOptions) {
    this.clock = opts.clock ?? systemClock;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.log = opts.logger?.child('reachability');
    opts.report?.(1);
  }

  /** False from a request that got no answer until the probe finds the server ready. */
  reachable(): boolean {
    return !this.down;
  }

  /** A request got no answer: connection refused or reset, TLS failure, no response in time. */
  unanswered(): void {
    if (this.stopController.signal.aborted) return;
    if (!this.down) {
      this.down = true;
      this.downSince = this.clock.now();
      this.opts.report?.(0);
      this.log?.warn('API server not answering; probing /readyz until it does', { intervalMs: this.intervalMs });
    }
    this.probing ??= this.probeUntilBack().finally(() => (this.probing = undefined));
  }

  /** The probe found the server ready again. */
  private answered(): void {
    if (!this.down) return;
    this.down = false;
    this.opts.report?.(1);
    this.log?.info('API server answers again; waking what backed off', { downMs: this.clock.now() - this.downSince });
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (err) {
        this.log?.error('reachability listener failed', { err });
      }
    }
  }

  /** `listener` runs each time the server answers again after not answering. Returns an unsubscribe. */
  onRestored(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Ends probing; the object reports nothing more. */
  async stop(): Promise<void> {
    this.stopController.abort();
    this.listeners.clear();
    await this.probing;
    this.down = false;
  }

  private async probeUntilBack(): Promise<void> {
    const stop = this.stopController.signal;
    while (this.down && !stop.aborted) {
      try {
        await sleep(this.clock, this.intervalMs, stop);
      } catch {
        return;
      }
      if (!this.down) return;
      const ok = await this.opts.probe(AbortSignal.any([stop, AbortSignal.timeout(Math.max(this.intervalMs, 5000))])).catch(() => false);
      if (ok && !stop.aborted) this.answered();
    }
  }
}
