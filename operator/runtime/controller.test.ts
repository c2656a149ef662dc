import { describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { Controller, labelKeys, ownerKeys, ownKey } from './controller.js';
import { FakeClock, settle } from './fake-clock.js';
import { FakeTransport } from './fake-transport.js';
import { noteWrite } from './first-write.js';
import { Informer } from './informer.js';
import { createLogger, MemorySink } from './logger.js';
import { createMetrics } from './metrics.js';
import { TerminalError } from './workqueue.js';

const owned = (name: string, owner: string, rv = '1', kind = 'EncryptedService'): KubernetesObject => ({
  apiVersion: 'cert-manager.io/v1',
  kind: 'Certificate',
  metadata: {
    name, namespace: 'shop', resourceVersion: rv,
    ownerReferences: [{ apiVersion: 'lockstep.dev/v1alpha1', kind, name: owner, uid: `uid-${owner}`, controller: true }],
  },
});

function informerOn(transport: FakeTransport, clock: FakeClock, name: string): Informer {
  return new Informer({ name, path: `/x/${name}`, transport, clock, logger: createLogger({ sink: new MemorySink(), clock }) });
}

describe('key mappers', () => {
  it('ownKey, ownerKeys (group and kind must match), labelKeys', () => {
    expect([...ownKey({ metadata: { name: 'a', namespace: 'n' } })]).toEqual(['n/a']);
    expect([...ownKey({ metadata: { name: 'sc' } })]).toEqual(['sc']);
    const toOwner = ownerKeys({ group: 'lockstep.dev', kind: 'EncryptedService' });
    expect([...toOwner(owned('c', 'web'))]).toEqual(['shop/web']);
    expect([...toOwner(owned('c', 'web', '1', 'KeyPolicy'))]).toEqual([]);
    const foreign = owned('c', 'web');
    foreign.metadata!.ownerReferences![0]!.apiVersion = 'other.io/v1';
    expect([...toOwner(foreign)]).toEqual([]);
    const nonController = owned('c', 'web');
    nonController.metadata!.ownerReferences![0]!.controller = false;
    expect([...ownerKeys({ group: 'lockstep.dev', kind: 'EncryptedService', controllerOnly: true })(nonController)]).toEqual([]);
    const byLabel = labelKeys('lockstep.dev/owner-name', 'lockstep.dev/owner-namespace');
    expect([...byLabel({ metadata: { name: 'sc', labels: { 'lockstep.dev/owner-name': 'web', 'lockstep.dev/owner-namespace': 'shop' } } })]).toEqual(['shop/web']);
    expect([...byLabel({ metadata: { name: 'sc', labels: { 'lockstep.dev/owner-name': 'web' } } })]).toEqual([]);
    expect([...labelKeys('app')({ metadata: { name: 'p', namespace: 'n', labels: { app: 'web' } } })]).toEqual(['n/web']);
  });
});

describe('Controller', () => {
  it('turns primary and child events into owner keys, and reconciles each once when started', async () => {
    const clock = new FakeClock();
    const primaries = new FakeTransport();
    const children = new FakeTransport();
    primaries.items = [{ metadata: { name: 'web', namespace: 'shop', resourceVersion: '1' } }];
    children.items = [owned('web-tls', 'web'), owned('api-tls', 'api')];
    const es = informerOn(primaries, clock, 'encryptedservices');
    const certs = informerOn(children, clock, 'certificates');
    const seen: string[] = [];
    const controller = new Controller({
      name: 'es',
      clock,
      logger: createLogger({ sink: new MemorySink(), clock }),
      reconcile: async (key) => {
        seen.push(key);
      },
      watches: [{ informer: es }, { informer: certs, toKeys: ownerKeys({ group: 'lockstep.dev', kind: 'EncryptedService' }) }],
    });
    es.start();
    certs.start();
    await Promise.all([es.synced, certs.synced]);
    await settle();
    expect(seen).toEqual([]);
    expect(controller.queue.depth()).toBe(2);
    controller.start();
    await settle();
    expect(seen.sort()).toEqual(['shop/api', 'shop/web']);

    // A changed owner reference wakes both the old and the new owner.
    seen.length = 0;
    children.current.emit('MODIFIED', owned('web-tls', 'web2', '2'));
    await settle();
    expect(seen.sort()).toEqual(['shop/web', 'shop/web2']);
    await controller.stop();
    await Promise.all([es.stop(), certs.stop()]);
  });

  it('maps updates through onUpdate when a watch gives one (adds and deletes still use toKeys)', async () => {
    const clock = new FakeClock();
    const children = new FakeTransport();
    children.items = [owned('web-tls', 'web')];
    const certs = informerOn(children, clock, 'certificates');
    const seen: string[] = [];
    const updates: string[] = [];
    const controller = new Controller({
      name: 'es',
      clock,
      logger: createLogger({ sink: new MemorySink(), clock }),
      reconcile: async (key) => {
        seen.push(key);
      },
      watches: [{
        informer: certs,
        toKeys: ownerKeys({ group: 'lockstep.dev', kind: 'EncryptedService' }),
        // Only a changed resourceVersion parity matters here; the old object is given too.
        onUpdate: (obj, old) => {
          updates.push(`${old.metadata?.resourceVersion}->${obj.metadata?.resourceVersion}`);
          return obj.metadata?.resourceVersion === '3' ? ['shop/other'] : [];
        },
      }],
    });
    certs.start();
    await certs.synced;
    controller.start();
    await settle();
    expect(seen).toEqual(['shop/web']);
    seen.length = 0;
    children.current.emit('MODIFIED', owned('web-tls', 'web2', '2'));
    await settle();
    expect(seen).toEqual([]);
    children.current.emit('MODIFIED', owned('web-tls', 'web2', '3'));
    children.current.emit('DELETED', owned('web-tls', 'web2', '4'));
    await settle();
    expect(updates).toEqual(['1->2', '2->3']);
    expect(seen.sort()).toEqual(['shop/other', 'shop/web2']);
    await controller.stop();
    await certs.stop();
  });

  it('records duration by result, errors by reason, and queue depth', async () => {
    const clock = new FakeClock();
    const metrics = createMetrics({ defaultMetrics: false, clock });
    const transport = new FakeTransport();
    const inf = informerOn(transport, clock, 'things');
    const sink = new MemorySink();
    const controller = new Controller({
      name: 'things',
      clock,
      metrics,
      logger: createLogger({ sink, clock }),
      backoff: { baseMs: 1000, capMs: 1000 },
      reconcile: async (key) => {
        if (key === 'ns/bad') throw new TerminalError('InvalidSpec', 'spec.x is wrong');
        if (key === 'ns/flaky') throw Object.assign(new Error('Conflict'), { statusCode: 409 });
        if (key === 'ns/later') return { requeueAfter: 60_000 };
        return {};
      },
      watches: [{ informer: inf }],
    });
    controller.enqueue('ns/ok');
    controller.enqueue('ns/bad');
    controller.enqueue('ns/flaky');
    controller.enqueue('ns/later');
    expect((await metrics.registry.getSingleMetricAsString('lockstep_workqueue_depth'))).toContain('lockstep_workqueue_depth{controller="things"} 4');
    controller.start();
    await settle();
    await clock.advance(1000);
    await controller.stop();

    const text = await metrics.registry.metrics();
    expect(text).toContain('lockstep_reconcile_duration_seconds_count{controller="things",result="success"} 1');
    expect(text).toContain('lockstep_reconcile_duration_seconds_count{controller="things",result="requeue"} 1');
    expect(text).toContain('lockstep_reconcile_duration_seconds_count{controller="things",result="terminal"} 1');
    expect(text).toContain('lockstep_reconcile_duration_seconds_count{controller="things",result="error"} 2');
    expect(text).toContain('lockstep_workqueue_work_duration_seconds_count{controller="things"} 5');
    expect(text).toContain('lockstep_reconcile_errors_total{controller="things",reason="InvalidSpec"} 1');
    expect(text).toContain('lockstep_reconcile_errors_total{controller="things",reason="Conflict"} 2');
    expect(text).toContain('lockstep_workqueue_depth{controller="things"} 0');
    const warn = sink.records().find((r) => r['msg'] === 'reconcile failed; will retry');
    expect(warn).toMatchObject({ controller: 'things', object: 'ns/flaky', attempt: 1, err: { reason: 'Conflict', code: 409 } });
  });

  it('counts the objects waiting for a retry after a failure (thrown, or reported with a requeue) until a retry succeeds (terminal errors are not retried, not counted)', async () => {
    const clock = new FakeClock();
    const metrics = createMetrics({ defaultMetrics: false, clock });
    const transport = new FakeTransport();
    let refusals = 2;
    const controller = new Controller({
      name: 'things', clock, metrics, logger: createLogger({ sink: new MemorySink(), clock }),
      backoff: { baseMs: 1000, capMs: 1000 },
      reconcile: async (key) => {
        if (key === 'ns/bad') throw new TerminalError('InvalidSpec', 'spec.x is wrong');
        if (key === 'ns/stuck') throw Object.assign(new Error('Forbidden'), { statusCode: 403 });
        if (key === 'ns/healing' && refusals-- > 0) throw Object.assign(new Error('Forbidden'), { statusCode: 403 });
        // Wrote what it could; one write refused, tried again later.
        if (key === 'ns/partial') return { requeueAfter: 10_000, failing: 'ChildRefused' };
        return {};
      },
      watches: [{ informer: informerOn(transport, clock, 'things') }],
    });
    const failing = async () => (await metrics.registry.getSingleMetricAsString('lockstep_reconcile_failing_objects')).split('\n').filter((l) => !l.startsWith('#')).sort();
    for (const key of ['ns/ok', 'ns/bad', 'ns/stuck', 'ns/healing', 'ns/partial']) controller.enqueue(key);
    controller.start();
    await settle();
    const partial = 'lockstep_reconcile_failing_objects{controller="things",reason="ChildRefused"} 1';
    expect(await failing()).toEqual([partial, 'lockstep_reconcile_failing_objects{controller="things",reason="Forbidden"} 2']);
    await clock.advance(1000);
    expect(await failing()).toEqual([partial, 'lockstep_reconcile_failing_objects{controller="things",reason="Forbidden"} 2']);
    await clock.advance(1000);
    // healing's third attempt succeeded; stuck keeps failing.
    expect(await failing()).toEqual([partial, 'lockstep_reconcile_failing_objects{controller="things",reason="Forbidden"} 1']);
    await controller.stop();
  });

  it('resyncs every cached object on its period', async () => {
    const clock = new FakeClock();
    const transport = new FakeTransport();
    transport.items = [{ metadata: { name: 'a', namespace: 'n', resourceVersion: '1' } }];
    const inf = informerOn(transport, clock, 'things');
    let count = 0;
    const controller = new Controller({
      name: 'things', clock, logger: createLogger({ sink: new MemorySink(), clock }), resyncPeriodMs: 600_000,
      reconcile: async () => {
        count++;
      },
      watches: [{ informer: inf }],
    });
    inf.start();
    await inf.synced;
    controller.start();
    await settle();
    expect(count).toBe(1);
    await clock.advance(600_000);
    expect(count).toBe(2);
    await controller.stop();
    await clock.advance(600_000);
    expect(count).toBe(2);
    await inf.stop();
  });

  it('reconciles every primary again when an optional API it watches starts being served, though none of its objects exist', async () => {
    const clock = new FakeClock();
    const primaries = new FakeTransport();
    primaries.items = [{ metadata: { name: 'web', namespace: 'shop', resourceVersion: '1' } }, { metadata: { name: 'api', namespace: 'shop', resourceVersion: '1' } }];
    const issuersApi = new FakeTransport();
    let installed = false;
    issuersApi.listImpl = () => {
      if (!installed) throw Object.assign(new Error('not found'), { statusCode: 404 });
      return { items: [], metadata: { resourceVersion: '5' } };
    };
    const es = informerOn(primaries, clock, 'encryptedservices');
    const issuers = new Informer({
      name: 'issuers', path: '/x/issuers', transport: issuersApi, clock, logger: createLogger({ sink: new MemorySink(), clock }), optionalApi: true,
    });
    const seen: string[] = [];
    const controller = new Controller({
      name: 'es', clock, logger: createLogger({ sink: new MemorySink(), clock }),
      reconcile: async (key) => {
        seen.push(key);
      },
      watches: [{ informer: es }, { informer: issuers, toKeys: () => [] }],
    });
    es.start();
    issuers.start();
    await Promise.all([es.synced, issuers.synced]);
    controller.start();
    await settle();
    expect(seen.sort()).toEqual(['shop/api', 'shop/web']);
    installed = true;
    await clock.advance(1000);
    expect(issuers.served()).toBe(true);
    expect(seen.sort()).toEqual(['shop/api', 'shop/api', 'shop/web', 'shop/web']);
    await controller.stop();
    await Promise.all([es.stop(), issuers.stop()]);
  });

  it('measures from the watch event to the first write of the reconcile it caused', async () => {
    const clock = new FakeClock();
    const metrics = createMetrics({ defaultMetrics: false, clock });
    const transport = new FakeTransport();
    transport.items = [{ metadata: { name: 'a', namespace: 'n', resourceVersion: '1' } }];
    const inf = informerOn(transport, clock, 'things');
    const controller = new Controller({
      name: 'things', clock, metrics, logger: createLogger({ sink: new MemorySink(), clock }),
      reconcile: async (key) => {
        // The reconcile takes 40 ms before it writes; a second write is not a new sample.
        await new Promise<void>((resolve) => clock.setTimeout(resolve, 40));
        if (key === 'n/a') {
          noteWrite('networkpolicies');
          noteWrite('encryptedservices/status');
        }
      },
      watches: [{ informer: inf }],
    });
    inf.start();
    await inf.synced;
    await settle();
    // Queued 25 ms before the workers start: the wait in the queue counts too.
    await clock.advance(25);
    controller.start();
    await settle();
    await clock.advance(40);
    transport.current.emit('MODIFIED', { metadata: { name: 'a', namespace: 'n', resourceVersion: '2' } });
    transport.current.emit('ADDED', { metadata: { name: 'quiet', namespace: 'n', resourceVersion: '3' } });
    await settle();
    await clock.advance(40);
    controller.enqueue('n/a');
    await settle();
    await clock.advance(40);
    await controller.stop();
    await inf.stop();

    const text = await metrics.registry.metrics();
    // Two event-caused writes (65 ms, 40 ms); the key enqueued by hand carries no event time.
    expect(text).toContain('lockstep_event_to_write_seconds_count{controller="things",resource="networkpolicies"} 2');
    expect(text).toContain('lockstep_event_to_write_seconds_sum{controller="things",resource="networkpolicies"} 0.105');
    expect(text).toContain('lockstep_event_to_write_seconds_bucket{le="0.05",controller="things",resource="networkpolicies"} 1');
    expect(text).not.toContain('resource="encryptedservices/status"');
    expect(text).toContain('lockstep_workqueue_adds_total{controller="things"} 4');
  });

  it('reconciles a key once for an update event that maps old and new object to it', async () => {
    const clock = new FakeClock();
    const transport = new FakeTransport();
    transport.items = [{ metadata: { name: 'a', namespace: 'n', resourceVersion: '1' } }];
    const inf = informerOn(transport, clock, 'things');
    const seen: string[] = [];
    const controller = new Controller({
      name: 'things', clock, logger: createLogger({ sink: new MemorySink(), clock }),
      reconcile: async (key) => {
        seen.push(key);
      },
      watches: [{ informer: inf }],
    });
    inf.start();
    await inf.synced;
    controller.start();
    await settle();
    seen.length = 0;
    // Idle workers take a key the moment it is added: old and new must not be added one by one.
    transport.current.emit('MODIFIED', { metadata: { name: 'a', namespace: 'n', resourceVersion: '2' } });
    await settle();
    expect(seen).toEqual(['n/a']);
    await controller.stop();
    await inf.stop();
  });
});
