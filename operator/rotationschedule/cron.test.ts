import { describe, expect, it } from '@jest/globals';
import { CronError, nextCronTime, parseCron } from './cron.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe('parseCron', () => {
  it.each([
    ['*/15 * * * *', { minutes: [0, 15, 30, 45] }],
    ['0,30 9-17/4 * * *', { minutes: [0, 30], hours: [9, 13, 17] }],
    ['5/20 0 * * *', { minutes: [5, 25, 45], hours: [0] }],
  ])('%s', (expr, want) => {
    expect(parseCron(expr)).toMatchObject(want);
  });

  it('reads month and day names and 7 as Sunday', () => {
    const c = parseCron('0 0 * jan-mar SUN,7,Wed');
    expect([...c.months].sort()).toEqual([1, 2, 3]);
    expect([...c.daysOfWeek].sort()).toEqual([0, 3]);
  });

  it.each([
    ['* * * *', /5 fields/],
    ['60 * * * *', /minute: 60 is outside 0-59/],
    ['* 24 * * *', /hour/],
    ['* * 0 * *', /day-of-month/],
    ['* * * 13 *', /month/],
    ['* * * * MON#2', /not supported/],
    ['*/0 * * * *', /step/],
    ['5-1 * * * *', /backwards/],
    ['a * * * *', /not a number/],
  ])('rejects %s', (expr, message) => {
    expect(() => parseCron(expr)).toThrow(CronError);
    expect(() => parseCron(expr)).toThrow(message);
  });
});

describe('nextCronTime', () => {
  it.each([
    ['every minute', '* * * * *', 'UTC', '2026-03-01T10:00:30Z', '2026-03-01T10:01:00.000Z'],
    ['strictly after', '0 2 * * *', 'UTC', '2026-03-01T02:00:00Z', '2026-03-02T02:00:00.000Z'],
    ['daily at 02:00 Berlin (winter, UTC+1)', '0 2 * * *', 'Europe/Berlin', '2026-01-10T12:00:00Z', '2026-01-11T01:00:00.000Z'],
    ['daily at 02:00 Berlin (summer, UTC+2)', '0 2 * * *', 'Europe/Berlin', '2026-07-10T12:00:00Z', '2026-07-11T00:00:00.000Z'],
    ['month end to next month', '30 1 1 * *', 'UTC', '2026-01-31T05:00:00Z', '2026-02-01T01:30:00.000Z'],
    ['leap day', '0 0 29 2 *', 'UTC', '2026-03-01T00:00:00Z', '2028-02-29T00:00:00.000Z'],
    ['dom OR dow when both restricted', '0 12 13 * FRI', 'UTC', '2026-03-01T00:00:00Z', '2026-03-06T12:00:00.000Z'],
    ['dow only', '0 12 * * MON', 'UTC', '2026-03-01T00:00:00Z', '2026-03-02T12:00:00.000Z'],
    ['New York evening crosses UTC midnight', '30 22 * * *', 'America/New_York', '2026-06-01T00:00:00Z', '2026-06-01T02:30:00.000Z'],
    // 02:30 does not exist in Berlin on 2026-03-29 (clocks jump 02:00 -> 03:00): next is the day after.
    ['skips a time inside a DST gap', '30 2 * * *', 'Europe/Berlin', '2026-03-28T12:00:00Z', '2026-03-30T00:30:00.000Z'],
    ['Kolkata half-hour offset', '0 9 * * *', 'Asia/Kolkata', '2026-05-01T00:00:00Z', '2026-05-01T03:30:00.000Z'],
  ])('%s', (_name, expr, tz, after, want) => {
    expect(iso(nextCronTime(parseCron(expr), at(after), tz))).toBe(want);
  });

  it('never fires for 31 February', () => {
    expect(nextCronTime(parseCron('0 0 31 2 *'), at('2026-01-01T00:00:00Z'), 'UTC')).toBeUndefined();
  });

  it('rejects an unknown time zone', () => {
    expect(() => nextCronTime(parseCron('* * * * *'), 0, 'Mars/Olympus')).toThrow(/unknown time zone/);
  });
});
