// Percentiles and their printing; nearest-rank, so every figure is a value that was measured.

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

export interface Spread {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export function spread(values: readonly number[]): Spread {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: values.length === 0 ? NaN : Math.max(...values),
  };
}

/** Milliseconds as `12 ms` below a second, else `1.23 s`. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

export function spreadText(s: Spread, unit: (ms: number) => string = duration): string {
  if (s.n === 0) return 'no samples';
  return `p50 ${unit(s.p50)}, p90 ${unit(s.p90)}, p99 ${unit(s.p99)}, max ${unit(s.max)} (n=${s.n})`;
}

export const mib = (bytes: number): string => (Number.isFinite(bytes) ? `${Math.round(bytes / 1024 / 1024)} MiB` : 'n/a');
