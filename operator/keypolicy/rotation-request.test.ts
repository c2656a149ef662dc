import { describe, expect, it } from '@jest/globals';
import { onDemandRotation } from './rotation-request.js';

const NOW = 'lockstep.dev/rotate-now';
const REQUEST = 'lockstep.dev/rotation-request';
const ROTATED_FOR = 'lockstep.dev/rotated-for';
const HANDLED = 'lockstep.dev/rotation-request-handled';

describe('onDemandRotation', () => {
  it.each([
    ['nothing asked', {}, {}, undefined],
    ['an empty rotate-now', { [NOW]: '' }, {}, undefined],
    ["a user's new rotate-now", { [NOW]: 'u1' }, {}, 'u1'],
    ["a user's rotate-now already acted on", { [NOW]: 'u1' }, { [ROTATED_FOR]: 'u1' }, undefined],
    ["a schedule's new request", { [REQUEST]: 'rotationschedule-a' }, {}, 'rotationschedule-a'],
    ["a schedule's request already acted on", { [REQUEST]: 'rotationschedule-a' }, { [HANDLED]: 'rotationschedule-a' }, undefined],
    // The collision this split exists for: one source's record never makes the other's value new.
    ["a handled user value stays handled after a schedule's rotation", { [NOW]: 'u1', [REQUEST]: 'rotationschedule-a' }, { [ROTATED_FOR]: 'u1', [HANDLED]: 'rotationschedule-a' }, undefined],
    ["a schedule's request does not satisfy a new user value", { [NOW]: 'u2', [REQUEST]: 'rotationschedule-a' }, { [ROTATED_FOR]: 'u1', [HANDLED]: 'rotationschedule-a' }, 'u2'],
    ["a user's value does not satisfy a new schedule request", { [NOW]: 'u1', [REQUEST]: 'rotationschedule-b' }, { [ROTATED_FOR]: 'u1', [HANDLED]: 'rotationschedule-a' }, 'rotationschedule-b'],
    ['a request an older operator made through rotate-now', { [NOW]: 'rotationschedule-a', [REQUEST]: 'rotationschedule-a' }, { [ROTATED_FOR]: 'rotationschedule-a' }, undefined],
  ])('%s', (_name, policy, secret, pending) => {
    expect(onDemandRotation(policy, secret).pending).toBe(pending);
  });

  it('records both values as handled, so one rotation satisfies both', () => {
    expect(onDemandRotation({ [NOW]: 'u2', [REQUEST]: 'rotationschedule-b' }, {}).handled).toEqual({ [ROTATED_FOR]: 'u2', [HANDLED]: 'rotationschedule-b' });
    expect(onDemandRotation({}, {}).handled).toEqual({});
  });
});
