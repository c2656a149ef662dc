import { describe, expect, it } from '@jest/globals';
import { withRotationScheduleDefaults, type RotationScheduleSpec, type RotationScheduleStatus } from '../api/v1alpha1/index.js';
import { evaluateTrigger, scheduleDue, type TriggerInput } from './trigger.js';

const at = (iso: string) => Date.parse(iso);
const spec = (extra: Partial<RotationScheduleSpec> = {}) =>
  withRotationScheduleDefaults({ targets: { selector: {} }, rotate: ['certificates'], ...extra });
const input = (over: Partial<TriggerInput> = {}): TriggerInput => ({
  spec: spec(),
  annotations: {},
  status: {},
  generation: 1,
  createdAt: at('2026-03-01T00:00:00Z'),
  now: at('2026-03-02T12:00:00Z'),
  expiryMargin: 3_600_000,
  ...over,
});

describe('scheduleDue', () => {
  it('takes the earlier of cron and interval', () => {
    const s = spec({ schedule: { cron: '0 2 * * *', interval: '1h' } });
    expect(new Date(scheduleDue(s, at('2026-03-01T00:00:00Z'))!).toISOString()).toBe('2026-03-01T01:00:00.000Z');
    const late = spec({ schedule: { cron: '0 2 * * *', interval: '48h' } });
    expect(new Date(scheduleDue(late, at('2026-03-01T00:00:00Z'))!).toISOString()).toBe('2026-03-01T02:00:00.000Z');
  });
});

describe('evaluateTrigger', () => {
  const nightly = { cron: '0 2 * * *', maintenanceWindows: [{ start: '22:00', duration: '2h' }] };
  const cases: [string, Partial<TriggerInput>, Record<string, unknown>][] = [
    ['no schedule: on demand only', {}, { start: false, paused: false }],
    ['rotate-now annotation starts a manual rotation', { annotations: { 'lockstep.dev/rotate-now': 'v1' } }, { start: true, trigger: 'Manual', rotateNow: 'v1' }],
    ['the same rotate-now value only once', { annotations: { 'lockstep.dev/rotate-now': 'v1' }, status: { lastRotateNow: 'v1' } }, { start: false }],
    ['paused blocks rotate-now', { annotations: { 'lockstep.dev/rotate-now': 'v2', 'lockstep.dev/paused': 'true' } }, { start: false, paused: true }],
    ['spec.paused blocks the schedule', { spec: spec({ paused: true, schedule: { interval: '1h' } }) }, { start: false, paused: true }],
    ['emergency starts even when paused by annotation', { spec: spec({ emergency: true, strategy: { autoRollback: false } }), annotations: { 'lockstep.dev/paused': 'true' } }, { start: true, trigger: 'Emergency' }],
    ['emergency runs once per generation', { spec: spec({ emergency: true, strategy: { autoRollback: false } }), status: { emergencyGeneration: 1 } }, { start: false }],
    ['emergency again after a spec change', { spec: spec({ emergency: true, strategy: { autoRollback: false } }), status: { emergencyGeneration: 1 }, generation: 2 }, { start: true, trigger: 'Emergency' }],
    ['an emergency also serves a pending rotate-now (one rotation, not two)', { spec: spec({ emergency: true, strategy: { autoRollback: false } }), annotations: { 'lockstep.dev/rotate-now': 'now' } }, { start: true, trigger: 'Emergency', rotateNow: 'now' }],
    ['interval due', { spec: spec({ schedule: { interval: '24h' } }) }, { start: true, trigger: 'Schedule' }],
    ['interval counts from the last rotation', { spec: spec({ schedule: { interval: '24h' } }), status: { lastRotation: '2026-03-02T06:00:00Z' } }, { start: false, nextRotation: at('2026-03-03T06:00:00Z'), wakeAt: at('2026-03-03T06:00:00Z') }],
    ['due but outside the window: waits for it', { spec: spec({ schedule: nightly }) }, { start: false, nextRotation: at('2026-03-02T22:00:00Z') }],
    ['due and inside the window', { spec: spec({ schedule: nightly }), now: at('2026-03-02T23:00:00Z') }, { start: true, trigger: 'Schedule' }],
    ['due, outside the window, certificate expires first: rotates now', { spec: spec({ schedule: nightly }), earliestExpiry: at('2026-03-02T20:00:00Z') }, { start: true, trigger: 'Schedule' }],
    ['expiry guard counts the margin', { spec: spec({ schedule: nightly }), earliestExpiry: at('2026-03-02T22:30:00Z') }, { start: true }],
    ['expiry after the window opens: waits, wakes for the guard', { spec: spec({ schedule: nightly }), earliestExpiry: at('2026-03-03T12:00:00Z') }, { start: false, wakeAt: at('2026-03-02T22:00:00Z') }],
    ['manual ignores the window', { spec: spec({ schedule: nightly }), annotations: { 'lockstep.dev/rotate-now': 'x' } }, { start: true, trigger: 'Manual' }],
    ['not yet due: next is the window after the cron time', { spec: spec({ schedule: nightly }), status: { lastRotation: '2026-03-02T11:00:00Z' } }, { start: false, nextRotation: at('2026-03-03T22:00:00Z'), wakeAt: at('2026-03-03T02:00:00Z') }],
  ];
  it.each(cases)('%s', (_name, over, want) => {
    expect(evaluateTrigger(input(over))).toMatchObject(want);
  });

  it('an emergency with the rotate-now value already served carries none', () => {
    const decision = evaluateTrigger(input({ spec: spec({ emergency: true, strategy: { autoRollback: false } }), annotations: { 'lockstep.dev/rotate-now': 'now' }, status: { lastRotateNow: 'now' } }));
    expect(decision).toMatchObject({ start: true, trigger: 'Emergency' });
    expect(decision).not.toHaveProperty('rotateNow');
  });

  it('never starts twice for one rotate-now value across restarts (the value is in status)', () => {
    const status: RotationScheduleStatus = { lastRotateNow: '2026-03-02T11:59:00Z' };
    expect(evaluateTrigger(input({ status, annotations: { 'lockstep.dev/rotate-now': '2026-03-02T11:59:00Z' } })).start).toBe(false);
  });
});
