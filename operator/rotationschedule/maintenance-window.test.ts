import { describe, expect, it } from '@jest/globals';
import type { MaintenanceWindow } from '../api/v1alpha1/index.js';
import { currentWindow, nextWindowStart } from './maintenance-window.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

const nightly: MaintenanceWindow = { start: '23:00', duration: '3h' };
const weekend: MaintenanceWindow = { days: ['Sat', 'Sun'], start: '10:00', duration: '2h' };

describe('currentWindow', () => {
  it.each([
    ['inside, same day', [nightly], 'UTC', '2026-03-02T23:30:00Z', '2026-03-03T02:00:00.000Z'],
    ['inside, past midnight', [nightly], 'UTC', '2026-03-03T01:59:00Z', '2026-03-03T02:00:00.000Z'],
    ['end is exclusive', [nightly], 'UTC', '2026-03-03T02:00:00Z', undefined],
    ['before start', [nightly], 'UTC', '2026-03-02T22:59:59Z', undefined],
    ['wrong day', [weekend], 'UTC', '2026-03-02T10:30:00Z', undefined], // a Monday
    ['right day', [weekend], 'UTC', '2026-03-07T10:30:00Z', '2026-03-07T12:00:00.000Z'], // a Saturday
    ['local time zone', [{ start: '02:00', duration: '1h' }], 'Europe/Berlin', '2026-07-01T00:30:00Z', '2026-07-01T01:00:00.000Z'],
  ])('%s', (_name, windows, tz, now, wantEnd) => {
    expect(iso(currentWindow(windows as MaintenanceWindow[], at(now), tz)?.end)).toBe(wantEnd);
  });
});

describe('nextWindowStart', () => {
  it.each([
    ['later today', [nightly], 'UTC', '2026-03-02T12:00:00Z', '2026-03-02T23:00:00.000Z'],
    ['inside one: the next one', [nightly], 'UTC', '2026-03-02T23:30:00Z', '2026-03-03T23:00:00.000Z'],
    ['earliest of several', [nightly, weekend], 'UTC', '2026-03-06T12:00:00Z', '2026-03-06T23:00:00.000Z'],
    ['next weekend', [weekend], 'UTC', '2026-03-02T12:00:00Z', '2026-03-07T10:00:00.000Z'],
    ['none', [], 'UTC', '2026-03-02T12:00:00Z', undefined],
  ])('%s', (_name, windows, tz, now, want) => {
    expect(iso(nextWindowStart(windows as MaintenanceWindow[], at(now), tz))).toBe(want);
  });
});
