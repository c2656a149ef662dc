// Durations in this API are Go duration strings restricted to the units h, m, s and ms, which is
// what both the CRD pattern and CEL's duration() accept.

/** The CRD's pattern for duration fields. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(h|m|s|ms))+$';

const DURATION_RE = new RegExp(DURATION_PATTERN);
const SEGMENT_RE = /([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)/g;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };

export function isDuration(text: string): boolean {
  return DURATION_RE.test(text);
}

/** Milliseconds in a duration string such as "24h", "90m" or "1h30m". Throws on anything else. */
export function parseDuration(text: string): number {
  if (!isDuration(text)) {
    throw new RangeError(`invalid duration ${JSON.stringify(text)}: expected a Go duration such as 24h, 90m or 1h30m`);
  }
  let total = 0;
  for (const match of text.matchAll(SEGMENT_RE)) {
    const [, amount, unit] = match;
    total += Number(amount) * (UNIT_MS[unit ?? ''] ?? Number.NaN);
  }
  return Math.round(total);
}

/** Shortest duration string for a whole number of milliseconds, e.g. 5_400_000 -> "1h30m". */
export function formatDuration(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0) {
    throw new RangeError(`cannot format ${ms} as a duration: expected a non-negative whole number of milliseconds`);
  }
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1_000], ['ms', 1]] as const) {
    const count = Math.floor(rest / size);
    if (count > 0) {
      out += `${count}${unit}`;
      rest -= count * size;
    }
  }
  return out;
}
