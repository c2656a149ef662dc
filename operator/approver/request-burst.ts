// Which declared identities get more CertificateRequests than renewals explain, as they arrive,
// so the approver can put a Warning Event on the service at once (the Prometheus alert compares
// rates over hours; this sees the burst itself). Memory stays bounded: keys are declared
// services only, each keeps at most `limit + 1` times, and idle keys are swept.
import type { Clock } from '../runtime/clock.js';

export class RequestBurst {
  private readonly seen = new Map<string, number[]>();
  private lastSweep: number;

  constructor(private readonly limit: number, private readonly windowMs: number, private readonly clock: Clock) {
    this.lastSweep = clock.now();
  }

  /** Counts one request for `key`; true when more than `limit` came within the window. */
  record(key: string): boolean {
    const now = this.clock.now();
    this.sweep(now);
    const times = (this.seen.get(key) ?? []).filter((t) => now - t < this.windowMs);
    times.push(now);
    this.seen.set(key, times.slice(-(this.limit + 1)));
    return times.length > this.limit;
  }

  /** Keys currently remembered (for tests of the bound). */
  get size(): number {
    return this.seen.size;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    for (const [key, times] of this.seen) {
      if (times.every((t) => now - t >= this.windowMs)) this.seen.delete(key);
    }
  }
}
