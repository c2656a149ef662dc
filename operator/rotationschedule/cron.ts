// Standard 5-field cron (minute hour day-of-month month day-of-week) with lists, ranges, steps
// and month/day names, evaluated in an IANA time zone. Day-of-month and day-of-week follow the
// Vixie cron rule: when both are restricted, a day matching either one fires.
//
// Daylight-saving transitions, for shifts of any size (60-minute Berlin, 30-minute Lord Howe,
// historical odd offsets): a local time a forward jump skips does not fire that day (it fires
// the next day it exists), and a local time a backward jump repeats fires once, at its first
// occurrence. A rotation is not a job that must run at a given count per day: running it at a
// time the expression does not name, or twice, would be the surprise.
import { addDays, checkTimeZone, instantsOf, wallClock } from './zoned-time.js';

export interface CronSchedule {
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly daysOfMonth: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  readonly daysOfWeek: ReadonlySet<number>;
  readonly domRestricted: boolean;
  readonly dowRestricted: boolean;
}

const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
  /** Value of the first name (1 for months, 0 for days). */
  nameBase?: number;
}

const FIELDS: FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTH_NAMES, nameBase: 1 },
  // 7 is accepted as Sunday and folded to 0 afterwards.
  { name: 'day-of-week', min: 0, max: 7, names: DAY_NAMES, nameBase: 0 },
];

export class CronError extends Error {
  override readonly name = 'CronError';
}

function parseValue(text: string, field: FieldSpec): number {
  const upper = text.toUpperCase();
  const byName = field.names?.indexOf(upper) ?? -1;
  if (byName >= 0) return byName + (field.nameBase ?? 0);
  if (!/^[0-9]+$/.test(text)) throw new CronError(`${field.name}: ${JSON.stringify(text)} is not a number${field.names ? ' or name' : ''}`);
  const n = Number(text);
  if (n < field.min || n > field.max) throw new CronError(`${field.name}: ${n} is outside ${field.min}-${field.max}`);
  return n;
}

function parseField(text: string, field: FieldSpec): { values: Set<number>; restricted: boolean } {
  const values = new Set<number>();
  let restricted = true;
  for (const item of text.split(',')) {
    if (item === '') throw new CronError(`${field.name}: empty list item in ${JSON.stringify(text)}`);
    if (item.includes('#')) throw new CronError(`${field.name}: "#" (nth weekday) is not standard cron and is not supported`);
    const [range = '', stepText, extra] = item.split('/');
    if (extra !== undefined) throw new CronError(`${field.name}: ${JSON.stringify(item)} has more than one "/"`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^[0-9]+$/.test(stepText) || Number(stepText) === 0) throw new CronError(`${field.name}: step ${JSON.stringify(stepText)} must be a positive number`);
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === '*' || range === '?') {
      lo = field.min;
      hi = field.name === 'day-of-week' ? 6 : field.max;
      if (stepText === undefined && item === text) restricted = false;
    } else if (range.includes('-')) {
      const [a = '', b = '', more] = range.split('-');
      if (more !== undefined) throw new CronError(`${field.name}: ${JSON.stringify(range)} is not a range`);
      lo = parseValue(a, field);
      hi = parseValue(b, field);
      if (hi < lo) throw new CronError(`${field.name}: range ${range} runs backwards`);
    } else {
      lo = parseValue(range, field);
      // "5/15" means from 5 to the end in steps of 15.
      hi = stepText !== undefined ? (field.name === 'day-of-week' ? 6 : field.max) : lo;
    }
    for (let v = lo; v <= hi; v += step) values.add(field.name === 'day-of-week' && v === 7 ? 0 : v);
  }
  return { values, restricted };
}

/** Parses a 5-field expression; throws CronError saying which field is wrong. */
export function parseCron(expression: string): CronSchedule {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5) throw new CronError(`want 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`);
  const [minute, hour, dom, month, dow] = fields.map((f, i) => parseField(f, FIELDS[i]!));
  return {
    minutes: [...minute!.values].sort((a, b) => a - b),
    hours: [...hour!.values].sort((a, b) => a - b),
    daysOfMonth: dom!.values,
    months: month!.values,
    daysOfWeek: dow!.values,
    domRestricted: dom!.restricted,
    dowRestricted: dow!.restricted,
  };
}

function dayMatches(c: CronSchedule, day: number, weekday: number): boolean {
  const dom = c.daysOfMonth.has(day);
  const dow = c.daysOfWeek.has(weekday);
  if (c.domRestricted && c.dowRestricted) return dom || dow;
  return dom && dow;
}

/** Local days searched for a match: enough for "29 2 *" style expressions (leap years). */
const SEARCH_DAYS = 366 * 8;

/** The first instant strictly after `after` (ms) at which the schedule fires, or undefined when it never does. */
export function nextCronTime(c: CronSchedule, after: number, timeZone: string): number | undefined {
  checkTimeZone(timeZone);
  const start = wallClock(after, timeZone);
  for (let i = 0; i < SEARCH_DAYS; i++) {
    const d = addDays(start.year, start.month, start.day, i);
    if (!c.months.has(d.month) || !dayMatches(c, d.day, d.weekday)) continue;
    for (const hour of c.hours) {
      for (const minute of c.minutes) {
        // Skipped (none) or repeated (the second is the same local time again): only the first counts.
        const at = instantsOf(d.year, d.month, d.day, hour, minute, timeZone)[0];
        if (at !== undefined && at > after) return at;
      }
    }
  }
  return undefined;
}
