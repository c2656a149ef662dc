// Client-side rate limit of the operator's API requests, as client-go's flowcontrol limiter:
// `qps` tokens a second refill a bucket of `burst`. Each request reserves the next token, so
// waiters leave in arrival order and spaced by 1/qps once the burst is spent. The API server's
// Priority and Fairness queues whatever exceeds its share anyway; the point here is not to be
// the client that fills those queues and starves others sharing the same priority level.
import { sleep, systemClock, type Clock } from './clock.js';

export interface RateLimit {
  /** Sustained requests per second. */
  readonly qps: number;
  /** Requests that may leave at once after a quiet period. */
  readonly burst: number;
}

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(private readonly limit: RateLimit, private readonly clock: Clock = systemClock) {
    if (!(limit.qps > 0) || !(limit.burst >= 1)) throw new Error(`rate limit needs qps > 0 and burst >= 1: ${limit.qps}/${limit.burst}`);
    this.tokens = limit.burst;
    this.last = clock.now();
  }

  /** Takes a token and returns how long (ms) its request must wait; 0 means now. */
  reserve(): number {
    this.refill();
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.limit.qps);
  }

  async take(signal?: AbortSignal): Promise<void> {
    const wait = this.reserve();
    if (wait > 0) await sleep(this.clock, wait, signal);
  }

  /**
   * The API server answered 429 with Retry-After: requests not yet reserved wait at least that
   * long, then leave at the sustained rate, not all at once. At least, not in addition: the
   * requests in flight when a priority level fills are refused together, and pausing once for
   * each stalled the whole process for their sum (eight workers, eight seconds).
   */
  pause(ms: number): void {
    this.refill();
    this.tokens = Math.min(this.tokens, -(ms * this.limit.qps) / 1000);
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.last) * this.limit.qps) / 1000);
    this.last = now;
  }
}
