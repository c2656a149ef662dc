import { describe, expect, it } from '@jest/globals';
import type { AuditEvent } from './chain.js';
import { AuditRateLimiter } from './rate-limit.js';

const subject = { namespace: 'shop', name: 'keys', kind: 'KeyPolicy' };
const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);
const violation = (i: number): AuditEvent => ({ type: 'policy-violation', time: at(0), subject: { namespace: 'shop', name: `es-${i}` } });
const rotate: AuditEvent = { type: 'rotate', time: at(0), subject };

describe('audit rate limit', () => {
  it('admits tenant-triggered events up to the limit per window, never limits key events, and summarises the rest once the window closes', () => {
    const limiter = new AuditRateLimiter({ windowMs: 1_000, maxPerWindow: 2 });
    const first = limiter.admit('t', subject, [violation(1), violation(2), rotate, violation(3), { ...violation(4), type: 'failed-decrypt' }], at(0));
    expect(first.events.map((e) => e.type)).toEqual(['policy-violation', 'policy-violation', 'rotate']);
    expect([...first.suppressed]).toEqual([['policy-violation', 1], ['failed-decrypt', 1]]);
    expect(first.flushAt).toBe(at(1_000).getTime());
    expect(limiter.admit('t', subject, [violation(5)], at(500)).events).toEqual([]);
    expect(limiter.admit('other', subject, [violation(6)], at(500)).events).toHaveLength(1);

    const next = limiter.admit('t', subject, [violation(7)], at(1_200));
    expect(next.events.map((e) => [e.type, e.details?.['suppressedType'], e.details?.['count']])).toEqual([
      ['suppressed', 'failed-decrypt', 1], ['suppressed', 'policy-violation', 2], ['policy-violation', undefined, undefined],
    ]);
    expect(next.flushAt).toBeUndefined();
    // An empty admission after the window closes is how a timer flushes the summary.
    expect(limiter.admit('t', subject, [], at(2_500)).events).toEqual([]);
  });
});
