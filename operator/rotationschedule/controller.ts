// Wires the RotationSchedule reconciler to its informers. A schedule looks again when it changes,
// when the EncryptedServices it may select change, and, while it rotates, when a certificate or
// TLS Secret in its namespace changes (issuance finished). Timers (next rotation, polling during
// verification) come back as requeueAfter results.
import type { KubernetesObject } from '@kubernetes/client-node';
import { Controller, type KeyMapper } from '../runtime/controller.js';
import { objectKey } from '../runtime/keys.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import type { RotationScheduleCaches, RotationScheduleReconciler } from './reconciler.js';
import { inRotation } from './state-machine.js';

export function rotationScheduleController(
  caches: RotationScheduleCaches,
  reconciler: RotationScheduleReconciler,
  logger: Logger,
  metrics: OperatorMetrics,
): Controller {
  const schedules = caches.rotationSchedules;
  const inNamespace: KeyMapper = (obj: KubernetesObject) => schedules.list(obj.metadata?.namespace).map(objectKey);
  const rotatingInNamespace: KeyMapper = (obj: KubernetesObject) =>
    schedules.list(obj.metadata?.namespace).filter((rs) => inRotation(rs.status ?? {})).map(objectKey);
  return new Controller({
    name: 'rotationschedule',
    reconcile: (key) => reconciler.reconcile(key),
    logger,
    metrics,
    watches: [
      { informer: schedules },
      { informer: caches.encryptedServices, toKeys: inNamespace },
      { informer: caches.certificates, toKeys: rotatingInNamespace },
      { informer: caches.secrets, toKeys: rotatingInNamespace },
    ],
  });
}
