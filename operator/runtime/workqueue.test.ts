import { describe, expect, it } from '@jest/globals';
import { FakeClock, settle } from './fake-clock.js';
import { backoffDelay, TerminalError, WorkQueue, type Result } from './workqueue.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('WorkQueue', () => {
  it('collapses duplicate keys queued before processing', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.add('ns/a');
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    expect(q.depth()).toBe(2);
    const seen: string[] = [];
    q.start(async (key) => {
      seen.push(key);
    });
    await settle();
    expect(seen).toEqual(['ns/a', 'ns/b']);
    expect(q.depth()).toBe(0);
  });

  it('never hands one key to two workers; a key re-added while processing runs again after', async () => {
    const q = new WorkQueue({ clock: new FakeClock(), concurrency: 4 });
    const active = new Set<string>();
    let overlap = false;
    const calls: string[] = [];
    const gate = deferred();
    q.start(async (key) => {
      if (active.has(key)) overlap = true;
      active.add(key);
      calls.push(key);
      if (calls.length === 1) await gate.promise;
      active.delete(key);
    });
    q.add('a');
    await settle();
    expect(q.inFlight()).toBe(1);
    q.add('a');
    q.add('a');
    await settle();
    expect(calls).toEqual(['a']);
    gate.resolve();
    await settle();
    expect(calls).toEqual(['a', 'a']);
    expect(overlap).toBe(false);
  });

  it('processes different keys in parallel up to the concurrency', async () => {
    const q = new WorkQueue({ clock: new FakeClock(), concurrency: 2 });
    const gate = deferred();
    let running = 0;
    let peak = 0;
    q.start(async () => {
      running++;
      peak = Math.max(peak, running);
      await gate.promise;
      running--;
    });
    for (const k of ['a', 'b', 'c', 'd']) q.add(k);
    await settle();
    expect(running).toBe(2);
    expect(q.depth()).toBe(2);
    gate.resolve();
    await settle();
    expect(peak).toBe(2);
    expect(q.depth()).toBe(0);
  });

  it('backs off exponentially per key up to the cap, and a success resets the backoff', async () => {
    const clock = new FakeClock();
    const start = clock.now();
    const q = new WorkQueue({ clock, backoff: { baseMs: 500, capMs: 4000 } });
    const times: number[] = [];
    let failUntil = 6;
    q.start(async () => {
      times.push(clock.now() - start);
      if (times.length <= failUntil) throw new Error('transient');
    });
    q.add('k');
    await clock.advance(20_000);
    // 6 failures: retries after 500, 1000, 2000, 4000 (cap), 4000, 4000; the 7th call succeeds.
    expect(times).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500]);
    expect(q.numRequeues('k')).toBe(0);

    times.length = 0;
    failUntil = 1;
    const restart = clock.now() - start;
    q.add('k');
    await clock.advance(5000);
    expect(times.map((t) => t - restart)).toEqual([0, 500]);
  });

  it('keeps backoff separate per key', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, backoff: { baseMs: 100, capMs: 10_000 } });
    let aFails = 0;
    q.start(async (key) => {
      if (key === 'a') {
        aFails++;
        throw new Error('x');
      }
    });
    q.add('a');
    await clock.advance(100 + 200);
    expect(q.numRequeues('a')).toBe(3);
    q.add('b');
    await settle();
    expect(q.numRequeues('b')).toBe(0);
    expect(aFails).toBe(3);
  });

  it('retryFailedNow() retries keys waiting out a failure now with their backoff reset, and leaves timed re-checks alone', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, backoff: { baseMs: 1000, capMs: 60_000 } });
    const calls: string[] = [];
    let failing = true;
    q.start(async (key) => {
      calls.push(key);
      if (key === 'checked') return { requeueAfter: 60_000 };
      if (failing) throw new Error('connect ECONNREFUSED');
    });
    q.add('failed');
    q.add('checked');
    await clock.advance(1000 + 2000 + 4000 + 100);
    expect(calls.filter((k) => k === 'failed')).toHaveLength(4);
    expect(q.numRequeues('failed')).toBe(4);
    expect(q.delayed()).toBe(2);
    expect(q.retryFailedNow()).toBe(1);
    await settle();
    expect(calls.filter((k) => k === 'failed')).toHaveLength(5);
    expect(calls.filter((k) => k === 'checked')).toHaveLength(1);
    // Failed again: backs off from the start (1 s), not from the 16 s it had reached.
    expect(q.numRequeues('failed')).toBe(1);
    failing = false;
    await clock.advance(1000);
    expect(calls.filter((k) => k === 'failed')).toHaveLength(6);
    expect(q.numRequeues('failed')).toBe(0);
    expect(q.delayed()).toBe(1);
    expect(q.retryFailedNow()).toBe(0);
    await q.shutdown();
  });

  it('does not retry a TerminalError until the key is added again', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    let calls = 0;
    q.start(async () => {
      calls++;
      throw new TerminalError('InvalidSpec', 'spec.port must be a TLS port');
    });
    q.add('k');
    await clock.advance(60 * 60_000);
    expect(calls).toBe(1);
    expect(q.numRequeues('k')).toBe(0);
    expect(q.delayed()).toBe(0);
    q.add('k');
    await settle();
    expect(calls).toBe(2);
  });

  it('retries synchronous throws like async failures', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, backoff: { baseMs: 10 } });
    let calls = 0;
    q.start(((): Promise<Result> => {
      calls++;
      throw new Error('sync');
    }) as () => Promise<Result>);
    q.add('k');
    await clock.advance(10);
    expect(calls).toBe(2);
  });

  it('requeues after the interval a reconcile returns', async () => {
    const clock = new FakeClock();
    const start = clock.now();
    const q = new WorkQueue({ clock });
    const times: number[] = [];
    q.start(async () => {
      times.push(clock.now() - start);
      return times.length < 3 ? { requeueAfter: 30_000 } : {};
    });
    q.add('k');
    await clock.advance(120_000);
    expect(times).toEqual([0, 30_000, 60_000]);
  });

  it('addAfter: the earliest pending deadline wins, whichever order they arrive in', async () => {
    const clock = new FakeClock();
    const start = clock.now();
    const q = new WorkQueue({ clock });
    const times: Array<[string, number]> = [];
    q.start(async (key) => {
      times.push([key, clock.now() - start]);
    });
    q.addAfter('late-then-early', 5000);
    q.addAfter('late-then-early', 1000);
    q.addAfter('early-then-late', 1000);
    q.addAfter('early-then-late', 5000);
    expect(q.delayed()).toBe(2);
    await clock.advance(10_000);
    expect(times).toEqual([
      ['late-then-early', 1000],
      ['early-then-late', 1000],
    ]);
    expect(q.delayed()).toBe(0);
  });

  it('a delayed key that is already queued is processed once', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    q.addAfter('k', 1000);
    await clock.advance(1000);
    q.add('k');
    expect(q.depth()).toBe(1);
  });

  it('shutdown stops taking work and resolves only after in-flight work finishes', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, concurrency: 1 });
    const gate = deferred();
    const calls: string[] = [];
    q.start(async (key) => {
      calls.push(key);
      if (key === 'a') await gate.promise;
    });
    q.add('a');
    q.add('b');
    q.addAfter('c', 100);
    await settle();
    expect(calls).toEqual(['a']);

    let drained = false;
    const done = q.shutdown().then(() => (drained = true));
    await settle();
    expect(drained).toBe(false);
    q.add('d');
    gate.resolve();
    await done;
    await clock.advance(1000);
    expect(calls).toEqual(['a']);
    expect(q.depth()).toBe(0);
    expect(q.delayed()).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('shutdown of an idle queue resolves at once', async () => {
    const q = new WorkQueue({ clock: new FakeClock(), concurrency: 3 });
    q.start(async () => undefined);
    await expect(q.shutdown()).resolves.toBeUndefined();
  });

  it('reports depth changes', async () => {
    const depths: number[] = [];
    const q = new WorkQueue({ clock: new FakeClock(), onDepthChange: (d) => depths.push(d) });
    q.add('a');
    q.add('b');
    q.start(async () => undefined);
    await settle();
    expect(depths.slice(0, 2)).toEqual([1, 2]);
    expect(depths.at(-1)).toBe(0);
  });
});

describe('backoffDelay', () => {
  it('doubles from the base and stops at the cap without overflowing', () => {
    expect([0, 1, 2, 3].map((n) => backoffDelay(n))).toEqual([500, 1000, 2000, 4000]);
    expect(backoffDelay(20)).toBe(300_000);
    expect(backoffDelay(5000, { baseMs: 1, capMs: 7 })).toBe(7);
  });

  it('hands each key the earliest pending event time; events during processing stamp the next round', async () => {
    const clock = new FakeClock();
    const counts = { added: 0, retried: 0, requeued: 0 };
    const q = new WorkQueue({
      clock,
      hooks: { added: () => counts.added++, retried: () => counts.retried++, requeued: () => counts.requeued++ },
    });
    q.add('ns/a', 2000);
    q.add('ns/a', 1000);
    q.add('ns/a', 3000);
    q.add('ns/b');
    const seen: Array<[string, number | undefined]> = [];
    const gate = deferred();
    let round = 0;
    q.start(async (key, taken) => {
      seen.push([key, taken.eventAt]);
      if (key === 'ns/a' && round++ === 0) {
        q.add('ns/a', 5000);
        await gate.promise;
        return { requeueAfter: 10 };
      }
      if (key === 'ns/b' && round < 3) {
        round = 3;
        throw new Error('retry me');
      }
      return {};
    });
    await settle();
    gate.resolve();
    await settle();
    await clock.advance(1000);
    expect(seen).toEqual([
      ['ns/a', 1000], ['ns/b', undefined], ['ns/a', 5000],
      // A timed re-check and a retry were asked for by the queue, not by an event.
      ['ns/a', undefined], ['ns/b', undefined],
    ]);
    expect(counts).toEqual({ added: 5, retried: 1, requeued: 1 });
    await q.shutdown();
  });

  it('reports how long each ready key waited for a worker', async () => {
    const clock = new FakeClock();
    const waits: number[] = [];
    const q = new WorkQueue({ clock, concurrency: 1, hooks: { waited: (ms) => waits.push(ms) } });
    const gate = deferred();
    q.start(async (key) => {
      if (key === 'ns/a') await gate.promise;
      return {};
    });
    q.add('ns/a');
    await settle();
    q.add('ns/b'); // ready, but the only worker holds ns/a
    await clock.advance(250);
    gate.resolve();
    await settle();
    expect(waits).toEqual([0, 250]);
    await q.shutdown();
  });
});
