// Restarts for workloads that cannot hot-reload their certificate: the pod template's
// kubectl.kubernetes.io/restartedAt annotation (what `kubectl rollout restart` writes), with a
// millisecond timestamp so two restarts within one second still differ. Only that annotation is
// written: the rollout follows the workload's own strategy, which is the user's (and their GitOps
// tool's) to set. Writing the same value twice is a no-op, so a caller that persisted the value
// before restarting can repeat the call after a crash without a second rollout.
import * as k8s from '@kubernetes/client-node';
import { ANNOTATION_RESTARTED_AT, type RestartTarget } from '../api/v1alpha1/index.js';
import { FIELD_MANAGER } from '../kube/apply.js';
import { describeApiError } from '../runtime/api-error.js';

export function restartValue(now: Date): string {
  return now.toISOString();
}

/** Strategic merge patch that restarts `target`: the template annotation and nothing else. */
export function restartPatch(target: RestartTarget, namespace: string, value: string): k8s.KubernetesObject & { spec: object } {
  return {
    apiVersion: 'apps/v1',
    kind: target.kind,
    metadata: { name: target.name, namespace },
    spec: { template: { metadata: { annotations: { [ANNOTATION_RESTARTED_AT]: value } } } },
  };
}

/** The parts of a workload a restart decision reads. */
export interface WorkloadShape {
  kind: RestartTarget['kind'];
  strategyType?: string;
  maxUnavailable?: number | string;
  restartedAt?: string;
}

/**
 * Whether the annotation can restart the workload, and what the user should know: undefined
 * refusal means go ahead. An OnDelete StatefulSet or DaemonSet never replaces pods on a template
 * change, so the annotation would report a restart that does not happen.
 */
export function restartPlan(target: RestartTarget, shape: WorkloadShape): { refused?: string; note?: string } {
  if (shape.strategyType === 'OnDelete') {
    return { refused: `${target.kind} ${target.name} uses updateStrategy OnDelete: its pods load a new certificate only when deleted; delete them, or make the workload hot-reload (spec.workload.restart.hotReload)` };
  }
  if (shape.kind === 'Deployment' && shape.strategyType === 'Recreate') {
    return { note: `Deployment ${target.name} uses strategy Recreate: all its pods restart at once` };
  }
  const wanted = target.maxUnavailable ?? 1;
  const own = shape.maxUnavailable ?? (shape.kind === 'Deployment' ? '25%' : 1);
  if (String(own) !== String(wanted)) {
    return { note: `${target.kind} ${target.name} rolls out with its own maxUnavailable ${own} (spec.workload.restart.maxUnavailable ${wanted} is not written into the workload)` };
  }
  return {};
}

/** A restart the API server or the workload's shape refuses: retrying the same write cannot help. */
export class RestartRefused extends Error {}

export type RestartOutcome = { result: 'restarted' | 'already-restarted'; note?: string };

interface WorkloadObject {
  spec?: {
    strategy?: { type?: string; rollingUpdate?: { maxUnavailable?: number | string } };
    updateStrategy?: { type?: string; rollingUpdate?: { maxUnavailable?: number | string } };
    template?: { metadata?: { annotations?: Record<string, string> } };
  };
}

export class WorkloadRestarter {
  private readonly objects: k8s.KubernetesObjectApi;

  constructor(writer: k8s.KubeConfig) {
    this.objects = k8s.KubernetesObjectApi.makeApiClient(writer);
  }

  /** Restarts `target` unless its template already carries `value`; RestartRefused when it cannot. */
  async restart(target: RestartTarget, namespace: string, value: string): Promise<RestartOutcome> {
    const ref = { apiVersion: 'apps/v1', kind: target.kind, metadata: { name: target.name, namespace } };
    let current: WorkloadObject;
    try {
      current = (await this.objects.read(ref)) as WorkloadObject;
    } catch (err) {
      throw refusedOr(err, `${target.kind} ${namespace}/${target.name}`);
    }
    const strategy = current.spec?.strategy ?? current.spec?.updateStrategy;
    const shape: WorkloadShape = {
      kind: target.kind,
      ...(strategy?.type ? { strategyType: strategy.type } : {}),
      ...(strategy?.rollingUpdate?.maxUnavailable !== undefined ? { maxUnavailable: strategy.rollingUpdate.maxUnavailable } : {}),
    };
    const plan = restartPlan(target, shape);
    if (plan.refused) throw new RestartRefused(plan.refused);
    const note = plan.note ? { note: plan.note } : {};
    if (current.spec?.template?.metadata?.annotations?.[ANNOTATION_RESTARTED_AT] === value) return { result: 'already-restarted', ...note };
    try {
      await this.objects.patch(restartPatch(target, namespace, value), undefined, undefined, FIELD_MANAGER, undefined, k8s.PatchStrategy.StrategicMergePatch);
    } catch (err) {
      throw refusedOr(err, `${target.kind} ${namespace}/${target.name}`);
    }
    return { result: 'restarted', ...note };
  }
}

/** NotFound, Forbidden, Invalid and other 4xx (not Conflict or TooManyRequests) refuse for good. */
function refusedOr(err: unknown, what: string): unknown {
  const d = describeApiError(err);
  if (d.code !== undefined && d.code >= 400 && d.code < 500 && d.code !== 409 && d.code !== 429) {
    return new RestartRefused(`cannot restart ${what}: ${d.reason}: ${d.message}`);
  }
  return err;
}
