import { describe, expect, it } from '@jest/globals';
import { FakeClock, settle } from './fake-clock.js';
import { createLogger, MemorySink } from './logger.js';
import { Reachability } from './reachability.js';

function setup() {
  const clock = new FakeClock();
  const sink = new MemorySink();
  let up = false;
  const probes: number[] = [];
  const start = clock.now();
  const reported: number[] = [];
  const reachability = new Reachability({
    probe: async () => {
      probes.push(clock.now() - start);
      return up;
    },
    clock, logger: createLogger({ sink, clock }), report: (v) => reported.push(v),
  });
  const restored: number[] = [];
  reachability.onRestored(() => restored.push(clock.now() - start));
  return { clock, sink, reachability, probes, restored, reported, setUp: (v: boolean) => (up = v) };
}

describe('Reachability', () => {
  it('probes once a second while requests get no answer, and tells its listeners once when the probe succeeds', async () => {
    const { clock, reachability, probes, restored, reported, setUp, sink } = setup();
    reachability.unanswered();
    reachability.unanswered();
    expect(reachability.reachable()).toBe(false);
    await clock.advance(3500);
    expect(probes).toEqual([1000, 2000, 3000]);
    setUp(true);
    await clock.advance(1000);
    expect(restored).toEqual([4000]);
    expect(reachability.reachable()).toBe(true);
    await clock.advance(10_000);
    expect(probes).toHaveLength(4);
    expect(restored).toHaveLength(1);
    expect(sink.text()).toContain('API server not answering');
    expect(sink.text()).toContain('"downMs":4000');
    // A second outage is a second wake.
    setUp(false);
    reachability.unanswered();
    await clock.advance(2000);
    setUp(true);
    await clock.advance(1000);
    expect(restored).toEqual([4000, 17_500]);
    // The gauge: 1 at the start, 0 while down, once per change.
    expect(reported).toEqual([1, 0, 1, 0, 1]);
    await reachability.stop();
  });

  it('a probe that throws counts as no answer; stop() ends probing and nobody is told afterwards', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const reachability = new Reachability({ probe: async () => { calls++; throw new Error('ECONNREFUSED'); }, clock });
    let told = 0;
    reachability.onRestored(() => told++);
    reachability.unanswered();
    await clock.advance(2500);
    expect(calls).toBe(2);
    const stopped = reachability.stop();
    await settle();
    await stopped;
    await clock.advance(5000);
    expect(calls).toBe(2);
    expect(told).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
    // Stopped, it reports nothing more.
    reachability.unanswered();
    expect(clock.pendingTimers()).toBe(0);
  });
});
