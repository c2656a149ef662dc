import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { systemClock, type Clock } from './clock.js';

// One registry per operator instance (never prom-client's global default), so tests get
// isolated registries and nothing a library registers globally leaks into /metrics.

export interface KeyAgeLabels {
  readonly namespace: string;
  readonly keypolicy: string;
  readonly kid: string;
}

export interface OperatorMetrics {
  readonly registry: Registry;
  readonly reconcileDuration: Histogram<'controller' | 'result'>;
  readonly workqueueDepth: Gauge<'controller'>;
  readonly reconcileErrors: Counter<'controller' | 'reason'>;
  /** Certificate notAfter, in Unix seconds, per EncryptedService. */
  readonly certificateExpiry: Gauge<'namespace' | 'service'>;
  /** Generated objects currently owned, by kind. */
  readonly children: Gauge<'kind'>;
  /** outcome: `succeeded` | `failed` | `rolled_back` (by convention). */
  readonly rotations: Counter<'kind' | 'outcome'>;
  readonly rotationDuration: Histogram<'kind'>;
  readonly keyAge: Gauge<'namespace' | 'keypolicy' | 'kid'>;
  /** 1 while this replica holds the leader Lease. */
  readonly leader: Gauge;
  /** Reports `lockstep_key_age_seconds` for this key, computed at scrape time from its creation. */
  trackKeyAge(labels: KeyAgeLabels, createdAtMs: number): void;
  /** Stops reporting a key (retired or deleted). */
  untrackKeyAge(labels: KeyAgeLabels): void;
}

export interface MetricsOptions {
  /** Node process metrics (CPU, memory, event loop, GC). Default true. */
  readonly defaultMetrics?: boolean;
  readonly clock?: Clock;
}

export function createMetrics(options: MetricsOptions = {}): OperatorMetrics {
  const registry = new Registry();
  const clock = options.clock ?? systemClock;
  const registers = [registry];
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  const keyCreated = new Map<string, { labels: KeyAgeLabels; createdAtMs: number }>();
  const keyId = (l: KeyAgeLabels): string => JSON.stringify([l.namespace, l.keypolicy, l.kid]);

  const keyAge = new Gauge({
    name: 'lockstep_key_age_seconds',
    help: 'Age of each key-encryption key in use, by KeyPolicy and kid.',
    labelNames: ['namespace', 'keypolicy', 'kid'] as const,
    registers,
    collect() {
      this.reset();
      const now = clock.now();
      for (const { labels, createdAtMs } of keyCreated.values()) {
        this.set({ ...labels }, Math.max(0, (now - createdAtMs) / 1000));
      }
    },
  });

  return {
    registry,
    reconcileDuration: new Histogram({
      name: 'lockstep_reconcile_duration_seconds',
      help: 'Time taken by one reconcile, by controller and result (success, requeue, error, terminal).',
      labelNames: ['controller', 'result'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    workqueueDepth: new Gauge({
      name: 'lockstep_workqueue_depth',
      help: 'Keys waiting to be reconciled, by controller.',
      labelNames: ['controller'] as const,
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'lockstep_reconcile_errors_total',
      help: 'Failed reconciles, by controller and reason.',
      labelNames: ['controller', 'reason'] as const,
      registers,
    }),
    certificateExpiry: new Gauge({
      name: 'lockstep_certificate_expiry_timestamp_seconds',
      help: 'notAfter of the certificate currently served by each EncryptedService (Unix seconds).',
      labelNames: ['namespace', 'service'] as const,
      registers,
    }),
    children: new Gauge({
      name: 'lockstep_children',
      help: 'Objects generated and owned by the operator, by kind.',
      labelNames: ['kind'] as const,
      registers,
    }),
    rotations: new Counter({
      name: 'lockstep_rotations_total',
      help: 'Finished rotations, by what was rotated and outcome.',
      labelNames: ['kind', 'outcome'] as const,
      registers,
    }),
    rotationDuration: new Histogram({
      name: 'lockstep_rotation_duration_seconds',
      help: 'Wall-clock time of a rotation from start to completion, by what was rotated.',
      labelNames: ['kind'] as const,
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 14_400],
      registers,
    }),
    keyAge,
    leader: new Gauge({
      name: 'lockstep_leader',
      help: '1 if this replica holds the leader election Lease, else 0.',
      registers,
    }),
    trackKeyAge(labels, createdAtMs) {
      keyCreated.set(keyId(labels), { labels: { ...labels }, createdAtMs });
    },
    untrackKeyAge(labels) {
      keyCreated.delete(keyId(labels));
    },
  };
}
