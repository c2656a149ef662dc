// The operator runtime against a real API server: informers list+watch with a label selector,
// recover from a dropped watch and from a silent one, and Lease leader election hands over
// within 20 s when the leader dies and within a retry period when it releases.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api, CoreV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import { collectionPath, Informer, type InformerTransport, type WatchHandle } from '../operator/runtime/informer.js';
import { kubeTransport } from '../operator/runtime/kube-transport.js';
import { LeaderElector } from '../operator/runtime/leader-election.js';
import { leaderGuardedKubeConfig, NotLeaderError } from '../operator/runtime/leader-guard.js';
import { kubeLeaseStore } from '../operator/runtime/lease-store.js';
import { createLogger, MemorySink } from '../operator/runtime/logger.js';
import { clients, eventually } from './harness/cluster.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';

const c = clients();
const core = c.kc.makeApiClient(CoreV1Api);
const LABEL = 'lockstep.dev/e2e-runtime';
let ns = '';
const logs = new MemorySink();
const logger = createLogger({ sink: logs, level: 'debug' });

beforeAll(async () => {
  ns = await createTestNamespace(c, 'runtime');
});

afterAll(async () => {
  await deleteTestNamespace(c, ns);
});

const configMap = (name: string, labelled: boolean, value = 'v1'): V1ConfigMap => ({
  metadata: { name, namespace: ns, ...(labelled ? { labels: { [LABEL]: 'yes' } } : {}) },
  data: { value },
});

/** kubeTransport, with the handle of every watch it opens kept for the test. */
function observedTransport(): InformerTransport & { handles: WatchHandle[] } {
  const real = kubeTransport(c.kc);
  const handles: WatchHandle[] = [];
  return {
    handles,
    list: (path, query) => real.list(path, query),
    async watch(path, query, onEvent, onDone) {
      const h = await real.watch(path, query, onEvent, onDone);
      handles.push(h);
      return h;
    },
  };
}

function configMapInformer(transport: InformerTransport, extra: { silenceTimeoutMs?: number; backoff?: { baseMs: number } } = {}) {
  const informer = new Informer<V1ConfigMap>({
    name: 'configmaps',
    path: collectionPath({ group: '', version: 'v1', plural: 'configmaps', namespace: ns }),
    labelSelector: `${LABEL}=yes`,
    transport,
    logger,
    ...extra,
  });
  const events: string[] = [];
  informer.addHandlers({
    add: (o) => events.push(`add ${o.metadata?.name}`),
    update: (o) => events.push(`update ${o.metadata?.name} ${o.data?.['value']}`),
    delete: (o) => events.push(`delete ${o.metadata?.name}`),
  });
  return { informer, events };
}

describe('Informer on a real API server', () => {
  it('syncs, caches only labelled objects, and follows adds, updates and deletes', async () => {
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('sync-a', true) });
    const { informer, events } = configMapInformer(kubeTransport(c.kc));
    informer.start();
    try {
      await informer.synced;
      expect(informer.hasSynced()).toBe(true);
      expect(informer.get(ns, 'sync-a')).toMatchObject({ kind: 'ConfigMap', apiVersion: 'v1', data: { value: 'v1' } });

      await core.createNamespacedConfigMap({ namespace: ns, body: configMap('sync-unlabelled', false) });
      await core.createNamespacedConfigMap({ namespace: ns, body: configMap('sync-b', true) });
      await eventually('sync-b cached', async () => informer.get(ns, 'sync-b'));
      expect(informer.get(ns, 'sync-unlabelled')).toBeUndefined();

      await core.replaceNamespacedConfigMap({ namespace: ns, name: 'sync-a', body: configMap('sync-a', true, 'v2') });
      await eventually('update seen', async () => (informer.get(ns, 'sync-a')?.data?.['value'] === 'v2' ? true : undefined));
      await core.deleteNamespacedConfigMap({ namespace: ns, name: 'sync-b' });
      await eventually('delete seen', async () => (informer.get(ns, 'sync-b') ? undefined : true));
      expect(events).toEqual(['add sync-a', 'add sync-b', 'update sync-a v2', 'delete sync-b']);
    } finally {
      await informer.stop();
    }
  });

  it('recovers from a dropped watch connection and catches up on what changed meanwhile', async () => {
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('drop-x', true) });
    const transport = observedTransport();
    const { informer, events } = configMapInformer(transport, { backoff: { baseMs: 3000 } });
    informer.start();
    try {
      await informer.synced;
      await eventually('watch open', async () => transport.handles[0]);
      const watchesBefore = informer.stats().watches;
      // Cut the stream underneath the informer, then change things while it is disconnected.
      transport.handles[0]!.abort();
      await core.deleteNamespacedConfigMap({ namespace: ns, name: 'drop-x' });
      await core.createNamespacedConfigMap({ namespace: ns, body: configMap('drop-y', true) });
      await eventually('cache caught up', async () =>
        informer.get(ns, 'drop-y') && !informer.get(ns, 'drop-x') ? true : undefined, 30_000);
      expect(events).toEqual(expect.arrayContaining(['add drop-x', 'delete drop-x', 'add drop-y']));
      expect(informer.stats().watches).toBeGreaterThan(watchesBefore);
      // client-node reports the cut stream as an error (AbortError): the informer relisted.
      expect(informer.stats()).toMatchObject({ errors: 1, lists: 2 });
    } finally {
      await informer.stop();
    }
  });

  it('restarts a silent watch without relisting, and keeps receiving events', async () => {
    const transport = observedTransport();
    const { informer } = configMapInformer(transport, { silenceTimeoutMs: 3000 });
    informer.start();
    try {
      await informer.synced;
      await eventually('watchdog restart', async () => (informer.stats().silentRestarts >= 1 ? true : undefined), 20_000, 200);
      await eventually('watch reopened', async () => (transport.handles.length >= 2 ? true : undefined), 5_000, 50);
      await core.createNamespacedConfigMap({ namespace: ns, body: configMap('quiet-z', true) });
      await eventually('event after restart', async () => informer.get(ns, 'quiet-z'));
      expect(informer.stats().lists).toBe(1);
      expect(informer.stats().errors).toBe(0);
    } finally {
      await informer.stop();
    }
  });
});

describe('Lease leader election on a real API server', () => {
  const leases = c.kc.makeApiClient(CoordinationV1Api);
  const elector = (identity: string) =>
    new LeaderElector({ identity, store: kubeLeaseStore(leases, ns, 'lockstep-e2e'), logger });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('hands over within 20 s when the leader dies, and within a retry period when it releases', async () => {
    const a = elector('replica-a');
    const b = elector('replica-b');
    const writesAsA = leaderGuardedKubeConfig(c.kc, () => a.isLeader()).makeApiClient(CoreV1Api);
    let third: LeaderElector | undefined;
    try {
      a.start();
      await eventually('a leads', async () => (a.isLeader() ? true : undefined), 10_000, 100);
      b.start();
      await sleep(3000);
      expect(b.isLeader()).toBe(false);
      expect(b.currentLeader()).toBe('replica-a');

      const lease = await leases.readNamespacedLease({ namespace: ns, name: 'lockstep-e2e' });
      expect(lease.spec?.holderIdentity).toBe('replica-a');
      // client-node hands MicroTime back as the raw string: six fractional digits.
      expect(String(lease.spec?.renewTime)).toMatch(/\.\d{6}Z$/);
      await writesAsA.createNamespacedConfigMap({ namespace: ns, body: configMap('written-by-a', false) });

      // The leader dies: no release, no more renewals.
      const diedAt = Date.now();
      await a.stop({ release: false });
      await expect(writesAsA.createNamespacedConfigMap({ namespace: ns, body: configMap('after-death', false) })).rejects.toBeInstanceOf(NotLeaderError);
      await eventually('b takes over', async () => (b.isLeader() ? true : undefined), 25_000, 100);
      const takeover = Date.now() - diedAt;
      expect(takeover).toBeLessThanOrEqual(20_000);
      const taken = await leases.readNamespacedLease({ namespace: ns, name: 'lockstep-e2e' });
      expect(taken.spec).toMatchObject({ holderIdentity: 'replica-b', leaseTransitions: 1 });

      // Graceful hand-over: the released lease is taken at the follower's next retry.
      third = elector('replica-c');
      third.start();
      await sleep(2500);
      expect(third.isLeader()).toBe(false);
      const releasedAt = Date.now();
      await b.stop();
      const c3 = third;
      await eventually('c takes over', async () => (c3.isLeader() ? true : undefined), 10_000, 50);
      expect(Date.now() - releasedAt).toBeLessThanOrEqual(3_000);
    } finally {
      await Promise.all([a.stop({ release: false }), b.stop(), third?.stop()]);
    }
  }, 90_000);
});
