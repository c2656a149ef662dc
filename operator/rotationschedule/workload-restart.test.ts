import { describe, expect, it } from '@jest/globals';
import { restartPatch, restartPlan, restartValue } from './workload-restart.js';

describe('restartPatch', () => {
  it('writes the template annotation and nothing of the rollout strategy', () => {
    for (const kind of ['Deployment', 'StatefulSet', 'DaemonSet'] as const) {
      expect(restartPatch({ kind, name: 'api', maxUnavailable: '25%' }, 'ns', 'v')).toEqual({
        apiVersion: 'apps/v1', kind, metadata: { name: 'api', namespace: 'ns' },
        spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': 'v' } } } },
      });
    }
  });
});

describe('restartPlan', () => {
  it('refuses a workload whose pods are replaced only when deleted', () => {
    expect(restartPlan({ kind: 'StatefulSet', name: 'db' }, { kind: 'StatefulSet', strategyType: 'OnDelete' }).refused).toMatch(/OnDelete/);
  });

  it('restarts a Recreate Deployment, saying all pods go at once', () => {
    const plan = restartPlan({ kind: 'Deployment', name: 'api' }, { kind: 'Deployment', strategyType: 'Recreate' });
    expect(plan.refused).toBeUndefined();
    expect(plan.note).toMatch(/Recreate/);
  });

  it("notes when the workload's own maxUnavailable differs from the EncryptedService's", () => {
    expect(restartPlan({ kind: 'Deployment', name: 'api', maxUnavailable: 1 }, { kind: 'Deployment', strategyType: 'RollingUpdate' }).note).toMatch(/own maxUnavailable 25%/);
    expect(restartPlan({ kind: 'Deployment', name: 'api', maxUnavailable: 2 }, { kind: 'Deployment', strategyType: 'RollingUpdate', maxUnavailable: 2 })).toEqual({});
    expect(restartPlan({ kind: 'StatefulSet', name: 'db' }, { kind: 'StatefulSet', strategyType: 'RollingUpdate' })).toEqual({});
  });
});

describe('restartValue', () => {
  it('differs for two restarts within the same second', () => {
    expect(restartValue(new Date(1_000))).not.toBe(restartValue(new Date(1_001)));
  });
});
