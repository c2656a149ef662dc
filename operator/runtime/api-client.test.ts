import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { apiClientConfig, retryAfterMs } from './api-client.js';
import { kubeTransport } from './kube-transport.js';
import { leaderGuardedKubeConfig } from './leader-guard.js';

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

  it('waits out a 429 and sends the request again, returning the answer that follows', async () => {
    let throttled = 2;
    respond = (_req, res) => {
      if (throttled-- > 0) {
        res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '1' });
        res.end(JSON.stringify({ kind: 'Status', code: 429, reason: 'TooManyRequests', message: 'too many requests' }));
      } else ok(res);
    };
    const api = apiClientConfig(kc).makeApiClient(CoreV1Api);
    const from = seen.length;
    const cm = await api.readNamespacedConfigMap({ namespace: 'n', name: 'c' });
    expect(cm.metadata?.name).toBe('c');
    expect(seen.length - from).toBe(3);
  });

  it('gives the 429 back once the retries are spent', async () => {
    respond = (_req, res) => {
      res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '1' });
      res.end(JSON.stringify({ kind: 'Status', code: 429, reason: 'TooManyRequests', message: 'too many requests' }));
    };
    const api = apiClientConfig(kc, { maxThrottledRetries: 0 }).makeApiClient(CoreV1Api);
    await expect(api.readNamespacedConfigMap({ namespace: 'n', name: 'c' })).rejects.toMatchObject({ code: 429 });
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
