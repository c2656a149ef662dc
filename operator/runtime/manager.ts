import { sleep, systemClock, type Clock } from './clock.js';
import type { Controller } from './controller.js';
import { informerSynced, startHealthServer, type HealthServer, type ReadinessCheck } from './health.js';
import type { Informer } from './informer.js';
import { LeaderElector, type LeaderElectionOptions } from './leader-election.js';
import type { Logger } from './logger.js';
import type { OperatorMetrics } from './metrics.js';
import type { Reachability } from './reachability.js';

// Runs everything in one process: informers and the health server always (followers keep warm
// caches and report ready), controllers only while leading. Shutdown order matters:
//   readiness off → controllers drain (still leader, so in-flight writes may finish) → pending
//   Events flushed → lease released (only if the drain finished: releasing while a reconcile
//   still runs would let a new leader write concurrently) → informers → health server.
// Losing the lease ends the run like controller-runtime does: the process should exit and be
// restarted as a follower, rather than try to resume with half-stopped controllers.

export type ExitReason = 'signal' | 'lost-leadership';

export interface ManagerOptions {
  readonly logger: Logger;
  readonly metrics: OperatorMetrics;
  /** Omit to run without election (one replica, tests): this process always leads. */
  readonly leaderElection?: Omit<LeaderElectionOptions, 'logger' | 'clock' | 'onStartedLeading' | 'onStoppedLeading'>;
  /** Omit or `false` for no HTTP server. */
  readonly health?: { readonly port: number; readonly host?: string } | false;
  /** Upper bound on the controllers' drain at shutdown. Default 20 s (inside the pod's 30 s grace). */
  readonly drainTimeoutMs?: number;
  /** Things to flush before the lease is released (e.g. the Event recorder). */
  readonly flushers?: ReadonlyArray<{ flush(): Promise<void> }>;
  /**
   * Says when the API server answers again after not answering: informers relist and failed keys
   * are retried at once instead of after their backoff. Stopped with the manager.
   */
  readonly reachability?: Reachability;
  readonly clock?: Clock;
}

/** An AbortSignal that fires on the first SIGTERM or SIGINT; a second one kills as usual. */
export function shutdownSignal(signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): AbortSignal {
  const controller = new AbortController();
  for (const s of signals) process.once(s, () => controller.abort(s));
  return controller.signal;
}

export class Manager {
  private readonly opts: ManagerOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly informers = new Set<Informer>();
  private readonly controllers: Controller[] = [];
  private readonly extraChecks: ReadinessCheck[] = [];
  private elector: LeaderElector | undefined;
  private health: HealthServer | undefined;
  private leadingWithoutElection = false;
  private shuttingDown = false;
  private controllersStarted = false;
  private running = false;
  private stopWaking: (() => void) | undefined;

  constructor(options: ManagerOptions) {
    this.opts = options;
    this.log = options.logger.child('manager');
    this.clock = options.clock ?? systemClock;
  }

  addInformer(informer: Informer): void {
    this.informers.add(informer);
  }

  /** Adds a controller and the informers it watches. */
  addController(controller: Controller): void {
    this.controllers.push(controller);
    for (const i of controller.informers()) this.addInformer(i);
  }

  addReadinessCheck(check: ReadinessCheck): void {
    this.extraChecks.push(check);
  }

  /** Whether this replica may write. Pass to leaderGuardedKubeConfig. */
  isLeader(): boolean {
    if (this.elector) return this.elector.isLeader();
    return this.leadingWithoutElection;
  }

  readinessChecks(): ReadinessCheck[] {
    return [
      { name: 'shutdown', ready: () => !this.shuttingDown },
      ...[...this.informers].map(informerSynced),
      ...this.extraChecks,
    ];
  }

  /** The port the health server listens on (useful with port 0). */
  healthPort(): number | undefined {
    return this.health?.port;
  }

  /** Runs until `signal` aborts or leadership is lost, then shuts down in order. */
  async run(signal: AbortSignal): Promise<ExitReason> {
    if (this.running) throw new Error('manager is already running');
    this.running = true;
    const { metrics } = this.opts;
    metrics.leader.set(0);

    let lost!: () => void;
    const leadershipLost = new Promise<ExitReason>((resolve) => {
      lost = () => resolve('lost-leadership');
    });
    const signalled = new Promise<ExitReason>((resolve) => {
      if (signal.aborted) resolve('signal');
      else signal.addEventListener('abort', () => resolve('signal'), { once: true });
    });

    if (this.opts.health) {
      this.health = await startHealthServer({
        port: this.opts.health.port,
        ...(this.opts.health.host !== undefined ? { host: this.opts.health.host } : {}),
        registry: metrics.registry,
        readiness: () => this.readinessChecks(),
        logger: this.opts.logger,
      });
    }
    for (const i of this.informers) i.start();
    this.stopWaking = this.opts.reachability?.onRestored(() => this.retryNow());

    if (this.opts.leaderElection) {
      this.elector = new LeaderElector({
        ...this.opts.leaderElection,
        logger: this.opts.logger,
        clock: this.clock,
        onStartedLeading: () => {
          metrics.leader.set(1);
          void this.startControllers();
        },
        onStoppedLeading: (reason) => {
          metrics.leader.set(0);
          if (reason === 'lost') lost();
        },
      });
      this.elector.start();
    } else {
      this.leadingWithoutElection = true;
      metrics.leader.set(1);
      void this.startControllers();
    }

    const reason = await Promise.race([signalled, leadershipLost]);
    this.log.info('shutting down', { reason });
    await this.shutdown(reason);
    return reason;
  }

  private async startControllers(): Promise<void> {
    const needed = new Set(this.controllers.flatMap((c) => c.informers()));
    await Promise.all([...needed].map((i) => i.synced));
    if (this.shuttingDown || !this.isLeader() || this.controllersStarted) return;
    this.controllersStarted = true;
    for (const c of this.controllers) c.start();
    this.log.info('controllers started', { controllers: this.controllers.map((c) => c.name) });
  }

  /** The API server is back: everything that backed off while it was away tries again now. */
  private retryNow(): void {
    if (this.shuttingDown) return;
    for (const i of this.informers) i.retryNow();
    const retried = this.controllers.reduce((n, c) => n + c.queue.retryFailedNow(), 0);
    this.log.info('API server back: relisting and retrying failed objects now', { retried });
  }

  private async shutdown(reason: ExitReason): Promise<void> {
    this.shuttingDown = true;
    this.stopWaking?.();
    const drainMs = this.opts.drainTimeoutMs ?? 20_000;
    const drain = Promise.all(this.controllers.map((c) => c.stop())).then(() => 'drained' as const);
    const outcome = await this.within(drain, drainMs);
    if (outcome === 'timeout') {
      this.log.warn('reconciles still running after the drain timeout; not releasing the lease', { drainTimeoutMs: drainMs });
    }
    for (const f of this.opts.flushers ?? []) {
      await this.within(f.flush(), 2_000).catch((err: unknown) => this.log.warn('flush failed', { err }));
    }
    if (this.elector) {
      await this.elector.stop({ release: outcome === 'drained' && reason === 'signal' });
    }
    this.leadingWithoutElection = false;
    this.opts.metrics.leader.set(0);
    await Promise.all([...this.informers].map((i) => i.stop()));
    await this.opts.reachability?.stop();
    await this.health?.close();
    this.health = undefined;
    this.log.info('stopped', { reason });
  }

  /** `work`'s result, or 'timeout' after `ms` — without leaving the timer behind. */
  private async within<T>(work: Promise<T>, ms: number): Promise<T | 'timeout'> {
    const cancel = new AbortController();
    const timeout = sleep(this.clock, ms, cancel.signal).then(
      () => 'timeout' as const,
      () => 'timeout' as const,
    );
    try {
      return await Promise.race([work, timeout]);
    } finally {
      cancel.abort();
    }
  }
}
