import { describeApiError } from './api-error.js';
import { sleep, systemClock, type Clock } from './clock.js';
import type { Logger } from './logger.js';

// Lease-based leader election (coordination.k8s.io/v1), the algorithm of client-go's
// leaderelection package: the holder renews every retry period; a follower takes over once
// the record it last saw has not changed for a lease duration (measured on the follower's own
// clock from when it saw that record, so clock skew between replicas does not matter); the
// holder gives up when it could not renew within the renew deadline, which is shorter than the
// lease duration, so it stops writing before anyone else may start. A 409 on create/update
// means another candidate wrote first: it won this round.

export interface LeaseRecord {
  /** '' when released. */
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  /** Milliseconds since the epoch. */
  readonly acquireTime: number | undefined;
  readonly renewTime: number | undefined;
  readonly leaseTransitions: number;
}

export interface LeaseState {
  readonly record: LeaseRecord;
  readonly resourceVersion: string;
}

/** Thrown by a LeaseStore when the write lost an optimistic-concurrency race (HTTP 409). */
export class LeaseConflictError extends Error {
  override readonly name = 'LeaseConflictError';
}

/** The Lease I/O; `kubeLeaseStore` (lease-store.ts) implements it on the API server. */
export interface LeaseStore {
  get(): Promise<LeaseState | undefined>;
  create(record: LeaseRecord): Promise<LeaseState>;
  update(record: LeaseRecord, resourceVersion: string): Promise<LeaseState>;
}

/** A lease record together with the local time at which this version of it was first seen. */
export interface Observation {
  readonly state: LeaseState;
  readonly observedAt: number;
}

export type Decision =
  | { readonly action: 'acquire'; readonly record: LeaseRecord }
  | { readonly action: 'renew'; readonly record: LeaseRecord }
  | { readonly action: 'follow'; readonly holder: string; readonly expiresAt: number };

/** Keeps the first-seen time while the record is unchanged (same resourceVersion). */
export function observe(previous: Observation | undefined, state: LeaseState, now: number): Observation {
  if (previous && previous.state.resourceVersion === state.resourceVersion) return previous;
  return { state, observedAt: now };
}

export interface DecideInput {
  /** Undefined when no Lease exists. */
  readonly observed: Observation | undefined;
  readonly now: number;
  readonly identity: string;
  readonly leaseDurationMs: number;
}

/** What a candidate should do this round. Pure: all time comes from the input. */
export function decide({ observed, now, identity, leaseDurationMs }: DecideInput): Decision {
  const seconds = Math.ceil(leaseDurationMs / 1000);
  if (!observed) {
    return {
      action: 'acquire',
      record: { holderIdentity: identity, leaseDurationSeconds: seconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
    };
  }
  const current = observed.state.record;
  if (current.holderIdentity === identity) {
    return { action: 'renew', record: { ...current, leaseDurationSeconds: seconds, renewTime: now } };
  }
  // The holder's own lease duration counts (a released lease says 1 s); fall back to ours.
  const durationMs = current.leaseDurationSeconds > 0 ? current.leaseDurationSeconds * 1000 : leaseDurationMs;
  const expiresAt = observed.observedAt + durationMs;
  if (current.holderIdentity === '' || now >= expiresAt) {
    return {
      action: 'acquire',
      record: {
        holderIdentity: identity,
        leaseDurationSeconds: seconds,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: current.leaseTransitions + 1,
      },
    };
  }
  return { action: 'follow', holder: current.holderIdentity, expiresAt };
}

export type StoppedLeadingReason = 'lost' | 'stopped';

export interface LeaderElectionOptions {
  /** Unique per replica, e.g. the pod name. */
  readonly identity: string;
  readonly store: LeaseStore;
  readonly logger: Logger;
  /** Default 15 s. */
  readonly leaseDurationMs?: number;
  /** Default 10 s. */
  readonly renewDeadlineMs?: number;
  /** Default 2 s. */
  readonly retryPeriodMs?: number;
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly onStartedLeading?: () => void;
  /** `lost`: renewal failed or another replica took over; `stopped`: stop() was called. */
  readonly onStoppedLeading?: (reason: StoppedLeadingReason) => void;
  readonly onNewLeader?: (identity: string) => void;
}

/** Followers wait up to 10% longer than the retry period, so candidates do not move in step. */
const FOLLOWER_JITTER = 0.1;

type Attempt = { ok: true } | { ok: false; otherHolder: boolean; expiresAt?: number };

export class LeaderElector {
  readonly identity: string;
  private readonly opts: LeaderElectionOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly random: () => number;
  private observation: Observation | undefined;
  private leading = false;
  private lastRenewAt = 0;
  private lastLeader: string | undefined;
  private stopped = false;
  private readonly stopController = new AbortController();
  private running: Promise<void> | undefined;

  constructor(options: LeaderElectionOptions) {
    this.opts = options;
    this.identity = options.identity;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.logger.child('leader-election', { identity: options.identity });
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (!options.identity) throw new Error('leader election needs a non-empty identity');
    if (this.leaseDurationMs <= this.renewDeadlineMs) throw new Error('leaseDuration must be greater than renewDeadline');
    if (this.renewDeadlineMs <= this.retryPeriodMs * (1 + FOLLOWER_JITTER)) {
      throw new Error('renewDeadline must be greater than retryPeriod plus jitter');
    }
  }

  /**
   * True while this replica holds the lease and its last successful renewal is younger than the
   * renew deadline — checked against the clock, so it turns false on time even while a renewal
   * request hangs.
   */
  isLeader(): boolean {
    return this.leading && this.clock.now() - this.lastRenewAt < this.renewDeadlineMs;
  }

  /** The holder last observed (ourselves included), if any. */
  currentLeader(): string | undefined {
    return this.lastLeader;
  }

  start(): void {
    if (this.running) return;
    this.running = this.run();
  }

  /**
   * Stops campaigning. With `release` (default) a held lease is handed back (holder cleared) so
   * a follower takes over at its next retry instead of waiting for expiry. Only release after
   * the leader's writes have stopped.
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    if (this.stopped) return this.running;
    this.stopped = true;
    this.stopController.abort(new Error('leader election stopped'));
    // A hung Lease request must not hold up shutdown past the point the lease is useless anyway.
    if (this.running) await this.withTimeout(this.running, this.renewDeadlineMs).catch(() => undefined);
    const wasLeading = this.leading;
    this.setLeading(false);
    // Also release when an acquire landed while stopping (we hold the lease without leading).
    if ((options.release ?? true) && this.lastLeader === this.identity) await this.release();
    if (wasLeading) this.opts.onStoppedLeading?.('stopped');
  }

  private async run(): Promise<void> {
    const signal = this.stopController.signal;
    try {
      while (!this.stopped) {
        if (!this.leading) {
          const attempt = await this.tryAcquireOrRenew();
          if (this.stopped) return;
          if (attempt.ok) {
            this.setLeading(true);
            this.log.info('acquired leadership');
            this.opts.onStartedLeading?.();
            await sleep(this.clock, this.retryPeriodMs, signal);
          } else {
            // Wake at the holder's expiry if that comes before the next regular retry: it takes
            // up to a retry period off the hand-over.
            let wait = this.retryPeriodMs * (1 + FOLLOWER_JITTER * this.random());
            if (attempt.expiresAt !== undefined) wait = Math.min(wait, Math.max(0, attempt.expiresAt - this.clock.now()) + 1);
            await sleep(this.clock, wait, signal);
          }
          continue;
        }
        const lost = await this.renewUntilDeadline(signal);
        if (this.stopped) return;
        if (lost) {
          this.setLeading(false);
          this.log.warn('lost leadership', { reason: lost });
          this.opts.onStoppedLeading?.('lost');
          await sleep(this.clock, this.retryPeriodMs, signal);
        } else {
          await sleep(this.clock, this.retryPeriodMs, signal);
        }
      }
    } catch (err) {
      if (!this.stopped) throw err;
    }
  }

  /** One renew cycle: retries every retry period until success, a new holder, or the deadline. */
  private async renewUntilDeadline(signal: AbortSignal): Promise<string | undefined> {
    const deadline = this.lastRenewAt + this.renewDeadlineMs;
    for (;;) {
      const remaining = deadline - this.clock.now();
      if (remaining <= 0) return 'renew deadline exceeded';
      const attempt = await this.withTimeout(this.tryAcquireOrRenew(), remaining);
      if (this.stopped) return undefined;
      if (attempt === 'timeout') return 'renew deadline exceeded';
      if (attempt.ok) return undefined;
      if (attempt.otherHolder) return 'another replica holds the lease';
      const wait = Math.min(this.retryPeriodMs, deadline - this.clock.now());
      if (wait <= 0) return 'renew deadline exceeded';
      await sleep(this.clock, wait, signal);
    }
  }

  private async tryAcquireOrRenew(): Promise<Attempt> {
    let state: LeaseState | undefined;
    try {
      state = await this.opts.store.get();
    } catch (err) {
      this.log.warn('reading the lease failed', { ...describeApiError(err) });
      return { ok: false, otherHolder: false };
    }
    const now = this.clock.now();
    this.observation = state ? observe(this.observation, state, now) : undefined;
    const decision = decide({ observed: this.observation, now, identity: this.identity, leaseDurationMs: this.leaseDurationMs });
    if (decision.action === 'follow') {
      this.noteLeader(decision.holder);
      return { ok: false, otherHolder: true, expiresAt: decision.expiresAt };
    }
    try {
      const written = state
        ? await this.opts.store.update(decision.record, state.resourceVersion)
        : await this.opts.store.create(decision.record);
      this.observation = { state: written, observedAt: now };
      this.lastRenewAt = now;
      this.noteLeader(this.identity);
      return { ok: true };
    } catch (err) {
      if (err instanceof LeaseConflictError) {
        this.log.debug('another candidate wrote the lease first', { action: decision.action });
        return { ok: false, otherHolder: decision.action === 'acquire' };
      }
      this.log.warn('writing the lease failed', { action: decision.action, ...describeApiError(err) });
      return { ok: false, otherHolder: false };
    }
  }

  private async release(): Promise<void> {
    try {
      const state = await this.opts.store.get();
      if (!state || state.record.holderIdentity !== this.identity) return;
      const now = this.clock.now();
      await this.opts.store.update(
        { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: state.record.leaseTransitions },
        state.resourceVersion,
      );
      this.log.info('released leadership');
    } catch (err) {
      this.log.warn('releasing the lease failed; it will expire instead', { ...describeApiError(err) });
    }
  }

  private withTimeout<T>(work: Promise<T>, ms: number): Promise<T | 'timeout'> {
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => resolve('timeout'), ms);
      work.then(
        (v) => {
          this.clock.clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          this.clock.clearTimeout(timer);
          reject(e);
        },
      );
    });
  }

  private setLeading(leading: boolean): void {
    this.leading = leading;
  }

  private noteLeader(holder: string): void {
    if (holder === this.lastLeader) return;
    this.lastLeader = holder;
    this.log.info('leader observed', { leader: holder });
    this.opts.onNewLeader?.(holder);
  }
}
