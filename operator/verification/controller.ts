// Builds the continuous-verification controller from the operator's shared parts (app.ts calls
// this). Leader-only like every controller: the Manager starts it on winning the Lease. A
// service's key comes back on its own timer (requeueAfter); its Secret changing (a renewal)
// wakes it so the probe after the grace period is scheduled.
import * as k8s from '@kubernetes/client-node';
import { GROUP, LABEL_ENCRYPTED_SERVICE, ROTATION_SCHEDULE, VERSION, type EncryptedService, type RotationSchedule } from '../api/v1alpha1/index.js';
import type { VerificationSettings } from '../config.js';
import { inputsChanged } from '../encryptedservice/controller.js';
import type { Caches } from '../encryptedservice/reconciler.js';
import { Applier } from '../kube/apply.js';
import { SERVICE_NAME_LABEL } from '../rotationschedule/endpoints.js';
import { WorkloadRestarter } from '../rotationschedule/workload-restart.js';
import { Controller, labelKeys } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import { objectKey } from '../runtime/keys.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import { observeEndpoints } from './probes.js';
import { Verifier, VERIFIER_FIELD_MANAGER, type VerifierReader } from './verifier.js';

/** Per-connection timeout of a probe. */
export const PROBE_TIMEOUT_MS = 5_000;

export interface VerificationParts {
  /** Reads. */
  kc: k8s.KubeConfig;
  /** Writes (leader-guarded). */
  writer: k8s.KubeConfig;
  caches: Caches;
  settings: VerificationSettings;
  events: EventRecorder;
  metrics: OperatorMetrics;
  logger: Logger;
}

export function buildVerificationController(parts: VerificationParts): Controller {
  const discovery = parts.kc.makeApiClient(k8s.DiscoveryV1Api);
  const custom = parts.kc.makeApiClient(k8s.CustomObjectsApi);
  const reader: VerifierReader = {
    async endpointSlices(namespace, serviceName) {
      return (await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `${SERVICE_NAME_LABEL}=${serviceName}` })).items;
    },
    // Read only when a restart is considered (rare): no second cache of every schedule.
    async schedules(namespace) {
      const list = await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: ROTATION_SCHEDULE.plural, namespace });
      return (list as { items?: RotationSchedule[] }).items ?? [];
    },
  };
  const verifier = new Verifier({
    caches: parts.caches,
    reader,
    statusApplier: new Applier(parts.writer, VERIFIER_FIELD_MANAGER),
    restarter: new WorkloadRestarter(parts.writer),
    observe: (endpoints, expected, client) => observeEndpoints(endpoints, expected, client, PROBE_TIMEOUT_MS),
    settings: parts.settings,
    events: parts.events,
    metrics: parts.metrics,
    logger: parts.logger,
  });
  return new Controller({
    name: 'verification',
    reconcile: (key) => verifier.reconcile(key),
    logger: parts.logger,
    metrics: parts.metrics,
    concurrency: parts.settings.concurrency,
    watches: [
      // Status writes (several per new service, its own among them) change nothing it reads.
      { informer: parts.caches.encryptedServices, onUpdate: (es: EncryptedService, old: EncryptedService) => (inputsChanged(es, old) ? [objectKey(es)] : []) },
      { informer: parts.caches.secrets, toKeys: labelKeys(LABEL_ENCRYPTED_SERVICE) },
    ],
  });
}
