import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { apiClientConfig, readyzProbe, RequestTimeoutError, retryAfterMs } from './api-client.js';
import { describeApiError } from './api-error.js';
import { kubeTransport } from './kube-transport.js';
import { leaderGuardedKubeConfig } from './leader-guard.js';
import { createMetrics, kubeClientObserver, type OperatorMetrics } from './metrics.js';

// What the operator's clients do on the wire: one pooled connection instead of one per request,
// and a 429 answered by waiting and sending again. A local HTTP endpoint records each request
// with the client port it came from.

interface Seen { method: string; path: string; port: number; userAgent: string | undefined }

let server: Server;
let kc: KubeConfig;
const seen: Seen[] = [];
let respond: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;

const configMap = { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'c', namespace: 'n' } };
const ok = (res: ServerResponse, body: unknown = configMap): void => {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
};
const tooMany = (res: ServerResponse): void => {
  res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '1' });
  res.end(JSON.stringify({ kind: 'Status', code: 429, reason: 'TooManyRequests', message: 'too many requests' }));
};

/** The value of one sample of `name` (e.g. a histogram's `_sum`) with exactly these labels. */
async function sample(metrics: OperatorMetrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const families = await metrics.registry.getMetricsAsJSON();
  const values = families.flatMap((f) => (f.values as Array<{ metricName?: string; labels: Record<string, unknown>; value: number }>)
    .map((v) => ({ ...v, metricName: v.metricName ?? f.name })));
  const hit = values.find((v) => v.metricName === name && Object.keys(labels).length === Object.keys(v.labels).filter((k) => k !== 'le').length
    && Object.entries(labels).every(([k, value]) => v.labels[k] === value) && v.labels['le'] === undefined);
  return hit?.value;
}

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push({ method: req.method ?? '', path: req.url ?? '', port: req.socket.remotePort ?? 0, userAgent: req.headers['user-agent'] });
      respond(req, res);
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

describe('apiClientConfig', () => {
  it('sends reads, writes and informer lists over one kept-alive connection, naming the replica', async () => {
    respond = (req, res) => ok(res, req.url?.startsWith('/api/v1/secrets') ? { kind: 'SecretList', metadata: {}, items: [] } : configMap);
    const client = apiClientConfig(kc, { userAgent: 'lockstep-operator/test (a)' });
    const reads = client.makeApiClient(CoreV1Api);
    const writes = leaderGuardedKubeConfig(client, () => true).makeApiClient(CoreV1Api);
    const lists = kubeTransport(client);
    const from = seen.length;
    for (let i = 0; i < 3; i++) {
      await reads.readNamespacedConfigMap({ namespace: 'n', name: 'c' });
      await writes.createNamespacedConfigMap({ namespace: 'n', body: { metadata: { name: 'c' } } });
      await lists.list('/api/v1/secrets', {});
    }
    const mine = seen.slice(from);
    expect(mine.map((s) => s.method)).toEqual(['GET', 'POST', 'GET', 'GET', 'POST', 'GET', 'GET', 'POST', 'GET']);
    expect(new Set(mine.map((s) => s.port)).size).toBe(1);
    expect(new Set(mine.map((s) => s.userAgent))).toEqual(new Set(['lockstep-operator/test (a)']));
  });

  it('waits out a 429 and sends the request again, returning the answer that follows; each 429 and the wait are counted', async () => {
    let throttled = 2;
    respond = (_req, res) => (throttled-- > 0 ? tooMany(res) : ok(res));
    const metrics = createMetrics({ defaultMetrics: false });
    const api = apiClientConfig(kc, { observer: kubeClientObserver(metrics, 'main') }).makeApiClient(CoreV1Api);
    const from = seen.length;
    const cm = await api.readNamespacedConfigMap({ namespace: 'n', name: 'c' });
    expect(cm.metadata?.name).toBe('c');
    expect(seen.length - from).toBe(3);
    expect(await sample(metrics, 'lockstep_kube_throttled_total', { client: 'main', outcome: 'retried' })).toBe(2);
    expect(await sample(metrics, 'lockstep_kube_throttled_total', { client: 'main', outcome: 'returned' })).toBeUndefined();
    // Every request sent is observed once; two Retry-After: 1 make at least two seconds of waiting.
    expect(await sample(metrics, 'lockstep_kube_rate_limit_wait_seconds_count', { client: 'main' })).toBe(3);
    expect(await sample(metrics, 'lockstep_kube_rate_limit_wait_seconds_sum', { client: 'main' })).toBeGreaterThanOrEqual(1.9);
  });

  it('gives the 429 back once the retries are spent, and counts it as returned', async () => {
    respond = (_req, res) => tooMany(res);
    const metrics = createMetrics({ defaultMetrics: false });
    const api = apiClientConfig(kc, { maxThrottledRetries: 0, observer: kubeClientObserver(metrics, 'events') }).makeApiClient(CoreV1Api);
    await expect(api.readNamespacedConfigMap({ namespace: 'n', name: 'c' })).rejects.toMatchObject({ code: 429 });
    expect(await sample(metrics, 'lockstep_kube_throttled_total', { client: 'events', outcome: 'returned' })).toBe(1);
    expect(await sample(metrics, 'lockstep_kube_throttled_total', { client: 'events', outcome: 'retried' })).toBeUndefined();
  });

  it('counts the time requests wait for a token of the client-side limit, and a 429 pausing the bucket', async () => {
    respond = (_req, res) => ok(res);
    const metrics = createMetrics({ defaultMetrics: false });
    const api = apiClientConfig(kc, { rateLimit: { qps: 10, burst: 1 }, observer: kubeClientObserver(metrics, 'main') }).makeApiClient(CoreV1Api);
    // Three at once with a burst of one: the second waits a tenth of a second, the third two.
    await Promise.all([0, 1, 2].map(() => api.readNamespacedConfigMap({ namespace: 'n', name: 'c' })));
    expect(await sample(metrics, 'lockstep_kube_rate_limit_wait_seconds_count', { client: 'main' })).toBe(3);
    expect(await sample(metrics, 'lockstep_kube_rate_limit_wait_seconds_sum', { client: 'main' })).toBeGreaterThanOrEqual(0.25);
    let throttled = 1;
    respond = (_req, res) => (throttled-- > 0 ? tooMany(res) : ok(res));
    const before = (await sample(metrics, 'lockstep_kube_rate_limit_wait_seconds_sum', { client: 'main' })) ?? 0;
    await api.readNamespacedConfigMap({ namespace: 'n', name: 'c' });
    expect(await sample(metrics, 'lockstep_kube_throttled_total', { client: 'main', outcome: 'retried' })).toBe(1);
    expect(((await sample(metrics, 'lockstep_kube_rate_limit_wait_seconds_sum', { client: 'main' })) ?? 0) - before).toBeGreaterThanOrEqual(0.95);
  });
});

describe('what the clients tell the Reachability', () => {
  const status = (res: ServerResponse, code: number): void => {
    res.writeHead(code, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', code, reason: code === 503 ? 'ServiceUnavailable' : 'NotFound', message: 'x' }));
  };

  it('an answer (a 404 or 503 too) is not "unanswered", a refused connection is; the /readyz probe reads 200 only', async () => {
    const told: string[] = [];
    const reachability = { unanswered: () => told.push('unanswered') };
    const api = apiClientConfig(kc, { reachability }).makeApiClient(CoreV1Api);
    respond = (_req, res) => ok(res);
    await api.readNamespacedConfigMap({ namespace: 'n', name: 'c' });
    respond = (_req, res) => status(res, 404);
    await expect(api.readNamespacedConfigMap({ namespace: 'n', name: 'c' })).rejects.toMatchObject({ code: 404 });
    respond = (_req, res) => status(res, 503);
    await expect(api.readNamespacedConfigMap({ namespace: 'n', name: 'c' })).rejects.toMatchObject({ code: 503 });
    expect(told).toEqual([]);

    const probe = readyzProbe(apiClientConfig(kc));
    const from = seen.length;
    expect(await probe(AbortSignal.timeout(5000))).toBe(false);
    respond = (_req, res) => ok(res, 'ok');
    expect(await probe(AbortSignal.timeout(5000))).toBe(true);
    expect(seen.slice(from).map((s) => s.path)).toEqual(['/readyz', '/readyz']);

    // A port nothing listens on: the connection is refused.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const gone = new KubeConfig();
    gone.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }], users: [{ name: 'u', token: 'test-token' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x',
    });
    const refused = apiClientConfig(gone, { reachability }).makeApiClient(CoreV1Api);
    await expect(refused.readNamespacedConfigMap({ namespace: 'n', name: 'c' })).rejects.toThrow(/ECONNREFUSED/);
    expect(told).toEqual(['unanswered']);
  });
});

describe('a request the server never answers', () => {
  it('ends at the request timeout, headers or body missing, as a network failure the Reachability is told of; a caller giving up is not one', async () => {
    const told: string[] = [];
    const reachability = { unanswered: () => told.push('unanswered') };
    const api = apiClientConfig(kc, { reachability, requestTimeoutMs: 300 }).makeApiClient(CoreV1Api);
    const held: ServerResponse[] = [];
    // No answer at all (what a network that drops packets looks like from here).
    respond = (_req, res) => held.push(res);
    const started = Date.now();
    const silent = await api.readNamespacedConfigMap({ namespace: 'n', name: 'c' }).catch((err: unknown) => err);
    expect(silent).toBeInstanceOf(RequestTimeoutError);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(describeApiError(silent)).toMatchObject({ reason: 'NetworkError', message: 'no answer from the API server within 0.3 s (GET /api/v1/namespaces/n/configmaps/c)' });
    expect(told).toEqual(['unanswered']);
    // Headers, then a body that never ends.
    respond = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"kind":');
      held.push(res);
    };
    await expect(api.readNamespacedConfigMap({ namespace: 'n', name: 'c' })).rejects.toBeInstanceOf(RequestTimeoutError);
    expect(told).toEqual(['unanswered', 'unanswered']);
    // A whole answer within the timeout is read as before.
    respond = (_req, res) => ok(res);
    expect((await api.readNamespacedConfigMap({ namespace: 'n', name: 'c' })).metadata?.name).toBe('c');
    // The caller's own deadline, shorter than the client's: its abort, and nothing told.
    respond = (_req, res) => held.push(res);
    const patient = apiClientConfig(kc, { reachability, requestTimeoutMs: 60_000 });
    const ctx = patient.configuration().baseServer.makeRequestContext('/api/v1/namespaces/n/configmaps/c', 'GET' as never);
    ctx.setSignal(AbortSignal.timeout(200));
    await patient.applySecurityAuthentication(ctx);
    await expect(patient.pool.http.send(ctx).toPromise()).rejects.toMatchObject({ name: 'AbortError' });
    expect(told).toEqual(['unanswered', 'unanswered']);
    for (const res of held) res.destroy();
  });
});

describe('retryAfterMs', () => {
  it('reads whole seconds, defaults to one second and caps at a minute', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(undefined)).toBe(1000);
    expect(retryAfterMs('soon')).toBe(1000);
    expect(retryAfterMs('3600')).toBe(60_000);
  });
});
