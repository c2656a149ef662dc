import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api, CoreV1Api, EventsV1Api, KubeConfig } from '@kubernetes/client-node';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeApiError } from './api-error.js';
import { kubeEventSink } from './event-sink.js';
import { kubeTransport } from './kube-transport.js';
import { LeaseConflictError } from './leader-election.js';
import { leaderGuardedKubeConfig, NotLeaderError } from './leader-guard.js';
import { kubeLeaseStore } from './lease-store.js';

// These tests check what client-node actually puts on the wire for the adapters (MicroTime
// precision, patch content type, query parameters, watch streaming), against a local HTTP
// endpoint that records requests. API-server semantics are covered by the e2e tests.

interface Seen {
  method: string;
  url: URL;
  contentType: string | undefined;
  body: unknown;
}

type Route = (req: Seen, res: ServerResponse) => void;

let server: Server;
let kc: KubeConfig;
const seen: Seen[] = [];
let route: Route = (_req, res) => json(res, 404, status(404, 'NotFound', 'no route'));

function json(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

function status(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message };
}

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const entry: Seen = {
        method: req.method ?? '',
        url: new URL(req.url ?? '/', 'http://x'),
        contentType: req.headers['content-type'],
        body: text ? JSON.parse(text) : undefined,
      };
      seen.push(entry);
      route(entry, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'test-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const MICRO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

describe('kubeLeaseStore', () => {
  it('sends MicroTime with six fractional digits, reads times back, and maps 409 to LeaseConflictError', async () => {
    let stored: Record<string, unknown> | undefined;
    route = (req, res) => {
      if (req.method === 'GET') {
        if (!stored) json(res, 404, status(404, 'NotFound', 'leases.coordination.k8s.io "l" not found'));
        else json(res, 200, stored);
      } else if (req.method === 'POST') {
        stored = { ...(req.body as object), metadata: { name: 'l', namespace: 'ops', resourceVersion: '5' } };
        json(res, 201, stored);
      } else if (req.method === 'PUT') {
        json(res, 409, status(409, 'Conflict', 'Operation cannot be fulfilled on leases.coordination.k8s.io "l"'));
      }
    };
    const store = kubeLeaseStore(kc.makeApiClient(CoordinationV1Api), 'ops', 'l');
    expect(await store.get()).toBeUndefined();
    const t = Date.UTC(2026, 4, 1, 12, 0, 0, 123);
    const created = await store.create({ holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: t, renewTime: t, leaseTransitions: 0 });
    const post = seen.at(-1)!;
    expect(post.url.pathname).toBe('/apis/coordination.k8s.io/v1/namespaces/ops/leases');
    const spec = (post.body as { spec: Record<string, unknown> }).spec;
    expect(spec['renewTime']).toMatch(MICRO);
    expect(spec['renewTime']).toBe('2026-05-01T12:00:00.123000Z');
    expect(created).toEqual({ resourceVersion: '5', record: { holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: t, renewTime: t, leaseTransitions: 0 } });
    expect((await store.get())?.record.renewTime).toBe(t);
    await expect(store.update({ ...created.record, renewTime: t + 2000 }, '4')).rejects.toBeInstanceOf(LeaseConflictError);
    const put = seen.at(-1)!;
    expect(put.method).toBe('PUT');
    expect((put.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion).toBe('4');
  });
});

describe('kubeEventSink', () => {
  it('creates events.k8s.io/v1 Events with MicroTime and patches the series as a JSON patch', async () => {
    route = (req, res) => json(res, req.method === 'POST' ? 201 : 200, { kind: 'Event', apiVersion: 'events.k8s.io/v1', metadata: { name: 'e' }, eventTime: '2026-01-01T00:00:00.000000Z' });
    const sink = kubeEventSink(kc.makeApiClient(EventsV1Api));
    const t = Date.UTC(2026, 0, 2, 3, 4, 5, 6);
    await sink.create({
      name: 'web.1', namespace: 'shop', regarding: { kind: 'EncryptedService', name: 'web', namespace: 'shop', uid: 'u' },
      type: 'Warning', reason: 'R', action: 'Reconcile', note: 'n', eventTime: t, reportingController: 'lockstep.dev/operator', reportingInstance: 'p-0',
    });
    const post = seen.at(-1)!;
    expect(post.url.pathname).toBe('/apis/events.k8s.io/v1/namespaces/shop/events');
    expect(post.body).toMatchObject({ eventTime: '2026-01-02T03:04:05.006000Z', reason: 'R', note: 'n', reportingInstance: 'p-0' });
    await sink.updateSeries('shop', 'web.1', { count: 3, lastObservedTime: t + 1 });
    const patch = seen.at(-1)!;
    expect(patch.method).toBe('PATCH');
    expect(patch.contentType).toBe('application/json-patch+json');
    expect(patch.body).toEqual([{ op: 'add', path: '/series', value: { count: 3, lastObservedTime: '2026-01-02T03:04:05.007000Z' } }]);
  });
});

describe('kubeTransport', () => {
  it('lists with the query, returns raw JSON, and throws ApiException with the raw body on failure', async () => {
    route = (req, res) => {
      if (req.url.searchParams.get('labelSelector') === 'forbidden') json(res, 403, status(403, 'Forbidden', 'secrets is forbidden'));
      else json(res, 200, { kind: 'SecretList', apiVersion: 'v1', metadata: { resourceVersion: '77' }, items: [{ metadata: { name: 'a', creationTimestamp: '2026-01-01T00:00:00Z' } }] });
    };
    const t = kubeTransport(kc);
    const list = await t.list('/api/v1/secrets', { labelSelector: 'app=x', limit: 500, continue: undefined });
    const req = seen.at(-1)!;
    expect(req.url.pathname).toBe('/api/v1/secrets');
    expect(Object.fromEntries(req.url.searchParams)).toEqual({ labelSelector: 'app=x', limit: '500' });
    expect(list.items[0]?.metadata?.creationTimestamp).toBe('2026-01-01T00:00:00Z');
    const err = await t.list('/api/v1/secrets', { labelSelector: 'forbidden' }).catch((e: unknown) => e);
    expect(describeApiError(err)).toEqual({ code: 403, reason: 'Forbidden', message: 'secrets is forbidden' });
  });

  it('gives up on a list the server never answers, and aborts it when the informer stops', async () => {
    route = () => undefined; // accept the request, never respond
    const t = kubeTransport(kc, { listTimeoutMs: 200 });
    const timedOut = await t.list('/api/v1/secrets', {}).catch((e: unknown) => e);
    expect(describeApiError(timedOut).reason).toBe('Aborted');
    const stop = new AbortController();
    const pending = kubeTransport(kc).list('/api/v1/secrets', {}, stop.signal).catch((e: unknown) => e);
    stop.abort();
    expect(describeApiError(await pending).reason).toBe('Aborted');
  });

  it('watches with bookmarks and a server timeout, streaming events until the server ends', async () => {
    route = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '2' } } })}\n`);
      res.end(`${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '3' } } })}\n`);
    };
    const events: string[] = [];
    const done = new Promise<unknown>((resolve) => {
      void kubeTransport(kc).watch(
        '/api/v1/secrets',
        { resourceVersion: '1', allowWatchBookmarks: true, timeoutSeconds: 400, labelSelector: 'app=x' },
        (type, obj) => events.push(`${type} ${(obj as { metadata: { resourceVersion: string } }).metadata.resourceVersion}`),
        resolve,
      );
    });
    expect(await done).toBeNull();
    expect(events).toEqual(['ADDED 2', 'BOOKMARK 3']);
    expect(Object.fromEntries(seen.at(-1)!.url.searchParams)).toEqual({
      watch: 'true', resourceVersion: '1', allowWatchBookmarks: 'true', timeoutSeconds: '400', labelSelector: 'app=x',
    });
  });
});

describe('leaderGuardedKubeConfig', () => {
  it('refuses writes before they leave the process while not leading; reads always pass', async () => {
    route = (req, res) => json(res, req.method === 'POST' ? 201 : 200, { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'c', namespace: 'n' } });
    let leader = false;
    const api = leaderGuardedKubeConfig(kc, () => leader).makeApiClient(CoreV1Api);
    const before = seen.length;
    const body = { metadata: { name: 'c' } };
    await expect(api.createNamespacedConfigMap({ namespace: 'n', body })).rejects.toBeInstanceOf(NotLeaderError);
    await expect(api.deleteNamespacedConfigMap({ namespace: 'n', name: 'c' })).rejects.toBeInstanceOf(NotLeaderError);
    expect(seen.length).toBe(before);
    await api.readNamespacedConfigMap({ namespace: 'n', name: 'c' });
    expect(seen.at(-1)?.method).toBe('GET');
    expect(seen.length).toBe(before + 1);
    leader = true;
    await api.createNamespacedConfigMap({ namespace: 'n', body });
    expect(seen.at(-1)?.method).toBe('POST');
  });
});
