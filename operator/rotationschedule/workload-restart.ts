// Restarts for workloads that cannot hot-reload their certificate: the pod template's
// kubectl.kubernetes.io/restartedAt annotation (what `kubectl rollout restart` writes), with a
// millisecond timestamp so two restarts within one second still differ, and the EncryptedService's
// maxUnavailable as the rollout's limit of pods restarted at once.
import * as k8s from '@kubernetes/client-node';
import { ANNOTATION_RESTARTED_AT, CRD_DEFAULTS, type RestartTarget } from '../api/v1alpha1/index.js';
import { FIELD_MANAGER } from '../kube/apply.js';

export function restartValue(now: Date): string {
  return now.toISOString();
}

/** Strategic merge patch that restarts `target` with at most maxUnavailable pods down at once. */
export function restartPatch(target: RestartTarget, namespace: string, value: string): k8s.KubernetesObject & { spec: object } {
  const maxUnavailable = target.maxUnavailable ?? CRD_DEFAULTS.maxUnavailable;
  const rollingUpdate = { rollingUpdate: { maxUnavailable } };
  return {
    apiVersion: 'apps/v1',
    kind: target.kind,
    metadata: { name: target.name, namespace },
    spec: {
      ...(target.kind === 'Deployment' ? { strategy: rollingUpdate } : { updateStrategy: rollingUpdate }),
      template: { metadata: { annotations: { [ANNOTATION_RESTARTED_AT]: value } } },
    },
  };
}

export class WorkloadRestarter {
  private readonly objects: k8s.KubernetesObjectApi;

  constructor(writer: k8s.KubeConfig) {
    this.objects = k8s.KubernetesObjectApi.makeApiClient(writer);
  }

  async restart(target: RestartTarget, namespace: string, value: string): Promise<void> {
    await this.objects.patch(restartPatch(target, namespace, value), undefined, undefined, FIELD_MANAGER, undefined, k8s.PatchStrategy.StrategicMergePatch);
  }
}
