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

  // Lord Howe shifts by 30 minutes: +10:30 in winter, +11:00 in summer. Forward on the first
  // Sunday of October at 02:00 (-> 02:30), back on the first Sunday of April at 02:00 (-> 01:30).
  // Semantics (the same for any shift): a skipped local time does not fire that day, a repeated
  // one fires once, at its first occurrence.
  it.each([
    ['2026-10-03: the day before the jump, 02:15 at +10:30', '15 2 * * *', '2026-10-02T00:00:00Z', '2026-10-02T15:45:00.000Z'],
    ['2026-10-04: 02:15 is skipped (02:00 -> 02:30): fires the next day at +11', '15 2 * * *', '2026-10-03T00:00:00Z', '2026-10-04T15:15:00.000Z'],
    ['2026-10-04: 02:00 itself is skipped', '0 2 * * *', '2026-10-03T00:00:00Z', '2026-10-04T15:00:00.000Z'],
    ['2026-10-04: 02:30 is the first time after the jump', '30 2 * * *', '2026-10-03T00:00:00Z', '2026-10-03T15:30:00.000Z'],
    ['2026-10-04: every 15 minutes across the jump: 01:45, then 02:30', '*/15 * * * *', '2026-10-03T15:00:00Z', '2026-10-03T15:15:00.000Z'],
    ['2026-10-04: every 15 minutes, after 01:45 the next is 02:30', '*/15 * * * *', '2026-10-03T15:15:00Z', '2026-10-03T15:30:00.000Z'],
    ['2027-04-04: 02:15 after the fall back exists once, at +10:30', '15 2 * * *', '2027-04-03T00:00:00Z', '2027-04-03T15:45:00.000Z'],
    ['2027-04-04: repeated 01:45 fires at its first occurrence (+11)', '45 1 * * *', '2027-04-03T00:00:00Z', '2027-04-03T14:45:00.000Z'],
    ['2027-04-04: repeated 01:45 does not fire again at +10:30', '45 1 * * *', '2027-04-03T14:45:00Z', '2027-04-04T15:15:00.000Z'],
    ['2027-04-04: every 15 minutes skips the repeated half hour', '*/15 * * * *', '2027-04-03T14:50:00Z', '2027-04-03T15:30:00.000Z'],
    ['2026-04-05: repeated 01:30 fires at its first occurrence', '30 1 * * *', '2026-04-04T00:00:00Z', '2026-04-04T14:30:00.000Z'],
    ['2026-04-05: repeated 01:30 does not fire again', '30 1 * * *', '2026-04-04T14:30:00Z', '2026-04-05T15:00:00.000Z'],
    ['2027-10-03: 02:15 is skipped again the next spring', '15 2 * * *', '2027-10-02T00:00:00Z', '2027-10-03T15:15:00.000Z'],
  ])('Australia/Lord_Howe %s', (_name, expr, after, want) => {
    expect(iso(nextCronTime(parseCron(expr), at(after), 'Australia/Lord_Howe'))).toBe(want);
  });

  // The same rules on 60-minute zones, and on offsets that are not whole hours.
  it.each([
    ['Berlin fall back: repeated 02:30 fires at its first occurrence (CEST)', '30 2 * * *', 'Europe/Berlin', '2026-10-24T12:00:00Z', '2026-10-25T00:30:00.000Z'],
    ['Berlin fall back: repeated 02:30 does not fire again (CET)', '30 2 * * *', 'Europe/Berlin', '2026-10-25T00:30:00Z', '2026-10-26T01:30:00.000Z'],
    ['New York spring forward: skipped 02:30 fires the next day', '30 2 * * *', 'America/New_York', '2026-03-07T12:00:00Z', '2026-03-09T06:30:00.000Z'],
    ['New York fall back: repeated 01:30 fires once (EDT)', '30 1 * * *', 'America/New_York', '2026-11-01T04:00:00Z', '2026-11-01T05:30:00.000Z'],
    ['New York fall back: not again at EST', '30 1 * * *', 'America/New_York', '2026-11-01T05:30:00Z', '2026-11-02T06:30:00.000Z'],
    ['Kathmandu +05:45', '0 9 * * *', 'Asia/Kathmandu', '2026-05-01T00:00:00Z', '2026-05-01T03:15:00.000Z'],
    ['Eucla +08:45', '30 6 * * *', 'Australia/Eucla', '2026-05-01T00:00:00Z', '2026-05-01T21:45:00.000Z'],
    // Chatham: +12:45 -> +13:45 on the last Sunday of September at 02:45.
    ['Chatham spring forward: skipped 03:00 fires the next day at +13:45', '0 3 * * *', 'Pacific/Chatham', '2026-09-26T00:00:00Z', '2026-09-27T13:15:00.000Z'],
    ['Chatham: 03:45, the first time after the jump', '45 3 * * *', 'Pacific/Chatham', '2026-09-26T00:00:00Z', '2026-09-26T14:00:00.000Z'],
    // Liberia kept its mean time, -00:44:30, until 1972: offsets need not be whole minutes.
    ['Monrovia 1971 (-00:44:30)', '0 12 * * *', 'Africa/Monrovia', '1971-06-01T00:00:00Z', '1971-06-01T12:44:30.000Z'],
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
