import { describe, expect, it } from '@jest/globals';
import { restartPatch, restartValue } from './workload-restart.js';

describe('restartPatch', () => {
  it('restarts a Deployment through its pod template, with the rollout limited to maxUnavailable', () => {
    expect(restartPatch({ kind: 'Deployment', name: 'api', maxUnavailable: '25%' }, 'ns', 'v')).toEqual({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'api', namespace: 'ns' },
      spec: { strategy: { rollingUpdate: { maxUnavailable: '25%' } }, template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': 'v' } } } },
    });
  });

  it('uses updateStrategy for StatefulSets and DaemonSets, and the CRD default of 1', () => {
    for (const kind of ['StatefulSet', 'DaemonSet'] as const) {
      expect(restartPatch({ kind, name: 'db' }, 'ns', 'v').spec).toEqual({
        updateStrategy: { rollingUpdate: { maxUnavailable: 1 } }, template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': 'v' } } },
      });
    }
  });
});

describe('restartValue', () => {
  it('differs for two restarts within the same second', () => {
    expect(restartValue(new Date(1_000))).not.toBe(restartValue(new Date(1_001)));
  });
});
