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

/**
 * The instant a wall-clock time occurs in `timeZone`. A repeated time (DST end) maps to its first
 * occurrence; a time skipped by a DST jump maps to an instant whose wall clock differs, which
 * callers detect by reading the wall clock back.
 */
export function instantOf(year: number, month: number, day: number, hour: number, minute: number, timeZone: string): number {
  const local = Date.UTC(year, month - 1, day, hour, minute);
  const first = local - offsetAt(local, timeZone);
  const second = local - offsetAt(first, timeZone);
  if (second === first) return first;
  // Offsets disagree near a transition: prefer the earlier instant that reads back as the asked time.
  const candidates = [Math.min(first, second), Math.max(first, second)];
  for (const c of candidates) {
    const w = wallClock(c, timeZone);
    if (w.hour === hour && w.minute === minute && w.day === day) return c;
  }
  return Math.max(first, second);
}

/** The local calendar date `days` after the given one (handles month and year ends). */
export function addDays(year: number, month: number, day: number, days: number): { year: number; month: number; day: number; weekday: number } {
  const d = new Date(Date.UTC(year, month - 1, day + days));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), weekday: d.getUTCDay() };
}
