import type { KubernetesObject } from '@kubernetes/client-node';
import { describeApiError, isNotFound } from './api-error.js';
import { systemClock, type Clock } from './clock.js';
import type { Logger } from './logger.js';
import { defaultRedactor, type Redactor } from './redact.js';

// events.k8s.io/v1 Events. A reconcile that keeps failing the same way must not create an
// Event per attempt: repeats of the same (object, type, reason, action, note) within a window
// of the last one become one Event whose `series` counts them, as client-go's event library
// does. Notes pass through the redactor. Recording never throws and never blocks a reconcile.

export type EventType = 'Normal' | 'Warning';

export interface ObjectReference {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
}

export interface NewEvent {
  readonly name: string;
  readonly namespace: string;
  readonly regarding: ObjectReference;
  readonly type: EventType;
  readonly reason: string;
  readonly action: string;
  readonly note: string;
  readonly eventTime: number;
  readonly reportingController: string;
  readonly reportingInstance: string;
}

/** The Event I/O; `kubeEventSink` (event-sink.ts) implements it with EventsV1Api. */
export interface EventSink {
  create(event: NewEvent): Promise<void>;
  /** Sets `series` on an existing Event; rejects with a 404 error when the Event is gone. */
  updateSeries(namespace: string, name: string, series: { count: number; lastObservedTime: number }): Promise<void>;
}

export interface EventRecorder {
  /** Records an Event about `regarding`. `action` defaults to `Reconcile`. Fire and forget. */
  record(regarding: KubernetesObject, type: EventType, reason: string, message: string, action?: string): void;
}

interface SeriesEntry {
  readonly namespace: string;
  name: string;
  count: number;
  /** Count last written to the API server (1 = just the Event, no series yet). */
  written: number;
  lastSeen: number;
  writing: Promise<void> | undefined;
}

export type Correlation = { readonly kind: 'new' } | { readonly kind: 'repeat'; readonly count: number };

/**
 * Pure de-duplication state: which occurrences start a new Event and which extend a series.
 * Entries expire `windowMs` after their last occurrence; at most `maxEntries` are kept
 * (least recently seen evicted first).
 */
export class EventCorrelator<E extends { count: number; lastSeen: number }> {
  private readonly entries = new Map<string, E>();

  constructor(
    private readonly windowMs: number,
    private readonly maxEntries: number,
  ) {}

  lookup(key: string, now: number): E | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (now - e.lastSeen > this.windowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  /** Records an occurrence; `create` makes the entry when this occurrence starts a new Event. */
  observe(key: string, now: number, create: () => E): { entry: E; correlation: Correlation } {
    const existing = this.lookup(key, now);
    if (existing) {
      existing.count++;
      existing.lastSeen = now;
      // Re-insert to keep Map order = recency order for eviction.
      this.entries.delete(key);
      this.entries.set(key, existing);
      return { entry: existing, correlation: { kind: 'repeat', count: existing.count } };
    }
    const entry = create();
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return { entry, correlation: { kind: 'new' } };
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  size(): number {
    return this.entries.size;
  }
}

export interface EventRecorderOptions {
  readonly sink: EventSink;
  readonly logger: Logger;
  /** Unique per replica (pod name). */
  readonly reportingInstance: string;
  readonly reportingController?: string;
  readonly clock?: Clock;
  readonly redactor?: Redactor;
  /** Repeats within this long of the previous occurrence join its series. Default 10 min. */
  readonly windowMs?: number;
  readonly maxEntries?: number;
}

const MAX_NOTE_BYTES = 1024;
const MAX_REASON = 128;

function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let out = text;
  while (Buffer.byteLength(`${out}…`, 'utf8') > maxBytes) out = out.slice(0, -1);
  return `${out}…`;
}

function referenceTo(obj: KubernetesObject): ObjectReference {
  const m = obj.metadata ?? {};
  if (!m.name) throw new Error('cannot record an Event about an object without a name');
  return {
    name: m.name,
    ...(obj.apiVersion ? { apiVersion: obj.apiVersion } : {}),
    ...(obj.kind ? { kind: obj.kind } : {}),
    ...(m.namespace ? { namespace: m.namespace } : {}),
    ...(m.uid ? { uid: m.uid } : {}),
    ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
  };
}

export class KubeEventRecorder implements EventRecorder {
  private readonly opts: EventRecorderOptions;
  private readonly clock: Clock;
  private readonly redactor: Redactor;
  private readonly log: Logger;
  private readonly correlator: EventCorrelator<SeriesEntry>;
  private readonly inFlight = new Set<Promise<void>>();
  private sequence = 0;

  constructor(options: EventRecorderOptions) {
    this.opts = options;
    this.clock = options.clock ?? systemClock;
    this.redactor = options.redactor ?? defaultRedactor;
    this.log = options.logger.child('events');
    this.correlator = new EventCorrelator(options.windowMs ?? 10 * 60_000, options.maxEntries ?? 4096);
  }

  record(regarding: KubernetesObject, type: EventType, reason: string, message: string, action = 'Reconcile'): void {
    let ref: ObjectReference;
    try {
      ref = referenceTo(regarding);
    } catch (err) {
      this.log.error('cannot record event', { reason, err });
      return;
    }
    const note = truncateUtf8(this.redactor.redactString(message), MAX_NOTE_BYTES);
    const cleanReason = reason.slice(0, MAX_REASON);
    const cleanAction = action.slice(0, MAX_REASON);
    const now = this.clock.now();
    const identity = ref.uid ?? `${ref.apiVersion}/${ref.kind}/${ref.namespace}/${ref.name}`;
    const key = JSON.stringify([identity, type, cleanReason, cleanAction, note]);
    const namespace = ref.namespace ?? 'default';
    const { entry, correlation } = this.correlator.observe(key, now, () => ({
      namespace, name: this.eventName(ref.name, now), count: 1, written: 0, lastSeen: now, writing: undefined,
    }));
    if (correlation.kind === 'new') {
      const event: NewEvent = {
        name: entry.name, namespace, regarding: ref, type, reason: cleanReason, action: cleanAction, note, eventTime: now,
        reportingController: this.opts.reportingController ?? 'lockstep.dev/operator',
        reportingInstance: this.opts.reportingInstance,
      };
      this.track(this.writeSeries(key, entry, event));
    } else if (!entry.writing) {
      this.track(this.writeSeries(key, entry, undefined));
    }
    // Otherwise the write in flight picks the new count up when it finishes.
  }

  /** Resolves when every Event write started so far has finished (for shutdown and tests). */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  /** Writes the Event (if new) and then the series count until the API server has the latest. */
  private writeSeries(key: string, entry: SeriesEntry, create: NewEvent | undefined): Promise<void> {
    const run = async (): Promise<void> => {
      try {
        if (create) {
          await this.opts.sink.create(create);
          entry.written = 1;
        }
        while (entry.written > 0 && entry.count > entry.written) {
          const count = entry.count;
          try {
            await this.opts.sink.updateSeries(entry.namespace, entry.name, { count, lastObservedTime: entry.lastSeen });
            entry.written = count;
          } catch (err) {
            if (!isNotFound(err)) throw err;
            // The Event expired (event TTL) mid-series: the next occurrence starts a new one.
            this.correlator.forget(key);
            return;
          }
        }
      } catch (err) {
        this.correlator.forget(key);
        this.log.warn('recording event failed', { object: `${entry.namespace}/${entry.name}`, ...describeApiError(err) });
      } finally {
        entry.writing = undefined;
      }
    };
    entry.writing = run();
    return entry.writing;
  }

  private eventName(objectName: string, now: number): string {
    // Like client-go: <object>.<hex nanoseconds>; the sequence keeps names unique within a ms.
    const suffix = (BigInt(now) * 1_000_000n + BigInt(this.sequence++ % 1_000_000)).toString(16);
    return `${objectName.slice(0, 253 - suffix.length - 1)}.${suffix}`;
  }
}
