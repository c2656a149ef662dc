import { describe, expect, it } from '@jest/globals';
import type { RotationScheduleStatus } from '../api/v1alpha1/index.js';
import {
  advanceStep, beginRotation, finishRotation, inRotation, resume, stepOutcome, stepPhase, targetsToBegin, updateTarget,
} from './state-machine.js';

const T0 = Date.parse('2026-03-02T12:00:00Z');
const s = (n: number) => T0 + n * 1000;
const steps = [10, 100];
const begin = (status: RotationScheduleStatus = {}) =>
  beginRotation(status, { trigger: 'Manual', namespace: 'ns', names: ['a', 'b', 'c', 'd'], canarySteps: steps, now: T0, rotateNow: 'x' });
const phases = (st: RotationScheduleStatus) => Object.fromEntries((st.targets ?? []).map((t) => [t.name, t.phase]));
const succeed = (st: RotationScheduleStatus, name: string, at: number) =>
  updateTarget(updateTarget(updateTarget(st, name, { phase: 'Rotating', previousRevision: 'OLD' }, at), name, { phase: 'Verifying', newRevision: 'NEW' }, at), name, { phase: 'Succeeded' }, at);

describe('beginRotation', () => {
  it('plans every target Pending, the canary first, and records what triggered it', () => {
    const st = begin({ failure: { reason: 'Old' }, lastRotateNow: 'w', history: [] });
    expect(st).toMatchObject({ phase: 'Rotating', trigger: 'Manual', currentStep: 0, startedAt: '2026-03-02T12:00:00Z', lastRotateNow: 'x' });
    expect(st.rotationId).toBe('manual-20260302t120000z');
    expect(st.failure).toBeUndefined();
    expect(st.targets?.map((t) => [t.name, t.step])).toEqual([['a', 0], ['b', 1], ['c', 1], ['d', 1]]);
    expect(inRotation(st)).toBe(true);
  });
});

describe('targetsToBegin', () => {
  it('limits targets in flight to maxInFlight, within the current step only', () => {
    let st = advanceStep(succeed(begin(), 'a', s(1)), { canarySteps: steps, pauseBetweenSteps: 0, paused: false }, s(2));
    expect(targetsToBegin(st, 2, s(2)).map((t) => t.name)).toEqual(['b', 'c']);
    st = updateTarget(st, 'b', { phase: 'Rotating' }, s(3));
    expect(targetsToBegin(st, 2, s(3)).map((t) => t.name)).toEqual(['c']);
    st = updateTarget(st, 'c', { phase: 'Verifying' }, s(3));
    expect(targetsToBegin(st, 2, s(3))).toEqual([]);
  });

  it('begins nothing during the pause between steps', () => {
    const st = advanceStep(succeed(begin(), 'a', s(1)), { canarySteps: steps, pauseBetweenSteps: 60_000, paused: false }, s(2));
    expect(st.stepStartedAt).toBe('2026-03-02T12:01:02Z');
    expect(targetsToBegin(st, 5, s(30))).toEqual([]);
    expect(targetsToBegin(st, 5, s(62)).map((t) => t.name)).toEqual(['b', 'c', 'd']);
  });

  it('begins nothing once a target failed', () => {
    let st = advanceStep(succeed(begin(), 'a', s(1)), { canarySteps: steps, pauseBetweenSteps: 0, paused: false }, s(2));
    st = updateTarget(st, 'b', { phase: 'Failed' }, s(3));
    expect(targetsToBegin(st, 5, s(3))).toEqual([]);
  });
});

describe('step progress', () => {
  it.each<[string, (st: RotationScheduleStatus) => RotationScheduleStatus, string, string]>([
    ['canary pending', (st) => st, 'Rotating', 'running'],
    ['canary re-issuing', (st) => updateTarget(st, 'a', { phase: 'Rotating' }, s(1)), 'Rotating', 'running'],
    ['canary verifying', (st) => updateTarget(st, 'a', { phase: 'Verifying' }, s(1)), 'Verifying', 'running'],
    ['canary verified, more steps', (st) => succeed(st, 'a', s(1)), 'Verifying', 'next'],
    ['canary failed, nothing in flight', (st) => updateTarget(st, 'a', { phase: 'Failed' }, s(1)), 'Verifying', 'failed'],
  ])('%s', (_name, change, phase, outcome) => {
    const st = change(begin());
    expect(stepPhase(st)).toBe(phase);
    expect(stepOutcome(st)).toBe(outcome);
  });

  it('waits for targets in flight before failing the rotation', () => {
    let st = advanceStep(succeed(begin(), 'a', s(1)), { canarySteps: steps, pauseBetweenSteps: 0, paused: false }, s(2));
    st = updateTarget(updateTarget(st, 'b', { phase: 'Failed' }, s(3)), 'c', { phase: 'Verifying' }, s(3));
    expect(stepOutcome(st)).toBe('running');
    st = updateTarget(st, 'c', { phase: 'Succeeded' }, s(4));
    expect(stepOutcome(st)).toBe('failed');
    expect(phases(st)).toEqual({ a: 'Succeeded', b: 'Failed', c: 'Succeeded', d: 'Pending' });
  });

  it('completes after the last step', () => {
    let st = advanceStep(succeed(begin(), 'a', s(1)), { canarySteps: steps, pauseBetweenSteps: 0, paused: false }, s(2));
    for (const n of ['b', 'c', 'd']) st = succeed(st, n, s(3));
    expect(stepOutcome(st)).toBe('complete');
  });

  it('passes over empty steps', () => {
    const st = beginRotation({}, { trigger: 'Schedule', namespace: 'ns', names: ['a', 'b'], canarySteps: [10, 50, 100], now: T0 });
    const next = advanceStep(succeed(st, 'a', s(1)), { canarySteps: [10, 50, 100], pauseBetweenSteps: 0, paused: false }, s(2));
    expect(next.currentStep).toBe(2);
  });
});

describe('pause and resume', () => {
  it('a paused rotation stops after the verified step and continues from the next one', () => {
    const paused = advanceStep(succeed(begin(), 'a', s(1)), { canarySteps: steps, pauseBetweenSteps: 60_000, paused: true }, s(2));
    expect(paused).toMatchObject({ phase: 'Paused', currentStep: 1 });
    expect(inRotation(paused)).toBe(true);
    expect(targetsToBegin(paused, 5, s(100))).toEqual([]);
    const resumed = resume(paused, s(200));
    expect(resumed).toMatchObject({ phase: 'Rotating', currentStep: 1, stepStartedAt: '2026-03-02T12:03:20Z' });
    expect(targetsToBegin(resumed, 5, s(200)).map((t) => t.name)).toEqual(['b', 'c', 'd']);
  });
});

describe('finishRotation', () => {
  it('records the outcome and keeps a bounded, newest-first history', () => {
    let st: RotationScheduleStatus = { history: Array.from({ length: 20 }, (_, i) => ({ rotationId: `old-${i}`, outcome: 'Completed' as const })) };
    st = finishRotation(begin(st), { outcome: 'RolledBack', now: s(9), message: 'b failed', rotated: ['certificates'] });
    expect(st.phase).toBe('RolledBack');
    expect(st.lastRotation).toBe('2026-03-02T12:00:09Z');
    expect(st.history).toHaveLength(20);
    expect(st.history?.[0]).toMatchObject({ rotationId: 'manual-20260302t120000z', outcome: 'RolledBack', trigger: 'Manual', targets: 4, startedAt: '2026-03-02T12:00:00Z' });
    expect(st.history?.[19]?.rotationId).toBe('old-18');
    expect(inRotation(st)).toBe(false);
  });

  it('finishing twice (a retried status write) keeps one history entry', () => {
    const once = finishRotation(begin(), { outcome: 'Completed', now: s(9), message: 'ok', rotated: ['certificates'] });
    const twice = finishRotation({ ...once, rotationId: once.rotationId }, { outcome: 'Completed', now: s(10), message: 'ok', rotated: ['certificates'] });
    expect(twice.history).toHaveLength(1);
  });
});
