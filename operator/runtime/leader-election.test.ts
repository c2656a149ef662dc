import { describe, expect, it } from '@jest/globals';
import { FakeClock, settle } from './fake-clock.js';
import { FlakyLeaseStore, MemoryLeaseStore } from './fake-lease-store.js';
import { decide, LeaderElector, observe, type LeaseRecord, type LeaseState, type LeaseStore, type Observation } from './leader-election.js';
import { createLogger, MemorySink } from './logger.js';

const T0 = Date.UTC(2026, 0, 1);
const LEASE = 15_000;

const rec = (holder: string, extra: Partial<LeaseRecord> = {}): LeaseRecord => ({
  holderIdentity: holder, leaseDurationSeconds: 15, acquireTime: T0, renewTime: T0, leaseTransitions: 3, ...extra,
});
const seen = (record: LeaseRecord, observedAt: number, rv = '1'): Observation => ({ state: { record, resourceVersion: rv }, observedAt });

describe('decide', () => {
  it('acquires a lease that does not exist, with zero transitions', () => {
    expect(decide({ observed: undefined, now: T0, identity: 'a', leaseDurationMs: LEASE })).toEqual({
      action: 'acquire',
      record: { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: T0, renewTime: T0, leaseTransitions: 0 },
    });
  });

  it('renews its own lease: new renewTime, same acquireTime and transitions', () => {
    const d = decide({ observed: seen(rec('a'), T0), now: T0 + 2000, identity: 'a', leaseDurationMs: LEASE });
    expect(d).toEqual({ action: 'renew', record: rec('a', { renewTime: T0 + 2000 }) });
  });

  it('follows a holder until a lease duration has passed since the record was last seen to change', () => {
    const observed = seen(rec('b'), T0 + 500);
    expect(decide({ observed, now: T0 + 500 + LEASE - 1, identity: 'a', leaseDurationMs: LEASE })).toEqual({
      action: 'follow', holder: 'b', expiresAt: T0 + 500 + LEASE,
    });
    const d = decide({ observed, now: T0 + 500 + LEASE, identity: 'a', leaseDurationMs: LEASE });
    expect(d).toEqual({
      action: 'acquire',
      record: { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: T0 + 500 + LEASE, renewTime: T0 + 500 + LEASE, leaseTransitions: 4 },
    });
  });

  it('ignores the renewTime written by the holder (its clock may be skewed)', () => {
    const farFuture = seen(rec('b', { renewTime: T0 + 3_600_000 }), T0);
    expect(decide({ observed: farFuture, now: T0 + LEASE, identity: 'a', leaseDurationMs: LEASE }).action).toBe('acquire');
  });

  it("uses the holder's lease duration when the record carries one", () => {
    const short = seen(rec('b', { leaseDurationSeconds: 1 }), T0);
    expect(decide({ observed: short, now: T0 + 1000, identity: 'a', leaseDurationMs: LEASE }).action).toBe('acquire');
  });

  it('acquires a released lease (empty holder) at once', () => {
    const released = seen(rec('', { leaseDurationSeconds: 1 }), T0);
    expect(decide({ observed: released, now: T0, identity: 'a', leaseDurationMs: LEASE })).toMatchObject({
      action: 'acquire', record: { holderIdentity: 'a', leaseTransitions: 4 },
    });
  });

  it('observe keeps the first-seen time until the resourceVersion changes', () => {
    const s1: LeaseState = { record: rec('b'), resourceVersion: '7' };
    const first = observe(undefined, s1, T0);
    expect(observe(first, { ...s1 }, T0 + 9000).observedAt).toBe(T0);
    expect(observe(first, { record: rec('b', { renewTime: T0 + 2000 }), resourceVersion: '8' }, T0 + 9000).observedAt).toBe(T0 + 9000);
  });
});

function candidate(identity: string, store: LeaseStore, clock: FakeClock, log: string[]) {
  const conn = new FlakyLeaseStore(store);
  const elector = new LeaderElector({
    identity,
    store: conn,
    clock,
    random: () => 1,
    logger: createLogger({ sink: new MemorySink(), clock }),
    onStartedLeading: () => log.push(`${identity} started @${clock.now() - T0}`),
    onStoppedLeading: (why) => log.push(`${identity} stopped (${why}) @${clock.now() - T0}`),
  });
  return { elector, conn };
}

describe('LeaderElector', () => {
  it('acquires a free lease at once and keeps renewing it every retry period', async () => {
    const clock = new FakeClock(T0);
    const store = new MemoryLeaseStore();
    const log: string[] = [];
    const { elector } = candidate('a', store, clock, log);
    elector.start();
    await settle();
    expect(elector.isLeader()).toBe(true);
    expect(log).toEqual(['a started @0']);
    await clock.advance(10_000);
    expect(store.state?.record.renewTime).toBe(T0 + 10_000);
    expect(store.state?.record.acquireTime).toBe(T0);
    expect(elector.isLeader()).toBe(true);
    await elector.stop();
    expect(store.state?.record.holderIdentity).toBe('');
    expect(log).toEqual(['a started @0', 'a stopped (stopped) @10000']);
  });

  it('when two candidates race for a free lease, exactly one wins', async () => {
    const clock = new FakeClock(T0);
    const store = new MemoryLeaseStore();
    const log: string[] = [];
    const a = candidate('a', store, clock, log);
    const b = candidate('b', store, clock, log);
    a.elector.start();
    b.elector.start();
    await clock.advance(30_000);
    expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
    expect(log).toHaveLength(1);
    await Promise.all([a.elector.stop({ release: false }), b.elector.stop({ release: false })]);
  });

  it('a follower takes over within 20 s of the leader dying without releasing', async () => {
    const clock = new FakeClock(T0);
    const store = new MemoryLeaseStore();
    const log: string[] = [];
    const a = candidate('a', store, clock, log);
    const b = candidate('b', store, clock, log);
    a.elector.start();
    await settle();
    b.elector.start();
    await clock.advance(7_300);
    expect(b.elector.currentLeader()).toBe('a');

    const diedAt = clock.now();
    await a.elector.stop({ release: false });
    let tookOverAt: number | undefined;
    for (let t = 0; t < 30_000 && tookOverAt === undefined; t += 100) {
      await clock.advance(100);
      if (b.elector.isLeader()) tookOverAt = clock.now();
    }
    expect(tookOverAt).toBeDefined();
    expect(tookOverAt! - diedAt).toBeLessThanOrEqual(20_000);
    // Waking at the expiry (not at the next retry) bounds it by the lease duration plus one retry period.
    expect(tookOverAt! - diedAt).toBeLessThanOrEqual(LEASE + 2_300);
    // Not before the lease could have expired.
    expect(tookOverAt! - diedAt).toBeGreaterThanOrEqual(LEASE - 2_000);
    expect(store.state?.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    await b.elector.stop();
  });

  it('a follower tries again right at the expiry instead of waiting for its next regular retry', async () => {
    const clock = new FakeClock(T0);
    const store = new MemoryLeaseStore();
    await store.create(rec('gone', { acquireTime: T0, renewTime: T0, leaseTransitions: 0 }));
    const log: string[] = [];
    const b = candidate('b', store, clock, log);
    b.elector.start();
    for (let t = 0; t < 20_000 && !b.elector.isLeader(); t += 10) await clock.advance(10);
    // Retries fall at 0, 2.2, ..., 13.2 s; the next would be 15.4 s, after the 15 s expiry.
    expect(log).toEqual(['b started @15001']);
    await b.elector.stop();
  });

  it('a released lease is taken over within one retry period', async () => {
    const clock = new FakeClock(T0);
    const store = new MemoryLeaseStore();
    const log: string[] = [];
    const a = candidate('a', store, clock, log);
    const b = candidate('b', store, clock, log);
    a.elector.start();
    await settle();
    b.elector.start();
    await clock.advance(5_000);
    const releasedAt = clock.now();
    await a.elector.stop();
    await clock.advance(2_200);
    expect(b.elector.isLeader()).toBe(true);
    expect(log.at(-1)).toMatch(/^b started @/);
    expect(Number(log.at(-1)!.split('@')[1]) + T0 - releasedAt).toBeLessThanOrEqual(2_200);
    await b.elector.stop();
  });

  it('a leader that cannot renew stops leading at the renew deadline, before anyone else can acquire', async () => {
    for (const mode of ['fail', 'hang'] as const) {
      const clock = new FakeClock(T0);
      const store = new MemoryLeaseStore();
      const log: string[] = [];
      const a = candidate('a', store, clock, log);
      const b = candidate('b', store, clock, log);
      a.elector.start();
      await settle();
      b.elector.start();
      await clock.advance(4_000);
      const lastRenew = store.state!.record.renewTime!;
      a.conn.mode = mode;

      let aLeaderUntil = 0;
      let bLeaderFrom: number | undefined;
      for (let t = 0; t < 25_000; t += 100) {
        await clock.advance(100);
        if (a.elector.isLeader()) aLeaderUntil = clock.now();
        if (bLeaderFrom === undefined && b.elector.isLeader()) bLeaderFrom = clock.now();
      }
      expect(aLeaderUntil).toBeLessThan(lastRenew + 10_000);
      expect(log).toContain(`a stopped (lost) @${10_000 + lastRenew - T0}`);
      expect(bLeaderFrom).toBeDefined();
      expect(bLeaderFrom!).toBeGreaterThan(aLeaderUntil);
      expect(bLeaderFrom! - lastRenew).toBeLessThanOrEqual(20_000);
      await b.elector.stop();
      // A's hung request cannot hold up its shutdown for longer than the renew deadline.
      const stopping = a.elector.stop({ release: false });
      await clock.advance(10_000);
      await stopping;
    }
  });

  it('a leader that sees another holder in the lease stops leading at once', async () => {
    const clock = new FakeClock(T0);
    const store = new MemoryLeaseStore();
    const log: string[] = [];
    const a = candidate('a', store, clock, log);
    a.elector.start();
    await settle();
    // Someone forcibly took the lease (e.g. an admin edited it).
    await store.update(rec('intruder', { renewTime: clock.now() }), store.state!.resourceVersion);
    await clock.advance(2_000);
    expect(a.elector.isLeader()).toBe(false);
    expect(log.at(-1)).toBe('a stopped (lost) @2000');
    await a.elector.stop();
    expect(store.state?.record.holderIdentity).toBe('intruder');
  });

  it('rejects timings that cannot hand over safely', () => {
    const base = { identity: 'a', store: new MemoryLeaseStore(), logger: createLogger({ sink: new MemorySink() }) };
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow();
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toThrow();
    expect(() => new LeaderElector({ ...base, identity: '' })).toThrow();
  });
});
