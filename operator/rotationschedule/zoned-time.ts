// Wall-clock time in an IANA time zone, with Intl only (no tz database dependency). Cron
// expressions and maintenance windows are written in local time; the state machine keeps UTC
// instants, so these two conversions are the only place time zones are handled.

export interface WallClock {
  year: number;
  /** 1-12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  /** 0 = Sunday */
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // Throws RangeError for an unknown zone: the caller reports it on status.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws a RangeError naming the zone when Intl does not know it. */
export function checkTimeZone(timeZone: string): void {
  try {
    formatter(timeZone);
  } catch {
    throw new RangeError(`unknown time zone ${JSON.stringify(timeZone)}: use an IANA name such as UTC or Europe/Berlin`);
  }
}

function parts(instant: number, timeZone: string) {
  const out: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(instant))) {
    if (p.type !== 'literal') out[p.type] = Number(p.value);
  }
  return { year: out.year ?? 0, month: out.month ?? 1, day: out.day ?? 1, hour: out.hour ?? 0, minute: out.minute ?? 0, second: out.second ?? 0 };
}

/** The wall clock in `timeZone` at `instant` (ms since epoch). */
export function wallClock(instant: number, timeZone: string): WallClock {
  const p = parts(instant, timeZone);
  return { year: p.year, month: p.month, day: p.day, hour: p.hour, minute: p.minute, weekday: new Date(Date.UTC(p.year, p.month - 1, p.day)).getUTCDay() };
}

/** Offset of `timeZone` from UTC at `instant`, in ms (positive east of Greenwich). */
function offsetAt(instant: number, timeZone: string): number {
  const p = parts(instant, timeZone);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(instant / 1000) * 1000;
}

const HOUR = 3_600_000;
/**
 * Where the offsets in force around a wall-clock time are sampled. Any instant showing that wall
 * time lies within 14 h of it read as UTC (offsets span -12:00..+14:00), so an offset sampled a day
 * before and a day after covers both sides of a transition, whatever its size (30-minute Lord
 * Howe, 45-minute Eucla or Kathmandu, second-precision historical LMT offsets); the inner samples
 * catch two transitions close together.
 */
const OFFSET_PROBES = [-24 * HOUR, -12 * HOUR, 0, 12 * HOUR, 24 * HOUR];

/**
 * Every instant at which the wall clock in `timeZone` reads the given time exactly, earliest
 * first: one normally, none when a forward jump skips it (spring forward), two when a backward
 * jump repeats it (fall back). Offsets are taken from Intl, not assumed to be whole hours.
 */
export function instantsOf(year: number, month: number, day: number, hour: number, minute: number, timeZone: string): number[] {
  const local = Date.UTC(year, month - 1, day, hour, minute);
  const offsets = new Set(OFFSET_PROBES.map((d) => offsetAt(local + d, timeZone)));
  const out = new Set<number>();
  for (const offset of offsets) {
    const instant = local - offset;
    if (offsetAt(instant, timeZone) === offset) out.add(instant);
  }
  return [...out].sort((a, b) => a - b);
}

/**
 * The instant a wall-clock time occurs in `timeZone`, resolving the two DST cases the way RFC 5545
 * and Temporal's "compatible" disambiguation do: a repeated time maps to its first occurrence; a
 * time skipped by a forward jump is read with the offset before the jump, i.e. moved later by the
 * jump's length (02:15 in a 02:00 -> 02:30 gap becomes 02:45). Maintenance windows use this: a
 * window that would open inside a gap opens as long after the jump as it was meant to after 02:00.
 */
export function instantOf(year: number, month: number, day: number, hour: number, minute: number, timeZone: string): number {
  const exact = instantsOf(year, month, day, hour, minute, timeZone);
  if (exact.length > 0) return exact[0]!;
  const local = Date.UTC(year, month - 1, day, hour, minute);
  // In a gap the offset before the jump is the smaller one (a forward jump raises the offset).
  const before = Math.min(...OFFSET_PROBES.map((d) => offsetAt(local + d, timeZone)));
  return local - before;
}

/** The local calendar date `days` after the given one (handles month and year ends). */
export function addDays(year: number, month: number, day: number, days: number): { year: number; month: number; day: number; weekday: number } {
  const d = new Date(Date.UTC(year, month - 1, day + days));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), weekday: d.getUTCDay() };
}
