// Builds the RotationSchedule controller from the operator's shared parts (app.ts calls this), so
// its direct readers and writers are assembled in one place.
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { GROUP, ROTATION_SCHEDULE, VERSION, type IssuerRef, type Reasons, type RotationSchedule } from '../api/v1alpha1/index.js';
import type { Caches } from '../encryptedservice/reconciler.js';
import type { Applier } from '../kube/apply.js';
import { isNotFound } from '../runtime/api-error.js';
import type { Controller } from '../runtime/controller.js';
import type { DependencyCheck } from '../runtime/dependency.js';
import type { EventRecorder } from '../runtime/events.js';
import type { Informer, ResourceRef } from '../runtime/informer.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import { CaRotation } from './ca-rotation.js';
import { rotationScheduleController } from './controller.js';
import { SERVICE_NAME_LABEL } from './endpoints.js';
import { KeyRotation } from './key-rotation.js';
import { LeafCertificates } from './leaf-certificates.js';
import { RotationScheduleReconciler, type RotationReader } from './reconciler.js';
import { WorkloadRestarter } from './workload-restart.js';
import { RotationClaims } from './claims.js';
import { resourceState } from '../kube/resource-state.js';
import { inRotation } from './state-machine.js';
import type { KeyRing } from '../keypolicy/key-ring.js';

export interface RotationScheduleParts {
  /** Opens key sets of keyStore PKCS11 policies for the verification step. */
  keyRing?: KeyRing;
  /** Reads. */
  kc: k8s.KubeConfig;
  /** Writes (leader-guarded). */
  writer: k8s.KubeConfig;
  caches: Caches;
  informer: <T extends KubernetesObject>(name: string, ref: ResourceRef) => Informer<T>;
  applier: Applier;
  events: EventRecorder;
  metrics: OperatorMetrics;
  logger: Logger;
  defaultIssuer?: IssuerRef;
  clusterResourceNamespace?: string;
  /** Where rotation claims (Leases) live. */
  operatorNamespace: string;
  secretPropagationMs?: number;
  certManager?: DependencyCheck<typeof Reasons.CertManagerMissing>;
}

export function buildRotationScheduleController(parts: RotationScheduleParts): Controller {
  const custom = parts.kc.makeApiClient(k8s.CustomObjectsApi);
  const discovery = parts.kc.makeApiClient(k8s.DiscoveryV1Api);
  const reader: RotationReader = {
    async schedule(namespace, name) {
      try {
        return (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: ROTATION_SCHEDULE.plural, namespace, name })) as RotationSchedule;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async endpointSlices(namespace, serviceName) {
      return (await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `${SERVICE_NAME_LABEL}=${serviceName}` })).items;
    },
  };
  const caches = {
    ...parts.caches,
    rotationSchedules: parts.informer<RotationSchedule>('rotationschedules', { group: GROUP, version: VERSION, plural: ROTATION_SCHEDULE.plural }),
  };
  parts.metrics.reportResources(() => caches.rotationSchedules.list().map(resourceState));
  const reconciler = new RotationScheduleReconciler({
    caches, reader, applier: parts.applier,
    leaves: new LeafCertificates(parts.writer, parts.applier),
    ca: new CaRotation(parts.writer, parts.applier, parts.operatorNamespace),
    ...(parts.defaultIssuer ? { defaultIssuer: parts.defaultIssuer } : {}),
    ...(parts.clusterResourceNamespace ? { clusterResourceNamespace: parts.clusterResourceNamespace } : {}),
    ...(parts.secretPropagationMs !== undefined ? { secretPropagationMs: parts.secretPropagationMs } : {}),
    operatorNamespace: parts.operatorNamespace,
    restarter: new WorkloadRestarter(parts.writer),
    claims: new RotationClaims(parts.writer, parts.operatorNamespace, async (holder) => {
      const rs = await reader.schedule(holder.namespace, holder.schedule);
      return rs !== undefined && rs.status?.rotationId === holder.rotationId && inRotation(rs.status ?? {});
    }),
    keys: new KeyRotation(parts.writer, parts.keyRing),
    ...(parts.certManager ? { certManager: parts.certManager } : {}),
    events: parts.events, metrics: parts.metrics, logger: parts.logger,
  });
  return rotationScheduleController(caches, reconciler, parts.logger, parts.metrics);
}
