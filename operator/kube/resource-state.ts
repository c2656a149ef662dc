// What the scrape-time gauges report of one Lockstep object (lockstep_resource_ready,
// lockstep_certificate_expiry_timestamp_seconds), read from the object as the cache holds it.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Condition } from '../api/v1alpha1/index.js';
import type { ResourceState } from '../runtime/metrics.js';
import { findCondition } from './conditions.js';

type WithStatus = KubernetesObject & { status?: { observedGeneration?: number; conditions?: Condition[]; certificate?: { notAfter?: string } } };

export function resourceState(obj: WithStatus): ResourceState {
  const ready = findCondition(obj.status?.conditions, 'Ready');
  const observed = ready?.observedGeneration ?? obj.status?.observedGeneration;
  const notAfter = Date.parse(obj.status?.certificate?.notAfter ?? '');
  return {
    kind: obj.kind ?? '',
    namespace: obj.metadata?.namespace ?? '',
    name: obj.metadata?.name ?? '',
    ready: ready?.status === 'True' && observed === obj.metadata?.generation,
    ...(Number.isNaN(notAfter) ? {} : { certificateNotAfterMs: notAfter }),
  };
}
