// Figures from two scrapes of the operator's /metrics: what happened between them.
import { bucketDelta, buckets, labelValues, maxBound, quantile, sum, type Sample } from './prom.js';

export interface ControllerFigures {
  readonly controller: string;
  readonly reconciles: number;
  /** Mean reconcile duration, ms. */
  readonly meanMs: number;
  readonly adds: number;
  readonly retries: number;
  readonly requeues: number;
}

export function controllerFigures(before: readonly Sample[], after: readonly Sample[]): ControllerFigures[] {
  const delta = (name: string, where: Record<string, string>): number => sum(after, name, where) - sum(before, name, where);
  return labelValues(after, 'lockstep_reconcile_duration_seconds_count', 'controller').map((controller) => {
    const where = { controller };
    const reconciles = delta('lockstep_reconcile_duration_seconds_count', where);
    const seconds = delta('lockstep_reconcile_duration_seconds_sum', where);
    return {
      controller,
      reconciles,
      meanMs: reconciles > 0 ? (seconds / reconciles) * 1000 : NaN,
      adds: delta('lockstep_workqueue_adds_total', where),
      retries: delta('lockstep_workqueue_retries_total', where),
      requeues: delta('lockstep_workqueue_requeues_total', where),
    };
  }).filter((f) => f.reconciles > 0 || f.adds > 0);
}

export interface EventToWrite {
  readonly n: number;
  /** Milliseconds, interpolated within histogram buckets. */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  /** Upper bound of the bucket holding the slowest sample, ms. */
  readonly maxBound: number;
}

export function eventToWrite(before: readonly Sample[], after: readonly Sample[], where: Record<string, string>): EventToWrite {
  const name = 'lockstep_event_to_write_seconds';
  const d = bucketDelta(buckets(after, name, where), buckets(before, name, where));
  return {
    n: d.counts.at(-1) ?? 0,
    p50: quantile(d, 0.5) * 1000,
    p90: quantile(d, 0.9) * 1000,
    p99: quantile(d, 0.99) * 1000,
    maxBound: maxBound(d) * 1000,
  };
}
