import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../runtime/fake-clock.js';
import { RequestBurst } from './request-burst.js';

describe('RequestBurst', () => {
  it('flags a key once more than the limit came within the window, and not spaced-out requests', async () => {
    const clock = new FakeClock();
    const burst = new RequestBurst(3, 60_000, clock);
    expect([burst.record('a'), burst.record('a'), burst.record('a')]).toEqual([false, false, false]);
    expect(burst.record('a')).toBe(true);
    expect(burst.record('b')).toBe(false);
    await clock.advance(60_000);
    expect(burst.record('a')).toBe(false);
    for (let i = 0; i < 10; i++) {
      await clock.advance(30_000);
      expect(burst.record('c')).toBe(false);
    }
  });

  it('forgets keys idle for a window, so memory follows the active identities', async () => {
    const clock = new FakeClock();
    const burst = new RequestBurst(3, 60_000, clock);
    for (let i = 0; i < 100; i++) burst.record(`k${i}`);
    expect(burst.size).toBe(100);
    await clock.advance(60_000);
    burst.record('live');
    expect(burst.size).toBe(1);
  });
});
