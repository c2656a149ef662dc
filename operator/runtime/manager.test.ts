import { describe, expect, it } from '@jest/globals';
import { Controller } from './controller.js';
import { FakeClock, settle } from './fake-clock.js';
import { FlakyLeaseStore, MemoryLeaseStore } from './fake-lease-store.js';
import { FakeTransport } from './fake-transport.js';
import { Informer } from './informer.js';
import { createLogger, MemorySink, type Logger } from './logger.js';
import { Manager } from './manager.js';
import { createMetrics } from './metrics.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function world() {
  const clock = new FakeClock();
  const sink = new MemorySink();
  const logger: Logger = createLogger({ sink, clock });
  const metrics = createMetrics({ defaultMetrics: false, clock });
  const transport = new FakeTransport();
  transport.items = [{ metadata: { name: 'web', namespace: 'shop', resourceVersion: '1' } }];
  const informer = new Informer({ name: 'encryptedservices', path: '/apis/lockstep.dev/v1alpha1/encryptedservices', transport, logger, clock });
  const calls: string[] = [];
  let gate: Promise<void> | undefined;
  const controller = new Controller({
    name: 'es', clock, logger, metrics, watches: [{ informer }],
    reconcile: async (key) => {
      calls.push(`start ${key}`);
      if (gate) await gate;
      calls.push(`end ${key}`);
    },
  });
  return { clock, sink, logger, metrics, transport, informer, controller, calls, setGate: (g: Promise<void>) => (gate = g) };
}

async function readyz(port: number | undefined): Promise<[number, string]> {
  const r = await fetch(`http://127.0.0.1:${port}/readyz`);
  return [r.status, await r.text()];
}

describe('Manager', () => {
  it('keeps caches warm and reports ready as a follower; reconciles only once it leads', async () => {
    const w = world();
    const store = new MemoryLeaseStore();
    await store.create({ holderIdentity: 'other', leaseDurationSeconds: 15, acquireTime: w.clock.now(), renewTime: w.clock.now(), leaseTransitions: 0 });
    const manager = new Manager({
      logger: w.logger, metrics: w.metrics, clock: w.clock,
      health: { port: 0, host: '127.0.0.1' },
      leaderElection: { identity: 'me', store, random: () => 0 },
    });
    manager.addController(w.controller);
    const stop = new AbortController();
    const running = manager.run(stop.signal);
    await settle(10);
    await w.informer.synced;
    expect(await readyz(manager.healthPort())).toEqual([200, 'ok\n']);
    expect(manager.isLeader()).toBe(false);
    await w.clock.advance(10_000);
    expect(w.calls).toEqual([]);
    expect(await w.metrics.registry.getSingleMetricAsString('lockstep_leader')).toContain('lockstep_leader 0');

    // The other holder stops renewing: we take over after the lease duration.
    await w.clock.advance(8_000);
    expect(manager.isLeader()).toBe(true);
    expect(w.calls).toEqual(['start shop/web', 'end shop/web']);
    expect(await w.metrics.registry.getSingleMetricAsString('lockstep_leader')).toContain('lockstep_leader 1');

    const port = manager.healthPort();
    stop.abort();
    await expect(running).resolves.toBe('signal');
    expect(store.state?.record.holderIdentity).toBe('');
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    expect(w.transport.current.aborted).toBe(true);
  });

  it('on a signal: in-flight reconciles finish before the lease is released, and no new work starts', async () => {
    const w = world();
    const store = new MemoryLeaseStore();
    const gate = deferred();
    w.setGate(gate.promise);
    const manager = new Manager({ logger: w.logger, metrics: w.metrics, clock: w.clock, leaderElection: { identity: 'me', store } });
    manager.addController(w.controller);
    const stop = new AbortController();
    const running = manager.run(stop.signal);
    await settle(10);
    expect(w.calls).toEqual(['start shop/web']);

    stop.abort();
    await settle();
    w.controller.enqueue('shop/other');
    await settle(10);
    expect(store.state?.record.holderIdentity).toBe('me');
    expect(manager.readinessChecks().find((c) => c.name === 'shutdown')?.ready()).toBe(false);
    gate.resolve();
    await expect(running).resolves.toBe('signal');
    expect(w.calls).toEqual(['start shop/web', 'end shop/web']);
    expect(store.state?.record.holderIdentity).toBe('');
  });

  it('keeps the lease (lets it expire) when the drain times out', async () => {
    const w = world();
    const store = new MemoryLeaseStore();
    w.setGate(new Promise(() => undefined));
    const manager = new Manager({ logger: w.logger, metrics: w.metrics, clock: w.clock, drainTimeoutMs: 5_000, leaderElection: { identity: 'me', store } });
    manager.addController(w.controller);
    const stop = new AbortController();
    const running = manager.run(stop.signal);
    await settle(10);
    stop.abort();
    await settle(10);
    await w.clock.advance(5_000);
    await expect(running).resolves.toBe('signal');
    expect(store.state?.record.holderIdentity).toBe('me');
    expect(w.sink.records().some((r) => String(r['msg']).includes('not releasing the lease'))).toBe(true);
  });

  it('ends the run with lost-leadership when renewals fail, stopping writes at the renew deadline', async () => {
    const w = world();
    const shared = new MemoryLeaseStore();
    const conn = new FlakyLeaseStore(shared);
    const manager = new Manager({ logger: w.logger, metrics: w.metrics, clock: w.clock, leaderElection: { identity: 'me', store: conn } });
    manager.addController(w.controller);
    const running = manager.run(new AbortController().signal);
    await settle(10);
    expect(manager.isLeader()).toBe(true);
    conn.mode = 'fail';
    await w.clock.advance(9_000);
    expect(manager.isLeader()).toBe(true);
    await w.clock.advance(1_500);
    expect(manager.isLeader()).toBe(false);
    await expect(running).resolves.toBe('lost-leadership');
    expect(shared.state?.record.holderIdentity).toBe('me');
  });

  it('without leader election it leads from the start', async () => {
    const w = world();
    const manager = new Manager({ logger: w.logger, metrics: w.metrics, clock: w.clock });
    manager.addController(w.controller);
    const stop = new AbortController();
    const running = manager.run(stop.signal);
    await settle(10);
    expect(manager.isLeader()).toBe(true);
    expect(w.calls).toEqual(['start shop/web', 'end shop/web']);
    stop.abort();
    await expect(running).resolves.toBe('signal');
    expect(manager.isLeader()).toBe(false);
  });
});
