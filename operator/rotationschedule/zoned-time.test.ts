import { describe, expect, it } from '@jest/globals';
import { instantOf, instantsOf } from './zoned-time.js';

const iso = (ms: number) => new Date(ms).toISOString();

describe('instantsOf', () => {
  it.each([
    ['Lord Howe gap (02:00 -> 02:30)', 'Australia/Lord_Howe', [2026, 10, 4, 2, 15], []],
    ['Lord Howe first time after the gap', 'Australia/Lord_Howe', [2026, 10, 4, 2, 30], ['2026-10-03T15:30:00.000Z']],
    ['Lord Howe overlap (02:00 -> 01:30): both occurrences, 30 minutes apart', 'Australia/Lord_Howe', [2027, 4, 4, 1, 45], ['2027-04-03T14:45:00.000Z', '2027-04-03T15:15:00.000Z']],
    ['Berlin gap', 'Europe/Berlin', [2026, 3, 29, 2, 30], []],
    ['Berlin overlap', 'Europe/Berlin', [2026, 10, 25, 2, 30], ['2026-10-25T00:30:00.000Z', '2026-10-25T01:30:00.000Z']],
    ['Chatham gap (02:45 -> 03:45)', 'Pacific/Chatham', [2026, 9, 27, 3, 0], []],
    ['Kathmandu, no DST', 'Asia/Kathmandu', [2026, 1, 1, 0, 0], ['2025-12-31T18:15:00.000Z']],
  ] as const)('%s', (_name, tz, [y, mo, d, h, mi], want) => {
    expect(instantsOf(y, mo, d, h, mi, tz).map(iso)).toEqual(want);
  });
});

describe('instantOf', () => {
  it.each([
    // A gap is crossed with the offset before it: the time moves later by the jump's length.
    ['Lord Howe gap: 02:15 -> 02:45 (+11)', 'Australia/Lord_Howe', [2026, 10, 4, 2, 15], '2026-10-03T15:45:00.000Z'],
    ['Berlin gap: 02:30 -> 03:30 (CEST)', 'Europe/Berlin', [2026, 3, 29, 2, 30], '2026-03-29T01:30:00.000Z'],
    ['Lord Howe overlap: the first occurrence', 'Australia/Lord_Howe', [2027, 4, 4, 1, 45], '2027-04-03T14:45:00.000Z'],
    ['Berlin overlap: the first occurrence', 'Europe/Berlin', [2026, 10, 25, 2, 30], '2026-10-25T00:30:00.000Z'],
  ] as const)('%s', (_name, tz, [y, mo, d, h, mi], want) => {
    expect(iso(instantOf(y, mo, d, h, mi, tz))).toBe(want);
  });
});
