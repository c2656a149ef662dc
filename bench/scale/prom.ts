// Reads the operator's /metrics text: sums of a metric over matching labels, and percentiles of a
// histogram between two scrapes (bucket counts subtracted), as histogram_quantile would give them.

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1] ?? ''] = (l[2] ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return out;
}

const matches = (s: Sample, name: string, where: Record<string, string>): boolean =>
  s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v);

/** Sum of every sample of `name` whose labels include `where`. */
export function sum(samples: readonly Sample[], name: string, where: Record<string, string> = {}): number {
  return samples.filter((s) => matches(s, name, where)).reduce((a, s) => a + s.value, 0);
}

/** Values of `label` that occur on samples of `name`. */
export function labelValues(samples: readonly Sample[], name: string, label: string): string[] {
  return [...new Set(samples.filter((s) => s.name === name).map((s) => s.labels[label]).filter((v): v is string => v !== undefined))].sort();
}

export interface Buckets {
  /** Upper bounds in seconds, ascending, ending with Infinity. */
  readonly le: number[];
  /** Cumulative counts per bound. */
  readonly counts: number[];
}

/** Cumulative buckets of histogram `name` (summed over the other labels matching `where`). */
export function buckets(samples: readonly Sample[], name: string, where: Record<string, string> = {}): Buckets {
  const byLe = new Map<number, number>();
  for (const s of samples) {
    if (!matches(s, `${name}_bucket`, where)) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  const le = [...byLe.keys()].sort((a, b) => a - b);
  return { le, counts: le.map((b) => byLe.get(b) ?? 0) };
}

export function bucketDelta(after: Buckets, before: Buckets): Buckets {
  const prior = new Map(before.le.map((b, i) => [b, before.counts[i] ?? 0]));
  return { le: after.le, counts: after.counts.map((c, i) => c - (prior.get(after.le[i] ?? NaN) ?? 0)) };
}

/**
 * The q-quantile (0..1) in seconds, interpolated linearly inside its bucket as Prometheus'
 * histogram_quantile does; NaN without observations. Above the last finite bound: that bound.
 */
export function quantile(b: Buckets, q: number): number {
  const total = b.counts.at(-1) ?? 0;
  if (total <= 0) return NaN;
  const rank = q * total;
  for (let i = 0; i < b.le.length; i++) {
    const count = b.counts[i] ?? 0;
    if (count < rank) continue;
    const upper = b.le[i] ?? Infinity;
    const lower = i === 0 ? 0 : (b.le[i - 1] ?? 0);
    if (upper === Infinity) return lower;
    const below = i === 0 ? 0 : (b.counts[i - 1] ?? 0);
    const inBucket = count - below;
    return inBucket <= 0 ? upper : lower + (upper - lower) * ((rank - below) / inBucket);
  }
  return b.le.at(-2) ?? NaN;
}

/** The bound of the highest bucket that received an observation: an upper limit of the maximum. */
export function maxBound(b: Buckets): number {
  for (let i = 0; i < b.le.length; i++) if ((b.counts[i] ?? 0) >= (b.counts.at(-1) ?? 0) && (b.counts.at(-1) ?? 0) > 0) return b.le[i] ?? NaN;
  return NaN;
}
