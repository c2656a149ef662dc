import { describe, expect, it } from '@jest/globals';
import type { EncryptedService } from '../api/v1alpha1/index.js';
import { cumulativeCounts, planTargets, selectTargets, targetsProblem } from './plan.js';

const es = (name: string, labels: Record<string, string> = {}, deleting = false): EncryptedService => ({
  metadata: { name, namespace: 'ns', labels, ...(deleting ? { deletionTimestamp: new Date() } : {}) },
  spec: { workload: { selector: {}, serviceAccountName: name }, keyPolicyRef: { name: 'p' }, ports: [] },
} as unknown as EncryptedService);

describe('cumulativeCounts', () => {
  it.each([
    [10, [10, 50, 100], [1, 5, 10]],
    [3, [10, 50, 100], [1, 2, 3]],
    [1, [10, 50, 100], [1, 1, 1]],
    [7, [25, 100], [2, 7]],
    [200, [1, 5, 100], [2, 10, 200]],
    [4, [100], [4]],
    [0, [10, 100], [0, 0]],
  ])('%i targets over %j -> %j', (count, steps, want) => {
    expect(cumulativeCounts(count, steps)).toEqual(want);
  });
});

describe('planTargets', () => {
  it('puts the first targets by name in the canary step', () => {
    const plan = planTargets('ns', ['a', 'b', 'c', 'd'], [25, 50, 100]);
    expect(plan.map((t) => [t.name, t.step, t.phase])).toEqual([['a', 0, 'Pending'], ['b', 1, 'Pending'], ['c', 2, 'Pending'], ['d', 2, 'Pending']]);
  });

  it('leaves a step empty when its percentage adds nobody', () => {
    expect(planTargets('ns', ['a', 'b'], [10, 50, 100]).map((t) => t.step)).toEqual([0, 2]);
  });
});

describe('selectTargets', () => {
  const services = [es('web', { tier: 'front' }), es('api', { tier: 'back' }), es('db', { tier: 'back', pci: 'yes' }), es('old', { tier: 'back' }, true)];

  it.each([
    ['all with {}', { selector: {} }, ['api', 'db', 'web']],
    ['matchLabels', { selector: { matchLabels: { tier: 'back' } } }, ['api', 'db']],
    ['In', { selector: { matchExpressions: [{ key: 'tier', operator: 'In' as const, values: ['front'] }] } }, ['web']],
    ['NotIn', { selector: { matchExpressions: [{ key: 'tier', operator: 'NotIn' as const, values: ['front'] }] } }, ['api', 'db']],
    ['Exists', { selector: { matchExpressions: [{ key: 'pci', operator: 'Exists' as const }] } }, ['db']],
    ['DoesNotExist', { selector: { matchExpressions: [{ key: 'pci', operator: 'DoesNotExist' as const }] } }, ['api', 'web']],
    ['names, sorted, missing skipped', { names: ['web', 'api', 'ghost'] }, ['api', 'web']],
    ['never a deleting service', { names: ['old'] }, []],
  ])('%s', (_name, targets, want) => {
    expect(selectTargets(targets, services)).toEqual(want);
  });
});

describe('targetsProblem', () => {
  const services = [es('web', { tier: 'front' }), es('old', { tier: 'back' }, true)];

  it('names the listed services the namespace lacks, deleting ones included, and says where it looked', () => {
    expect(targetsProblem({ names: ['web', 'ghost', 'old'] }, 'ns', services))
      .toBe('no EncryptedService ghost, old in namespace ns (a RotationSchedule rotates services of its own namespace): fix spec.targets.names or create them');
  });

  it('reports a selector that matches no live service', () => {
    expect(targetsProblem({ selector: { matchLabels: { tier: 'back' } } }, 'ns', services)).toContain('spec.targets.selector matches no EncryptedService in namespace ns');
  });

  it('has nothing to say when every target exists', () => {
    expect(targetsProblem({ names: ['web'] }, 'ns', services)).toBeUndefined();
    expect(targetsProblem({ selector: { matchLabels: { tier: 'front' } } }, 'ns', services)).toBeUndefined();
  });
});
