import type { KubernetesObject } from '@kubernetes/client-node';
import { describeApiError } from './api-error.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { observeFirstWrite } from './first-write.js';
import type { Informer } from './informer.js';
import { keyFor, objectKey } from './keys.js';
import type { Logger } from './logger.js';
import type { OperatorMetrics } from './metrics.js';
import { TerminalError, WorkQueue, type BackoffOptions, type Reconciler, type Result, type Taken } from './workqueue.js';

// Level-triggered glue: informer events only ever become keys in the queue. The reconciler
// reads current state from the caches, so a missed or duplicated event costs nothing.

/** Maps an object event to the keys of the primary objects that must be reconciled. */
export type KeyMapper<T extends KubernetesObject = KubernetesObject> = (obj: T) => Iterable<string>;

export interface WatchSource<T extends KubernetesObject = KubernetesObject> {
  readonly informer: Informer<T>;
  /** Default: the object's own key (for the controller's primary resource). */
  readonly toKeys?: KeyMapper<T>;
  /**
   * Keys for an update, given the object before and after. Default: toKeys of both. Lets a
   * watch skip the fan-out an update cannot matter to (a status write nobody else reads).
   */
  readonly onUpdate?: (obj: T, old: T) => Iterable<string>;
}

/** The object's own `namespace/name` key. */
export const ownKey: KeyMapper = (obj) => [objectKey(obj)];

/**
 * Keys of the owners of kind `kind` in API group `group` named by the object's ownerReferences
 * (owners of a namespaced object live in its namespace). `controllerOnly` ignores non-controller
 * references.
 */
export function ownerKeys(owner: { group: string; kind: string; controllerOnly?: boolean }): KeyMapper {
  return (obj) => {
    const ns = obj.metadata?.namespace;
    const keys: string[] = [];
    for (const ref of obj.metadata?.ownerReferences ?? []) {
      const group = ref.apiVersion.includes('/') ? ref.apiVersion.split('/')[0] : '';
      if (ref.kind !== owner.kind || group !== owner.group) continue;
      if (owner.controllerOnly && ref.controller !== true) continue;
      keys.push(keyFor(ns, ref.name));
    }
    return keys;
  };
}

/**
 * Keys taken from labels, for children that owner references cannot reach (cluster-scoped
 * objects owned by a namespaced resource). Without `namespaceLabel` the owner is assumed to be in
 * the object's own namespace.
 */
export function labelKeys(nameLabel: string, namespaceLabel?: string): KeyMapper {
  return (obj) => {
    const labels = obj.metadata?.labels ?? {};
    const name = labels[nameLabel];
    if (!name) return [];
    const ns = namespaceLabel ? labels[namespaceLabel] : obj.metadata?.namespace;
    if (namespaceLabel && !ns) return [];
    return [keyFor(ns, name)];
  };
}

export type ReconcileOutcome = 'success' | 'requeue' | 'error' | 'terminal';

export interface ControllerOptions {
  /** Lower-case name used in logs and metric labels, e.g. `encryptedservice`. */
  readonly name: string;
  readonly reconcile: Reconciler;
  // Sources of different object types share one list; `any` lets each entry keep its own T.
  readonly watches: ReadonlyArray<WatchSource<any>>;
  readonly logger: Logger;
  readonly metrics?: OperatorMetrics;
  /** Parallel reconciles (of different keys). Default 2. */
  readonly concurrency?: number;
  readonly backoff?: BackoffOptions;
  readonly clock?: Clock;
  /** Re-enqueue every cached object this often, as a safety net. Off by default. */
  readonly resyncPeriodMs?: number;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly opts: ControllerOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private resyncTimer: TimerHandle | undefined;
  private started = false;
  /** Keys whose last reconcile failed with a retryable error, and that error's reason. */
  private readonly failing = new Map<string, string>();

  constructor(options: ControllerOptions) {
    this.opts = options;
    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    this.log = options.logger.child('controller', { controller: options.name });
    const metrics = options.metrics;
    const labels = { controller: options.name };
    const depth = metrics?.workqueueDepth.labels(labels);
    depth?.set(0);
    this.queue = new WorkQueue({
      concurrency: options.concurrency ?? 2,
      ...(options.backoff ? { backoff: options.backoff } : {}),
      clock: this.clock,
      onDepthChange: (d) => depth?.set(d),
      ...(metrics ? {
        hooks: {
          added: () => metrics.workqueueAdds.inc(labels),
          retried: () => metrics.workqueueRetries.inc(labels),
          requeued: () => metrics.workqueueRequeues.inc(labels),
          waited: (ms) => metrics.workqueueQueueDuration.observe(labels, ms / 1000),
        },
      } : {}),
    });
    for (const w of options.watches) this.register(w);
  }

  /** The informers this controller reads; the manager waits for them to sync before start(). */
  informers(): Informer[] {
    return this.opts.watches.map((w) => w.informer as Informer);
  }

  /** Keys waiting for a worker (neither in flight nor delayed). */
  backlog(): number {
    return this.queue.depth();
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  enqueueAfter(key: string, ms: number): void {
    this.queue.addAfter(key, ms);
  }

  /** Starts the workers. Keys enqueued before (e.g. from the initial list) are processed now. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.queue.start((key, taken) => this.reconcileOne(key, taken));
    this.scheduleResync();
    this.log.info('controller started', { concurrency: this.opts.concurrency ?? 2 });
  }

  /** Stops taking keys and resolves once in-flight reconciles have finished. */
  async stop(): Promise<void> {
    if (this.resyncTimer !== undefined) this.clock.clearTimeout(this.resyncTimer);
    this.resyncTimer = undefined;
    await this.queue.shutdown();
    if (this.started) this.log.info('controller stopped');
  }

  private register(w: WatchSource): void {
    const toKeys = w.toKeys ?? ownKey;
    // At debug level each event says which keys it woke: what to read when a change fans out.
    const enqueueKeys = (event: 'add' | 'update' | 'delete', source: KubernetesObject, keysOf: () => Iterable<string>): void => {
      // The informer calls handlers as the watch event is read: this is when the change arrived.
      const arrived = this.clock.now();
      try {
        // One set per event: an idle worker takes a key as soon as it is added, so adding the
        // same key twice would run a second, pointless reconcile right after the first.
        const keys = new Set<string>(keysOf());
        for (const key of keys) this.queue.add(key, arrived);
        if (keys.size > 0 && this.log.enabled('debug')) {
          this.log.debug('enqueued', { informer: w.informer.name, event, source: objectKey(source), woke: [...keys] });
        }
      } catch (err) {
        this.log.error('mapping an event to keys failed', { informer: w.informer.name, err });
      }
    };
    const enqueueFor = (event: 'add' | 'update' | 'delete', ...objs: KubernetesObject[]): void =>
      enqueueKeys(event, objs.at(-1)!, () => objs.flatMap((obj) => [...toKeys(obj)]));
    const onUpdate = w.onUpdate;
    w.informer.addHandlers({
      add: (obj) => enqueueFor('add', obj),
      // Map the old object too: a changed owner reference or label must wake the old owner.
      update: onUpdate
        ? (obj, old) => enqueueKeys('update', obj, () => onUpdate(obj, old))
        : (obj, old) => enqueueFor('update', old, obj),
      delete: (obj) => enqueueFor('delete', obj),
      // An API that appeared or went (cert-manager installed late) changes what every object's
      // reconcile can do, whether or not any of its objects exist yet.
      servedChanged: () => this.resyncAll(),
    });
  }

  /** Enqueues every key the cached objects map to. */
  private resyncAll(): void {
    this.log.debug('enqueued every object (resync)');
    for (const w of this.opts.watches) {
      const toKeys: KeyMapper = w.toKeys ?? ownKey;
      for (const obj of w.informer.list()) for (const key of toKeys(obj)) this.queue.add(key);
    }
  }

  private scheduleResync(): void {
    const every = this.opts.resyncPeriodMs;
    if (!every || every <= 0 || this.queue.isShuttingDown()) return;
    this.resyncTimer = this.clock.setTimeout(() => {
      this.resyncAll();
      this.scheduleResync();
    }, every);
  }

  /** Records whether `key` now waits for a retry after a failure (reason) or not (undefined). */
  private noteFailing(key: string, reason: string | undefined): void {
    const before = this.failing.get(key);
    if (before === reason) return;
    if (reason === undefined) this.failing.delete(key);
    else this.failing.set(key, reason);
    const gauge = this.opts.metrics?.reconcileFailing;
    if (!gauge) return;
    const values = [...this.failing.values()];
    for (const r of [before, reason]) {
      if (r !== undefined) gauge.set({ controller: this.name, reason: r }, values.filter((v) => v === r).length);
    }
  }

  private async reconcileOne(key: string, taken: Taken = {}): Promise<Result | void> {
    const started = this.clock.now();
    const metrics = this.opts.metrics;
    const observe = (outcome: ReconcileOutcome): void => {
      const seconds = (this.clock.now() - started) / 1000;
      metrics?.reconcileDuration.observe({ controller: this.name, result: outcome }, seconds);
      metrics?.workqueueWorkDuration.observe({ controller: this.name }, seconds);
    };
    const { eventAt } = taken;
    const run = (): Promise<Result | void> => this.opts.reconcile(key);
    try {
      const result = await (metrics && eventAt !== undefined
        ? observeFirstWrite((resource) => {
          metrics.eventToWrite.observe({ controller: this.name, resource }, Math.max(0, this.clock.now() - eventAt) / 1000);
        }, run)
        : run());
      const requeue = result?.requeueAfter;
      observe(requeue !== undefined ? 'requeue' : 'success');
      this.noteFailing(key, result?.failing);
      this.log.debug('reconciled', { object: key, durationMs: this.clock.now() - started, requeueAfterMs: requeue });
      return result;
    } catch (err) {
      if (err instanceof TerminalError) {
        observe('terminal');
        metrics?.reconcileErrors.inc({ controller: this.name, reason: err.reason });
        // Not retried: the object's status says why (and LockstepResourceNotReady alerts on it).
        this.noteFailing(key, undefined);
        this.log.warn('reconcile failed; not retrying until the object changes', {
          object: key, reason: err.reason, message: err.message,
        });
      } else {
        observe('error');
        const d = describeApiError(err);
        metrics?.reconcileErrors.inc({ controller: this.name, reason: d.reason });
        this.noteFailing(key, d.reason);
        this.log.warn('reconcile failed; will retry', {
          object: key, err, attempt: this.queue.numRequeues(key) + 1,
        });
      }
      throw err;
    }
  }
}
