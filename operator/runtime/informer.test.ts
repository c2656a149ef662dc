import { describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { FakeClock, settle } from './fake-clock.js';
import { FakeTransport } from './fake-transport.js';
import { collectionPath, Informer, type QueryParams } from './informer.js';
import { createLogger, MemorySink } from './logger.js';

const secret = (name: string, rv: string, ns = 'shop'): KubernetesObject & { data?: unknown } => ({
  metadata: { name, namespace: ns, resourceVersion: rv },
});

function setup(overrides: { silenceTimeoutMs?: number; optionalApi?: boolean } = {}) {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  const sink = new MemorySink();
  const informer = new Informer({
    name: 'secrets',
    path: '/api/v1/secrets',
    labelSelector: 'app.kubernetes.io/managed-by=lockstep',
    transport,
    logger: createLogger({ sink, clock }),
    clock,
    watchTimeoutSeconds: 400,
    silenceTimeoutMs: overrides.silenceTimeoutMs ?? 150_000,
    backoff: { baseMs: 1000, capMs: 8000 },
    ...(overrides.optionalApi ? { optionalApi: true, absentRecheck: { baseMs: 1000, capMs: 4000 } } : {}),
  });
  const events: string[] = [];
  informer.addHandlers({
    add: (o) => events.push(`add ${o.metadata?.name}@${o.metadata?.resourceVersion}`),
    update: (o, old) => events.push(`update ${o.metadata?.name}@${old.metadata?.resourceVersion}->${o.metadata?.resourceVersion}`),
    delete: (o) => events.push(`delete ${o.metadata?.name}`),
    servedChanged: (served) => events.push(served ? 'served' : 'not served'),
  });
  return { clock, transport, informer, events, sink };
}

describe('collectionPath', () => {
  it('builds core, group and namespaced paths', () => {
    expect(collectionPath({ group: '', version: 'v1', plural: 'secrets' })).toBe('/api/v1/secrets');
    expect(collectionPath({ group: 'cert-manager.io', version: 'v1', plural: 'certificates', namespace: 'shop' })).toBe(
      '/apis/cert-manager.io/v1/namespaces/shop/certificates',
    );
  });
});

describe('Informer', () => {
  it('lists every page with the selector, stamps kind/apiVersion, syncs, then watches from the list resourceVersion', async () => {
    const { transport, informer, events } = setup();
    transport.listImpl = (q) =>
      q['continue'] === undefined
        ? { apiVersion: 'v1', kind: 'SecretList', metadata: { resourceVersion: '10', continue: 'page2' }, items: [secret('a', '5')] }
        : { apiVersion: 'v1', kind: 'SecretList', metadata: { resourceVersion: '10' }, items: [secret('b', '6', 'other')] };
    expect(informer.hasSynced()).toBe(false);
    informer.start();
    await informer.synced;
    await settle();
    expect(transport.lists).toHaveLength(2);
    expect(transport.lists[0]).toMatchObject({ labelSelector: 'app.kubernetes.io/managed-by=lockstep', limit: 500 });
    expect(transport.lists[1]).toMatchObject({ continue: 'page2' });
    expect(informer.hasSynced()).toBe(true);
    expect(events).toEqual(['add a@5', 'add b@6']);
    expect(informer.get('shop', 'a')).toMatchObject({ kind: 'Secret', apiVersion: 'v1' });
    expect(informer.getByKey('other/b')?.metadata?.name).toBe('b');
    expect(informer.list('shop').map((o) => o.metadata?.name)).toEqual(['a']);
    expect(informer.list()).toHaveLength(2);
    expect(transport.watches).toHaveLength(1);
    expect(transport.current.query).toMatchObject({
      resourceVersion: '10', allowWatchBookmarks: true, timeoutSeconds: 400, labelSelector: 'app.kubernetes.io/managed-by=lockstep',
    });
    await informer.stop();
  });

  it('applies watch events to the cache and reports real changes only', async () => {
    const { transport, informer, events } = setup();
    informer.start();
    await informer.synced;
    await settle();
    const w = transport.current;
    w.emit('ADDED', secret('a', '2'));
    w.emit('MODIFIED', secret('a', '3'));
    w.emit('MODIFIED', secret('a', '3'));
    w.emit('BOOKMARK', { kind: 'Secret', metadata: { resourceVersion: '7' } });
    expect(informer.lastResourceVersion()).toBe('7');
    w.emit('DELETED', secret('a', '8'));
    expect(events).toEqual(['add a@2', 'update a@2->3', 'delete a']);
    expect(informer.get('shop', 'a')).toBeUndefined();
    expect(informer.lastResourceVersion()).toBe('8');
    await informer.stop();
  });

  it('caches listed and watched objects without managedFields or kubectl\'s last-applied copy, keeping everything else', async () => {
    const { transport, informer } = setup();
    const bookkept = (name: string, rv: string) => ({
      ...secret(name, rv),
      data: { 'tls.crt': 'Y2VydA==' },
      metadata: {
        ...secret(name, rv).metadata,
        labels: { app: name },
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"big":"copy"}', 'cert-manager.io/certificate-name': name },
        managedFields: [{ manager: 'cert-manager', operation: 'Apply', fieldsType: 'FieldsV1', fieldsV1: { 'f:data': {} } }],
      },
    });
    transport.items = [bookkept('listed', '2')];
    informer.start();
    await informer.synced;
    await settle();
    transport.current.emit('ADDED', bookkept('watched', '3'));
    transport.current.emit('ADDED', { ...secret('plain', '4'), metadata: { ...secret('plain', '4').metadata, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } } });
    for (const name of ['listed', 'watched']) {
      const rv = name === 'listed' ? '2' : '3';
      expect(informer.get('shop', name)).toEqual({
        ...(name === 'listed' ? { kind: undefined, apiVersion: undefined } : {}),
        data: { 'tls.crt': 'Y2VydA==' },
        metadata: { name, namespace: 'shop', resourceVersion: rv, labels: { app: name }, annotations: { 'cert-manager.io/certificate-name': name } },
      });
    }
    expect(informer.get('shop', 'plain')?.metadata).toEqual({ name: 'plain', namespace: 'shop', resourceVersion: '4' });
    await informer.stop();
  });

  it('caches frozen objects so a reconciler cannot corrupt the cache', async () => {
    const { transport, informer } = setup();
    informer.start();
    await informer.synced;
    await settle();
    transport.current.emit('ADDED', { ...secret('a', '2'), data: { k: 'v' } });
    const cached = informer.get('shop', 'a') as { data: Record<string, string> };
    expect(() => {
      cached.data['k'] = 'changed';
    }).toThrow(TypeError);
    await informer.stop();
  });

  it('re-watches from the last resourceVersion after a clean close, without relisting', async () => {
    const { clock, transport, informer } = setup();
    informer.start();
    await informer.synced;
    await settle();
    transport.current.emit('ADDED', secret('a', '4'));
    await clock.advance(60_000);
    transport.current.close();
    await settle();
    expect(transport.watches).toHaveLength(2);
    expect(transport.current.query['resourceVersion']).toBe('4');
    expect(transport.lists).toHaveLength(1);
    await informer.stop();
  });

  it('relists when the watch reports 410 Gone (as an ERROR event or a failed request)', async () => {
    const { clock, transport, informer } = setup();
    informer.start();
    await informer.synced;
    await settle();
    await clock.advance(5000);
    transport.current.emit('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
    await settle();
    expect(transport.lists).toHaveLength(2);
    await clock.advance(5000);
    transport.current.close(Object.assign(new Error('Gone'), { statusCode: 410 }));
    await settle();
    expect(transport.lists).toHaveLength(3);
    await informer.stop();
  });

  it('restarts after a watch error with backoff and a relist that reconciles what it missed', async () => {
    const { clock, transport, informer, events, sink } = setup();
    let items = [secret('a', '1'), secret('b', '1')];
    transport.listImpl = () => ({ kind: 'SecretList', apiVersion: 'v1', metadata: { resourceVersion: '20' }, items });
    informer.start();
    await informer.synced;
    await settle();
    items = [secret('b', '2'), secret('c', '1')];
    transport.current.close(Object.assign(new Error('stream reset'), { code: 'ECONNRESET' }));
    await settle();
    expect(transport.lists).toHaveLength(1);
    await clock.advance(999);
    expect(transport.lists).toHaveLength(1);
    await clock.advance(1);
    expect(transport.lists).toHaveLength(2);
    expect(events).toEqual(['add a@1', 'add b@1', 'delete a', 'update b@1->2', 'add c@1']);
    expect(transport.watches).toHaveLength(2);
    expect(informer.stats().errors).toBe(1);
    expect(sink.records().some((r) => r['msg'] === 'list/watch failed; retrying' && r['reason'] === 'NetworkError')).toBe(true);
    await informer.stop();
  });

  /** Lists fail with `error` until `lists.fail` is false; `lists.times` are their times from now. */
  function failingLists(clock: FakeClock, transport: FakeTransport, error: () => Error) {
    const start = clock.now();
    const lists = { times: [] as number[], fail: true };
    transport.listImpl = () => {
      lists.times.push(clock.now() - start);
      if (lists.fail) throw error();
      return { items: [], metadata: { resourceVersion: '3' } };
    };
    return lists;
  }

  it('backs off exponentially while the list keeps failing, and syncs once it succeeds', async () => {
    const { clock, transport, informer } = setup();
    const lists = failingLists(clock, transport, () => Object.assign(new Error('Forbidden'), { statusCode: 403 }));
    informer.start();
    await clock.advance(30_000);
    expect(lists.times).toEqual([0, 1000, 3000, 7000, 15000, 23000]);
    expect(informer.hasSynced()).toBe(false);
    lists.fail = false;
    await clock.advance(8000);
    expect(informer.hasSynced()).toBe(true);
    await informer.stop();
  });

  it('retryNow() ends the backoff after a failed list: the API server is back, relist at once', async () => {
    const { clock, transport, informer } = setup();
    const lists = failingLists(clock, transport, () => Object.assign(new Error('request failed, reason: connect ECONNREFUSED'), { name: 'FetchError' }));
    const times = lists.times;
    informer.start();
    await clock.advance(7500);
    expect(times).toEqual([0, 1000, 3000, 7000]);
    await clock.advance(100);
    informer.retryNow();
    await settle();
    // Woken and failed again: the backoff starts over (1 s), not at the 8 s it had reached.
    expect(times).toEqual([0, 1000, 3000, 7000, 7600]);
    lists.fail = false;
    await clock.advance(1000);
    expect(times).toEqual([0, 1000, 3000, 7000, 7600, 8600]);
    expect(informer.hasSynced()).toBe(true);
    // Nothing to cut short once it watches: retryNow is a no-op, the watch stays.
    informer.retryNow();
    await settle();
    expect(times).toHaveLength(6);
    await informer.stop();
  });

  describe('an optional API (cert-manager installed after the operator)', () => {
    const notFound = () => Object.assign(new Error('the server could not find the requested resource'), { statusCode: 404 });

    it('counts a 404 as "not served": synced and empty at once, re-checked with its own capped backoff, no watch', async () => {
      const { clock, transport, informer, events, sink } = setup({ optionalApi: true });
      const start = clock.now();
      const times: number[] = [];
      transport.listImpl = () => {
        times.push(clock.now() - start);
        throw notFound();
      };
      informer.start();
      await informer.synced;
      expect(informer.hasSynced()).toBe(true);
      expect(informer.served()).toBe(false);
      expect(informer.list()).toEqual([]);
      await clock.advance(15_000);
      expect(times).toEqual([0, 1000, 3000, 7000, 11_000, 15_000]);
      expect(transport.watches).toHaveLength(0);
      // One warning and one notification for the whole outage, not one per re-check.
      expect(events).toEqual(['not served']);
      expect(sink.records().filter((r) => r['level'] === 'warn')).toHaveLength(1);
      expect(informer.stats().errors).toBe(0);
      await informer.stop();
    });

    it('fills the cache, notifies and starts watching once the API is served', async () => {
      const { clock, transport, informer, events } = setup({ optionalApi: true });
      let installed = false;
      transport.listImpl = () => {
        if (!installed) throw notFound();
        return { apiVersion: 'v1', kind: 'SecretList', metadata: { resourceVersion: '20' }, items: [secret('a', '19')] };
      };
      informer.start();
      await informer.synced;
      installed = true;
      await clock.advance(1000);
      expect(informer.served()).toBe(true);
      expect(events).toEqual(['not served', 'add a@19', 'served']);
      expect(transport.watches).toHaveLength(1);
      expect(transport.current.query).toMatchObject({ resourceVersion: '20' });
      await informer.stop();
    });

    it('empties the cache when the API goes away (its objects went with it)', async () => {
      const { clock, transport, informer, events } = setup({ optionalApi: true });
      transport.items = [secret('a', '1')];
      informer.start();
      await informer.synced;
      await settle();
      expect(informer.served()).toBe(true);
      transport.listImpl = () => {
        throw notFound();
      };
      transport.current.close(notFound());
      await clock.advance(1000);
      expect(informer.served()).toBe(false);
      expect(informer.list()).toEqual([]);
      expect(events).toEqual(['add a@1', 'delete a', 'not served']);
      await informer.stop();
    });

    it('without optionalApi a 404 is an error: not synced, retried with the normal backoff', async () => {
      const { clock, transport, informer } = setup();
      transport.listImpl = () => {
        throw notFound();
      };
      informer.start();
      await clock.advance(5000);
      expect(informer.hasSynced()).toBe(false);
      expect(informer.served()).toBeUndefined();
      expect(informer.stats().errors).toBeGreaterThan(1);
      await informer.stop();
    });
  });

  it('watchdog: a silent watch is abandoned and re-opened; bookmarks keep a healthy one alive', async () => {
    const { clock, transport, informer } = setup({ silenceTimeoutMs: 100_000 });
    informer.start();
    await informer.synced;
    await settle();
    const first = transport.current;
    await clock.advance(60_000);
    first.emit('BOOKMARK', { metadata: { resourceVersion: '9' } });
    await clock.advance(60_000);
    expect(transport.watches).toHaveLength(1);
    await clock.advance(40_000);
    expect(first.aborted).toBe(true);
    expect(transport.watches).toHaveLength(2);
    expect(transport.current.query['resourceVersion']).toBe('9');
    expect(informer.stats().silentRestarts).toBe(1);
    expect(transport.lists).toHaveLength(1);

    // The abandoned stream may still deliver late events or its AbortError: both are ignored.
    first.emit('ADDED', secret('ghost', '99'));
    first.close(Object.assign(new Error('aborted'), { name: 'AbortError' }));
    await settle();
    expect(informer.get('shop', 'ghost')).toBeUndefined();
    expect(transport.watches).toHaveLength(2);
    expect(informer.stats().errors).toBe(0);
    await informer.stop();
  });

  it('stop() aborts the watch and nothing runs afterwards', async () => {
    const { clock, transport, informer } = setup();
    informer.start();
    await informer.synced;
    await settle();
    await informer.stop();
    expect(transport.current.aborted).toBe(true);
    await clock.advance(1_000_000);
    expect(transport.watches).toHaveLength(1);
    expect(transport.lists).toHaveLength(1);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('replays cached objects to handlers added late, and survives a throwing handler', async () => {
    const { transport, informer, sink } = setup();
    transport.listImpl = () => ({ items: [secret('a', '1')], metadata: { resourceVersion: '1' } });
    informer.addHandlers({
      add: () => {
        throw new Error('handler bug');
      },
    });
    informer.start();
    await informer.synced;
    const late: string[] = [];
    const off = informer.addHandlers({ add: (o) => late.push(String(o.metadata?.name)) });
    expect(late).toEqual(['a']);
    off();
    await settle();
    transport.current.emit('ADDED', secret('b', '2'));
    expect(late).toEqual(['a']);
    expect(informer.get('shop', 'b')).toBeDefined();
    expect(sink.records().filter((r) => r['msg'] === 'informer handler failed')).toHaveLength(2);
    await informer.stop();
  });
});

describe('Informer transform', () => {
  it('caches only what the transform keeps, from the list and from watch events alike', async () => {
    const clock = new FakeClock();
    const transport = new FakeTransport();
    const informer = new Informer<KubernetesObject & { spec?: { keep?: string } }>({
      name: 'pods', path: '/api/v1/pods', transport, logger: createLogger({ sink: new MemorySink(), clock }), clock,
      transform: (o) => ({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata?.name, namespace: o.metadata?.namespace, resourceVersion: o.metadata?.resourceVersion }, spec: { keep: (o as { spec?: { keep?: string } }).spec?.keep } }),
    });
    const pod = (name: string, rv: string) => ({ metadata: { name, namespace: 'shop', resourceVersion: rv, annotations: { big: 'x'.repeat(1000) } }, spec: { keep: name, containers: [{ image: 'x' }] } });
    transport.listImpl = () => ({ apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: '1' }, items: [pod('a', '1')] });
    informer.start();
    await informer.synced;
    await settle();
    transport.current.emit('ADDED', { ...pod('b', '2'), apiVersion: 'v1', kind: 'Pod' });
    expect(informer.get('shop', 'a')).toEqual({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', namespace: 'shop', resourceVersion: '1' }, spec: { keep: 'a' } });
    expect(informer.get('shop', 'b')).toEqual({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'b', namespace: 'shop', resourceVersion: '2' }, spec: { keep: 'b' } });
    await informer.stop();
  });
});
