import type { KubernetesObject } from '@kubernetes/client-node';
import { describeApiError, isGone, isNotFound } from './api-error.js';
import { sleep, systemClock, type Clock, type TimerHandle } from './clock.js';
import { keyFor, objectKey, splitKey } from './keys.js';
import type { Logger } from './logger.js';
import { backoffDelay, type BackoffOptions } from './workqueue.js';

// A list+watch cache of one resource, written on client-node's `Watch` stream rather than on
// its ListWatch/makeInformer, because ListWatch (1.4.0) cannot be made robust from outside:
//  - it sends only resourceVersion/labelSelector/fieldSelector, so no `allowWatchBookmarks`
//    and no server-side `timeoutSeconds` — without bookmarks, silence cannot be told apart from
//    a dead connection;
//  - its done-handler is not tied to a request: stop() then start() lets the aborted watch's
//    late AbortError abort the new watch and fire `error`;
//  - on any error other than 410 it stops for good, and the list it is given returns typed
//    model objects (Date fields) while watch events are plain JSON.
// Here every watch attempt has its own closure (late callbacks of an old attempt are ignored),
// errors relist after a capped exponential backoff, 410 Gone relists at once, a clean close
// re-watches from the last resourceVersion, and a watchdog re-watches when nothing (not even a
// bookmark, which the API server sends about once a minute) arrived for `silenceTimeoutMs`.
// List and watch both return raw JSON, so cached objects have one shape (string timestamps).
// A resource of another project's API (cert-manager's) may not be served at all: with
// `optionalApi`, a 404 on the list means "not installed", not an error — the cache is empty and
// synced (so the controllers that do not need it start), and the list is retried until it works.

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export type QueryParams = Record<string, string | number | boolean | undefined>;

export interface ListResponse {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items: KubernetesObject[];
}

export interface WatchHandle {
  abort(): void;
}

/** The two calls an informer makes. `kubeTransport` in kube-transport.ts talks to the API server. */
export interface InformerTransport {
  /** `signal` aborts the request when the informer stops. */
  list(path: string, query: QueryParams, signal?: AbortSignal): Promise<ListResponse>;
  /** Same contract as client-node's `Watch.watch`: `onDone(null)` on a clean end, `onDone(err)` otherwise. */
  watch(
    path: string,
    query: QueryParams,
    onEvent: (type: string, object: unknown) => void,
    onDone: (err: unknown) => void,
  ): Promise<WatchHandle>;
}

export interface InformerHandlers<T extends KubernetesObject> {
  add?(obj: T): void;
  update?(obj: T, old: T): void;
  delete?(obj: T): void;
  /** An optional API started (true) or stopped (false) being served (InformerOptions.optionalApi). */
  servedChanged?(served: boolean): void;
}

export interface ResourceRef {
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  /** Restrict to one namespace; omit for all namespaces (or a cluster-scoped resource). */
  readonly namespace?: string;
}

/** `/api/v1/secrets`, `/apis/cert-manager.io/v1/namespaces/shop/certificates`, ... */
export function collectionPath(ref: ResourceRef): string {
  const root = ref.group === '' ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  const ns = ref.namespace ? `/namespaces/${encodeURIComponent(ref.namespace)}` : '';
  return `${root}${ns}/${ref.plural}`;
}

export interface InformerOptions<T extends KubernetesObject = KubernetesObject> {
  /** Used in logs and readiness output, e.g. `certificates`. */
  readonly name: string;
  /** Collection path (see collectionPath). */
  readonly path: string;
  /** Only objects matching it are cached, e.g. `app.kubernetes.io/managed-by=lockstep`. */
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly transport: InformerTransport;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** List page size. Default 500. */
  readonly pageSize?: number;
  /** Server-side watch timeout; default a random 300–600 s so watches do not expire in step. */
  readonly watchTimeoutSeconds?: number;
  /** Re-watch when no event or bookmark arrived for this long. Default 150 s. */
  readonly silenceTimeoutMs?: number;
  /** Delay between failed attempts. Default 1 s doubling to 60 s. */
  readonly backoff?: BackoffOptions;
  readonly random?: () => number;
  /**
   * Reduces each listed or watched object to what the reconcilers read before it is cached, so a
   * cache of a busy kind (Pods) holds a few fields per object. Keep metadata.name, namespace and
   * resourceVersion: the cache is keyed and versioned by them.
   */
  readonly transform?: (obj: KubernetesObject) => T;
  /**
   * The resource belongs to an API that may not be installed (cert-manager's): a 404 on the list
   * empties the cache, counts as synced and is re-checked with `absentRecheck` (default 1 s
   * doubling to 10 s) instead of failing. Without it a 404 is an error like any other.
   */
  readonly optionalApi?: boolean;
  readonly absentRecheck?: BackoffOptions;
}

export interface InformerStats {
  readonly lists: number;
  readonly watches: number;
  readonly errors: number;
  /** Watches ended by the silence watchdog. */
  readonly silentRestarts: number;
}

type WatchEnd = 'closed' | 'expired' | 'silent' | 'stopped';

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * What the API server and kubectl keep for themselves: managedFields (often a third of an
 * object's bytes, and no reader here looks at it: applies send only what the operator owns)
 * and kubectl's last-applied copy of the whole object. Dropped before anything is cached, as
 * controller-runtime's default cache transform does, so memory per cached object shrinks.
 */
export function withoutBookkeeping(obj: KubernetesObject): KubernetesObject {
  const metadata = obj.metadata;
  if (!metadata) return obj;
  const lastApplied = metadata.annotations?.[LAST_APPLIED] !== undefined;
  if (metadata.managedFields === undefined && !lastApplied) return obj;
  const { managedFields: _dropped, ...rest } = metadata;
  if (lastApplied) {
    const { [LAST_APPLIED]: _copy, ...annotations } = metadata.annotations ?? {};
    if (Object.keys(annotations).length > 0) rest.annotations = annotations;
    else delete rest.annotations;
  }
  return { ...obj, metadata: rest };
}

/** Cached objects are frozen: reconcilers must copy before changing anything. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function statusOf(obj: unknown): { code?: number; reason?: string; message?: string } {
  return typeof obj === 'object' && obj !== null ? (obj as { code?: number; reason?: string; message?: string }) : {};
}

export class Informer<T extends KubernetesObject = KubernetesObject> {
  readonly name: string;
  readonly synced: Promise<void>;

  private readonly opts: InformerOptions<T>;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly store = new Map<string, T>();
  // Reconcilers list one namespace per reconcile; without an index each call copies and scans
  // the whole cache, which at thousands of objects is most of a reconcile's garbage.
  private readonly byNamespace = new Map<string | undefined, Map<string, T>>();
  private readonly handlers = new Set<InformerHandlers<T>>();
  private resourceVersion = '';
  private hasSyncedOnce = false;
  private isServed: boolean | undefined;
  private markSynced!: () => void;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly stopController = new AbortController();
  private endCurrentWatch: ((why: WatchEnd) => void) | undefined;
  /** Ends the backoff after a failed list or watch early (retryNow). */
  private backoffWake: AbortController | undefined;
  private counters = { lists: 0, watches: 0, errors: 0, silentRestarts: 0 };

  constructor(options: InformerOptions<T>) {
    this.opts = options;
    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.logger.child('informer', { informer: options.name });
    this.synced = new Promise((resolve) => (this.markSynced = resolve));
  }

  /** Registers change callbacks; objects already cached are replayed as adds. Returns an unsubscribe. */
  addHandlers(handlers: InformerHandlers<T>): () => void {
    this.handlers.add(handlers);
    if (handlers.add) for (const obj of this.store.values()) this.call(handlers, 'add', obj);
    return () => this.handlers.delete(handlers);
  }

  start(): void {
    if (this.running) return;
    if (this.stopped) throw new Error(`informer ${this.name} was stopped`);
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopController.abort(new Error('informer stopped'));
    this.endCurrentWatch?.('stopped');
    await this.running;
  }

  hasSynced(): boolean {
    return this.hasSyncedOnce;
  }

  /** Whether the API server serves the resource: undefined until the first list answered. */
  served(): boolean | undefined {
    return this.isServed;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(keyFor(namespace, name));
  }

  getByKey(key: string): T | undefined {
    const { namespace, name } = splitKey(key);
    return this.get(namespace, name);
  }

  list(namespace?: string): T[] {
    if (namespace === undefined) return [...this.store.values()];
    return [...(this.byNamespace.get(namespace)?.values() ?? [])];
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  /** Ends a backoff after a failed list or watch now (the API server is back): relists at once. */
  retryNow(): void {
    this.backoffWake?.abort();
  }

  lastResourceVersion(): string {
    return this.resourceVersion;
  }

  stats(): InformerStats {
    return { ...this.counters };
  }

  private async run(): Promise<void> {
    const backoff = this.opts.backoff ?? { baseMs: 1000, capMs: 60_000 };
    let failures = 0;
    let absentChecks = 0;
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          if (!(await this.listIfServed())) {
            await sleep(this.clock, backoffDelay(absentChecks++, this.opts.absentRecheck ?? { baseMs: 1000, capMs: 10_000 }), this.stopController.signal);
            continue;
          }
          absentChecks = 0;
          needList = false;
        }
        const startedAt = this.clock.now();
        const end = await this.watchOnce();
        if (end === 'stopped') break;
        if (end === 'expired') needList = true;
        // A server that keeps closing watches at once must not turn this into a hot loop.
        if (this.clock.now() - startedAt < 1000) {
          await sleep(this.clock, backoffDelay(failures++, backoff), this.stopController.signal);
        } else {
          failures = 0;
        }
      } catch (err) {
        if (this.stopped) break;
        this.counters.errors++;
        needList = true;
        const delay = backoffDelay(failures++, backoff);
        this.log.warn('list/watch failed; retrying', { ...describeApiError(err), retryInMs: delay });
        this.backoffWake = new AbortController();
        try {
          await sleep(this.clock, delay, AbortSignal.any([this.stopController.signal, this.backoffWake.signal]));
        } catch {
          if (this.stopped) break;
          // Woken: the API server is back, and the failures were its absence, not this informer's.
          failures = 0;
        } finally {
          this.backoffWake = undefined;
        }
      }
    }
  }

  /**
   * Lists into the cache; false when an optional API is not served (the cache is then empty: the
   * API's objects went with it). Logs and notifies only when being served changes.
   */
  private async listIfServed(): Promise<boolean> {
    let served = true;
    try {
      await this.listAll();
    } catch (err) {
      if (!this.opts.optionalApi || !isNotFound(err) || this.stopped) throw err;
      served = false;
      this.replaceAll([], '');
    }
    if (this.isServed !== served) {
      const first = this.isServed === undefined;
      this.isServed = served;
      if (!served) this.log.warn('resource not served (its API is not installed); cache empty, re-checking', { path: this.opts.path });
      else if (!first) this.log.info('resource served again', { path: this.opts.path });
      // Served from the start is no news; anything else is.
      if (!first || !served) this.notifyServed(served);
    }
    return served;
  }

  private async listAll(): Promise<void> {
    const items: KubernetesObject[] = [];
    let continueToken: string | undefined;
    let rv = '';
    let itemKind: string | undefined;
    let apiVersion: string | undefined;
    do {
      this.counters.lists++;
      const page = await this.opts.transport.list(this.opts.path, {
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
        limit: this.opts.pageSize ?? 500,
        continue: continueToken,
      }, this.stopController.signal);
      items.push(...(page.items ?? []));
      rv = page.metadata?.resourceVersion ?? rv;
      continueToken = page.metadata?.continue || undefined;
      apiVersion ??= page.apiVersion;
      if (page.kind?.endsWith('List')) itemKind ??= page.kind.slice(0, -'List'.length);
    } while (continueToken && !this.stopped);
    if (this.stopped) return;

    // Items of a list response carry no kind/apiVersion; watch events do. Stamp them so cached
    // objects look the same whichever way they arrived.
    this.replaceAll(items.map((item) => ({ ...item, kind: item.kind ?? itemKind, apiVersion: item.apiVersion ?? apiVersion })), rv);
  }

  /** Makes the cache hold exactly `items` (emitting the differences) and marks it synced. */
  private replaceAll(items: KubernetesObject[], rv: string): void {
    const fresh = new Map<string, T>();
    for (const item of items) {
      const obj = this.reduce(item);
      fresh.set(objectKey(obj), deepFreeze(obj));
    }
    for (const [key, old] of [...this.store]) {
      if (!fresh.has(key)) {
        this.remove(key, old);
        this.emit('delete', old);
      }
    }
    for (const [key, obj] of fresh) this.upsert(key, obj);
    this.resourceVersion = rv;
    if (!this.hasSyncedOnce) {
      this.hasSyncedOnce = true;
      this.markSynced();
      this.log.info('cache synced', { objects: this.store.size });
    }
  }

  private reduce(obj: KubernetesObject): T {
    const kept = withoutBookkeeping(obj);
    return this.opts.transform ? this.opts.transform(kept) : (kept as T);
  }

  private upsert(key: string, obj: T): void {
    const old = this.store.get(key);
    this.store.set(key, obj);
    const ns = obj.metadata?.namespace;
    let index = this.byNamespace.get(ns);
    if (!index) this.byNamespace.set(ns, (index = new Map()));
    index.set(key, obj);
    if (!old) this.emit('add', obj);
    else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('update', obj, old);
  }

  private remove(key: string, old: T): void {
    this.store.delete(key);
    const ns = old.metadata?.namespace;
    const index = this.byNamespace.get(ns);
    index?.delete(key);
    if (index?.size === 0) this.byNamespace.delete(ns);
  }

  private watchOnce(): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve, reject) => {
      const silenceMs = this.opts.silenceTimeoutMs ?? 150_000;
      let settled = false;
      let handle: WatchHandle | undefined;
      let watchdog: TimerHandle | undefined;
      let lastEventAt = this.clock.now();

      const finish = (outcome: WatchEnd | Error): void => {
        if (settled) return;
        settled = true;
        this.endCurrentWatch = undefined;
        if (watchdog !== undefined) this.clock.clearTimeout(watchdog);
        handle?.abort();
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      this.endCurrentWatch = finish;

      const checkSilence = (): void => {
        if (settled) return;
        const idle = this.clock.now() - lastEventAt;
        if (idle >= silenceMs) {
          this.counters.silentRestarts++;
          this.log.info('watch silent; restarting it', { silentForMs: idle });
          finish('silent');
          return;
        }
        watchdog = this.clock.setTimeout(checkSilence, silenceMs - idle);
      };
      watchdog = this.clock.setTimeout(checkSilence, silenceMs);

      const onEvent = (type: string, object: unknown): void => {
        if (settled) return;
        lastEventAt = this.clock.now();
        if (type === 'ERROR') {
          const status = statusOf(object);
          if (status.code === 410) finish('expired');
          else {
            const err = Object.assign(new Error(status.message ?? 'watch error event'), {
              statusCode: status.code,
              reason: status.reason,
            });
            finish(err);
          }
          return;
        }
        const raw = object as KubernetesObject;
        const rv = raw?.metadata?.resourceVersion;
        if (type === 'BOOKMARK') {
          if (rv) this.resourceVersion = rv;
          return;
        }
        if (!raw?.metadata?.name) return;
        const obj = this.reduce(raw);
        const key = objectKey(obj);
        if (type === 'ADDED' || type === 'MODIFIED') {
          this.upsert(key, deepFreeze(obj));
        } else if (type === 'DELETED') {
          const old = this.store.get(key);
          if (old) this.remove(key, old);
          if (old) this.emit('delete', deepFreeze(obj));
        }
        if (rv) this.resourceVersion = rv;
      };

      const onDone = (err: unknown): void => {
        if (settled) return;
        if (err === null || err === undefined) finish('closed');
        else if (isGone(err)) finish('expired');
        else finish(err instanceof Error ? err : new Error(String(err)));
      };

      this.counters.watches++;
      const timeout = this.opts.watchTimeoutSeconds ?? Math.floor(300 + this.random() * 300);
      this.opts.transport
        .watch(
          this.opts.path,
          {
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: timeout,
            labelSelector: this.opts.labelSelector,
            fieldSelector: this.opts.fieldSelector,
          },
          onEvent,
          onDone,
        )
        .then(
          (h) => {
            handle = h;
            if (settled) h.abort();
          },
          (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
        );
    });
  }

  private emit(kind: 'add' | 'delete', obj: T): void;
  private emit(kind: 'update', obj: T, old: T): void;
  private emit(kind: 'add' | 'update' | 'delete', obj: T, old?: T): void {
    for (const h of this.handlers) this.call(h, kind, obj, old);
  }

  private notifyServed(served: boolean): void {
    for (const h of this.handlers) {
      try {
        h.servedChanged?.(served);
      } catch (err) {
        this.log.error('informer handler failed', { event: 'servedChanged', err });
      }
    }
  }

  private call(h: InformerHandlers<T>, kind: 'add' | 'update' | 'delete', obj: T, old?: T): void {
    try {
      if (kind === 'add') h.add?.(obj);
      else if (kind === 'update') h.update?.(obj, old as T);
      else h.delete?.(obj);
    } catch (err) {
      this.log.error('informer handler failed', { event: kind, err });
    }
  }
}
