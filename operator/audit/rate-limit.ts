import type { AuditEvent, AuditEventType, AuditSubject } from './chain.js';

// What a tenant can make the operator write. Failed decrypts and policy violations are caused by
// objects a tenant controls, so a tenant can repeat them at will (a sealed value that does not
// open, an EncryptedService edited in a loop). Per trail, at most `maxPerWindow` of them are
// written one by one in each window; the rest are counted, and one `suppressed` entry per event
// type records the count when the window closes. Key events are never limited: the operator, not
// the tenant, decides when they happen. Pure: time is passed in.

export const TENANT_TRIGGERED: readonly AuditEventType[] = ['failed-decrypt', 'policy-violation'];

export interface AuditRateLimit {
  readonly windowMs: number;
  readonly maxPerWindow: number;
}

export const DEFAULT_AUDIT_RATE_LIMIT: AuditRateLimit = { windowMs: 60_000, maxPerWindow: 20 };

interface Window {
  readonly start: number;
  admitted: number;
  readonly suppressed: Map<AuditEventType, number>;
}

export interface Admission {
  /** Events to append now, summaries of a closed window first. */
  readonly events: AuditEvent[];
  /** Counted instead of written, per type. */
  readonly suppressed: ReadonlyMap<AuditEventType, number>;
  /** When the open window closes with suppressed events to summarise (ms epoch), if any. */
  readonly flushAt: number | undefined;
}

export class AuditRateLimiter {
  readonly #windows = new Map<string, Window>();

  constructor(private readonly limit: AuditRateLimit = DEFAULT_AUDIT_RATE_LIMIT) {
    if (!Number.isInteger(limit.maxPerWindow) || limit.maxPerWindow < 1) throw new RangeError('maxPerWindow must be >= 1');
    if (!Number.isInteger(limit.windowMs) || limit.windowMs < 1) throw new RangeError('windowMs must be >= 1');
  }

  admit(trail: string, subject: AuditSubject, events: readonly AuditEvent[], now: Date): Admission {
    const at = now.getTime();
    const out: AuditEvent[] = [];
    let window = this.#windows.get(trail);
    if (window && at >= window.start + this.limit.windowMs) {
      out.push(...summaries(window, this.limit, subject, now));
      this.#windows.delete(trail);
      window = undefined;
    }
    const suppressed = new Map<AuditEventType, number>();
    for (const event of events) {
      if (!TENANT_TRIGGERED.includes(event.type)) {
        out.push(event);
        continue;
      }
      if (!window) {
        window = { start: at, admitted: 0, suppressed: new Map() };
        this.#windows.set(trail, window);
      }
      if (window.admitted < this.limit.maxPerWindow) {
        window.admitted += 1;
        out.push(event);
      } else {
        window.suppressed.set(event.type, (window.suppressed.get(event.type) ?? 0) + 1);
        suppressed.set(event.type, (suppressed.get(event.type) ?? 0) + 1);
      }
    }
    const flushAt = window && window.suppressed.size > 0 ? window.start + this.limit.windowMs : undefined;
    return { events: out, suppressed, flushAt };
  }
}

function summaries(window: Window, limit: AuditRateLimit, subject: AuditSubject, now: Date): AuditEvent[] {
  return [...window.suppressed.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([type, count]) => ({
    type: 'suppressed', time: now, subject,
    details: {
      suppressedType: type, count, windowStart: new Date(window.start).toISOString(),
      windowEnd: new Date(window.start + limit.windowMs).toISOString(), limit: limit.maxPerWindow,
    },
  }));
}
