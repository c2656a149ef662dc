import { describe, expect, it } from '@jest/globals';
import { FakeClock } from './fake-clock.js';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  it('lets a burst through at once, then spaces requests at the sustained rate', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket({ qps: 10, burst: 3 }, clock);
    expect([bucket.reserve(), bucket.reserve(), bucket.reserve()]).toEqual([0, 0, 0]);
    expect([bucket.reserve(), bucket.reserve()]).toEqual([100, 200]);
  });

  it('refills with time, never beyond the burst', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket({ qps: 10, burst: 2 }, clock);
    bucket.reserve();
    bucket.reserve();
    await clock.advance(10_000);
    expect([bucket.reserve(), bucket.reserve(), bucket.reserve()]).toEqual([0, 0, 100]);
  });

  it('after a Retry-After pause, the next request waits that long and the rest follow at the rate', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket({ qps: 10, burst: 5 }, clock);
    bucket.pause(2_000);
    expect([bucket.reserve(), bucket.reserve()]).toEqual([2_100, 2_200]);
  });

  it('429s answered together (one overload) pause once, not once each', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket({ qps: 10, burst: 5 }, clock);
    for (let i = 0; i < 8; i++) bucket.pause(1_000);
    expect([bucket.reserve(), bucket.reserve()]).toEqual([1_100, 1_200]);
    // A longer Retry-After than the wait already ahead still extends it.
    bucket.pause(3_000);
    expect(bucket.reserve()).toBe(3_100);
  });

  it('take() resolves only when its slot comes', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket({ qps: 2, burst: 1 }, clock);
    await bucket.take();
    let done = false;
    const second = bucket.take().then(() => (done = true));
    await clock.advance(499);
    expect(done).toBe(false);
    await clock.advance(1);
    await second;
    expect(done).toBe(true);
  });

  it('refuses a limit that would block forever', () => {
    expect(() => new TokenBucket({ qps: 0, burst: 1 })).toThrow(/qps > 0/);
  });
});
