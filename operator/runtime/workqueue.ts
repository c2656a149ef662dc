import { systemClock, type Clock, type TimerHandle } from './clock.js';

/**
 * What a reconcile asks of the queue. Returning normally forgets the key's backoff;
 * `requeueAfter` (ms) schedules a timed re-check (e.g. before a certificate's renewal time).
 * Throwing retries with per-key exponential backoff, except for TerminalError.
 */
export interface Result {
  readonly requeueAfter?: number;
  /**
   * The reconcile wrote what it could but part of its work failed for this reason (a CamelCase
   * word), and `requeueAfter` tries again: counted as a failing object, as a thrown error is.
   */
  readonly failing?: string;
}

export type Reconciler = (key: string) => Promise<Result | void>;

/** What the queue knows about why a key is being processed. */
export interface Taken {
  /**
   * When the earliest event still pending for the key arrived (clock ms), if an event queued it
   * (not a timed requeue or a retry). The key alone is what is queued; this is only measured.
   */
  readonly eventAt?: number;
}

export type QueueHandler = (key: string, taken: Taken) => Promise<Result | void>;

/** Counts for metrics, named as client-go's workqueue metrics are. */
export interface QueueHooks {
  /** A key became pending (a duplicate of a pending key is not counted). */
  added?(): void;
  /** A failed key was scheduled for a retry with backoff. */
  retried?(): void;
  /** A reconcile asked for a timed re-check (requeueAfter). */
  requeued?(): void;
  /** A worker took a key `ms` after it became ready (client-go's queue_duration). */
  waited?(ms: number): void;
}

/**
 * A failure that retrying cannot fix (a user mistake in the spec). The key is not retried;
 * the next change to the object enqueues it again. `reason` is a CamelCase word suitable for a
 * condition reason or Event reason.
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface BackoffOptions {
  /** First retry delay. Default 500 ms. */
  readonly baseMs?: number;
  /** Ceiling of the delay. Default 5 minutes. */
  readonly capMs?: number;
}

/** Delay before retry number `failures + 1`: base · 2^failures, capped. */
export function backoffDelay(failures: number, backoff: BackoffOptions = {}): number {
  const base = backoff.baseMs ?? 500;
  const cap = backoff.capMs ?? 5 * 60_000;
  // Beyond 2^40 the product is far past any sane cap; stop the exponent before it overflows.
  return Math.min(cap, base * 2 ** Math.min(failures, 40));
}

export interface WorkQueueOptions {
  /** Parallel workers; one key is still never processed by two of them at once. Default 1. */
  readonly concurrency?: number;
  readonly backoff?: BackoffOptions;
  readonly clock?: Clock;
  /** Called whenever the number of keys ready to be processed changes (for a metrics gauge). */
  readonly onDepthChange?: (depth: number) => void;
  readonly hooks?: QueueHooks;
}

interface Waiting {
  readonly deadline: number;
  readonly timer: TimerHandle;
}

/**
 * A level-triggered, rate-limited queue of object keys (see keys.ts for the key format),
 * shaped like client-go's workqueue: a key that is already queued collapses into one entry; a
 * key added while it is being processed is queued again once its worker finishes, so no two
 * workers ever hold the same key.
 */
export class WorkQueue {
  private readonly clock: Clock;
  private readonly concurrency: number;
  private readonly backoff: BackoffOptions;
  private readonly onDepthChange: ((depth: number) => void) | undefined;
  private readonly hooks: QueueHooks;

  private readonly ready: string[] = [];
  /** Keys that need processing: in `ready`, or re-added while processing. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly waiting = new Map<string, Waiting>();
  private readonly failures = new Map<string, number>();
  /** Earliest event time of each pending key that an event queued. */
  private readonly eventAt = new Map<string, number>();
  /** When each key in `ready` was put there. */
  private readonly readySince = new Map<string, number>();
  private readonly idleWorkers: Array<(taken: [string, Taken] | undefined) => void> = [];
  private readonly drained: Array<() => void> = [];
  private shuttingDown = false;
  private started = false;

  constructor(options: WorkQueueOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
    this.backoff = options.backoff ?? {};
    this.onDepthChange = options.onDepthChange;
    this.hooks = options.hooks ?? {};
  }

  /**
   * Marks `key` as needing a reconcile now. `eventAt`: when the event that asks for it arrived;
   * a key already pending keeps the earlier of the two.
   */
  add(key: string, eventAt?: number): void {
    if (this.shuttingDown) return;
    if (eventAt !== undefined) {
      const earlier = this.eventAt.get(key);
      if (earlier === undefined || eventAt < earlier) this.eventAt.set(key, eventAt);
    }
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    this.hooks.added?.();
    if (this.processing.has(key)) return;
    this.makeReady(key);
  }

  /** Adds `key` after `ms`. If the key is already waiting, the earlier deadline wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const deadline = this.clock.now() + ms;
    const existing = this.waiting.get(key);
    if (existing) {
      if (existing.deadline <= deadline) return;
      this.clock.clearTimeout(existing.timer);
    }
    const timer = this.clock.setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, ms);
    this.waiting.set(key, { deadline, timer });
  }

  /** Adds `key` after its next backoff delay and counts the failure. */
  addRateLimited(key: string): void {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    this.hooks.retried?.();
    this.addAfter(key, backoffDelay(failures, this.backoff));
  }

  /**
   * Retries now every key waiting out a failure's backoff (not the timed re-checks reconciles
   * asked for): what failed because the API server was away is worth trying the moment it is
   * back. Their failure counts start again: the failures were the server's absence.
   */
  retryFailedNow(): number {
    let woken = 0;
    for (const [key, waiting] of [...this.waiting]) {
      if (!this.failures.has(key)) continue;
      this.clock.clearTimeout(waiting.timer);
      this.waiting.delete(key);
      this.failures.delete(key);
      this.add(key);
      woken++;
    }
    return woken;
  }

  /** Resets the key's backoff (after a successful reconcile). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Consecutive failures recorded for `key`. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Keys ready to be processed (not counting in-flight or delayed ones). */
  depth(): number {
    return this.ready.length;
  }

  /** Keys scheduled for later by addAfter / backoff. */
  delayed(): number {
    return this.waiting.size;
  }

  inFlight(): number {
    return this.processing.size;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Starts the workers. Each calls `handler` for one key at a time and applies the queue's
   * retry policy to the outcome (see Result / TerminalError).
   */
  start(handler: QueueHandler): void {
    if (this.started) throw new Error('work queue already started');
    if (this.shuttingDown) throw new Error('work queue is shut down');
    this.started = true;
    for (let i = 0; i < this.concurrency; i++) void this.work(handler);
  }

  /**
   * Stops handing out keys, drops queued and delayed ones, and resolves once every in-flight
   * handler has finished. Dropping is safe because the queue is level-triggered: whoever
   * processes these objects next starts from a full list of them.
   */
  shutdown(): Promise<void> {
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      for (const w of this.waiting.values()) this.clock.clearTimeout(w.timer);
      this.waiting.clear();
      this.ready.length = 0;
      this.dirty.clear();
      this.eventAt.clear();
      this.readySince.clear();
      this.depthChanged();
      for (const idle of this.idleWorkers.splice(0)) idle(undefined);
    }
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private async work(handler: QueueHandler): Promise<void> {
    for (;;) {
      const taken = await this.next();
      if (taken === undefined) return;
      const [key, info] = taken;
      try {
        const result = await Promise.resolve().then(() => handler(key, info));
        this.forget(key);
        const after = result?.requeueAfter;
        if (after !== undefined && Number.isFinite(after)) {
          this.hooks.requeued?.();
          this.addAfter(key, after);
        }
      } catch (err) {
        if (err instanceof TerminalError) this.forget(key);
        else this.addRateLimited(key);
      } finally {
        this.done(key);
      }
    }
  }

  private next(): Promise<[string, Taken] | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const taken = this.take();
    if (taken !== undefined) return Promise.resolve(taken);
    return new Promise((resolve) => this.idleWorkers.push(resolve));
  }

  private take(): [string, Taken] | undefined {
    const key = this.ready.shift();
    if (key === undefined) return undefined;
    this.dirty.delete(key);
    this.processing.add(key);
    const since = this.readySince.get(key);
    this.readySince.delete(key);
    if (since !== undefined) this.hooks.waited?.(this.clock.now() - since);
    this.depthChanged();
    // Events arriving from here on are for the next round of this key.
    const eventAt = this.eventAt.get(key);
    this.eventAt.delete(key);
    return [key, eventAt === undefined ? {} : { eventAt }];
  }

  private handOut(): void {
    while (this.idleWorkers.length > 0 && this.ready.length > 0) {
      const worker = this.idleWorkers.shift();
      worker?.(this.take());
    }
  }

  private done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.makeReady(key);
    if (this.shuttingDown && this.processing.size === 0) {
      for (const resolve of this.drained.splice(0)) resolve();
    }
  }

  private makeReady(key: string): void {
    this.ready.push(key);
    this.readySince.set(key, this.clock.now());
    this.depthChanged();
    this.handOut();
  }

  private depthChanged(): void {
    this.onDepthChange?.(this.ready.length);
  }
}
