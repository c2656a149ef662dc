// The bench's own client side: admin clients from $KUBECONFIG, a concurrent server-side-apply
// client with an optional QPS limit, watch caches built on the operator's own Informer, and
// namespace teardown that waits until the namespaces are gone.
import * as k8s from '@kubernetes/client-node';
import { KeepAliveClient } from './http.js';
import { Informer, collectionPath, type ResourceRef } from '../../operator/runtime/informer.js';
import { kubeTransport } from '../../operator/runtime/kube-transport.js';
import { createLogger } from '../../operator/runtime/logger.js';

export const BENCH_FIELD_MANAGER = 'lockstep-bench';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; the first failure is thrown after the rest settle. */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure !== undefined) throw failure;
}

/** client-go's token bucket: `burst` requests at once, then `qps` per second. Undefined qps: no limit. */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly qps: number | undefined, private readonly burst: number) {
    this.tokens = burst;
  }

  take(): Promise<void> {
    if (this.qps === undefined) return Promise.resolve();
    const qps = this.qps;
    // Serialised, so waiters are served in order.
    this.queue = this.queue.then(async () => {
      const now = Date.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * qps);
      this.last = now;
      if (this.tokens < 1) {
        await sleep(((1 - this.tokens) / qps) * 1000);
        this.tokens = 1;
        this.last = Date.now();
      }
      this.tokens -= 1;
    });
    return this.queue;
  }
}

export interface ClientLimits {
  /** Requests in flight at once. */
  readonly concurrency: number;
  readonly qps: number | undefined;
  readonly burst: number;
}

export function limitsText(l: ClientLimits): string {
  return `${l.concurrency} in flight, ${l.qps === undefined ? 'no QPS limit' : `QPS ${l.qps} burst ${l.burst}`}`;
}

export class Cluster {
  readonly core: k8s.CoreV1Api;
  readonly custom: k8s.CustomObjectsApi;
  private readonly transport: ReturnType<typeof kubeTransport>;
  private readonly log = createLogger({ level: 'warn', fields: { component: 'bench' } });

  private constructor(readonly kc: k8s.KubeConfig, readonly http: KeepAliveClient) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.transport = kubeTransport(kc);
  }

  static async connect(kc: k8s.KubeConfig, maxSockets: number): Promise<Cluster> {
    return new Cluster(kc, await KeepAliveClient.forConfig(kc, maxSockets));
  }

  async apply(obj: k8s.KubernetesObject): Promise<void> {
    await this.http.apply(obj, BENCH_FIELD_MANAGER);
  }

  /** Server-side applies every object, `limits.concurrency` at a time under the QPS limit. */
  async applyAll(objects: readonly k8s.KubernetesObject[], limits: ClientLimits): Promise<void> {
    const bucket = new TokenBucket(limits.qps, limits.burst);
    await mapLimit(objects, limits.concurrency, async (obj) => {
      await bucket.take();
      await this.apply(obj);
    });
  }

  /** A started, synced watch cache; stop it when done. */
  async cache<T extends k8s.KubernetesObject = k8s.KubernetesObject>(name: string, ref: ResourceRef, labelSelector?: string): Promise<Informer<T>> {
    const informer = new Informer<T>({
      name, path: collectionPath(ref), transport: this.transport, logger: this.log, ...(labelSelector ? { labelSelector } : {}),
    });
    informer.start();
    await informer.synced;
    return informer;
  }

  async namespacesWith(labelSelector: string): Promise<string[]> {
    return (await this.core.listNamespace({ labelSelector })).items.map((n) => n.metadata?.name ?? '').filter(Boolean);
  }

  /** Deletes the namespaces and waits until the API server no longer has them. */
  async deleteNamespaces(names: readonly string[], timeoutMs: number): Promise<void> {
    await Promise.all(names.map((name) => this.core.deleteNamespace({ name }).catch((err: unknown) => {
      if ((err as { code?: number }).code !== 404) throw err;
    })));
    await waitUntil(`namespaces ${names.join(', ')} to be deleted`, async () => {
      const left = await Promise.all(names.map((name) => this.core.readNamespace({ name }).then(() => true, () => false)));
      return !left.some(Boolean);
    }, timeoutMs, 1000);
  }
}

export function adminConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  return kc;
}

export const condition = (obj: k8s.KubernetesObject, type: string): { status?: string; reason?: string } | undefined =>
  ((obj as { status?: { conditions?: Array<{ type: string; status?: string; reason?: string }> } }).status?.conditions ?? [])
    .find((c) => c.type === type);

export const isReady = (obj: k8s.KubernetesObject): boolean => condition(obj, 'Ready')?.status === 'True';
