// Builds the revocation controller (app.ts calls this). Leader-only like every controller. Two
// kinds of key share its queue: a service's `namespace/name` (its lockstep.dev/revoke request,
// revoker.ts) and PUBLISH_KEY (re-signing CRLs before their nextUpdate and writing them into the
// trust bundles), which any change to a bundle or a revocation list wakes, and its own timer.
import * as k8s from '@kubernetes/client-node';
import {
  ANNOTATION_REVOKE, ENCRYPTED_SERVICE, GROUP, LABEL_COMPONENT, VERSION, LABEL_ENCRYPTED_SERVICE, TRUST_BUNDLE_CONFIGMAP, type EncryptedService, type IssuerRef,
} from '../api/v1alpha1/index.js';
import type { Caches } from '../encryptedservice/reconciler.js';
import { Applier } from '../kube/apply.js';
import type { AuditTrail } from '../keypolicy/audit-trail.js';
import { LeafCertificates } from '../rotationschedule/leaf-certificates.js';
import { isNotFound } from '../runtime/api-error.js';
import { Controller, labelKeys } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import { objectKey } from '../runtime/keys.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import { SERVICE_NAME_LABEL } from '../rotationschedule/endpoints.js';
import { COMPONENT_REVOCATION } from './revocation-list.js';
import { observeServed } from './served.js';
import { PUBLISH_KEY, REVOCATION_FIELD_MANAGER, Revoker } from './revoker.js';

/** Per-connection timeout of the check that the workload serves its new certificate. */
export const SERVED_PROBE_TIMEOUT_MS = 3_000;

export interface RevocationParts {
  writer: k8s.KubeConfig;
  caches: Caches;
  audit: AuditTrail;
  events: EventRecorder;
  metrics: OperatorMetrics;
  logger: Logger;
  operatorNamespace: string;
  clusterResourceNamespace: string;
  defaultIssuer?: IssuerRef;
  crlValidityMs?: number;
}

/** Whether an update concerns the revocation: a new request, or the record it keeps in status. */
export function revocationChanged(es: EncryptedService, old: EncryptedService): boolean {
  return es.metadata.annotations?.[ANNOTATION_REVOKE] !== old.metadata.annotations?.[ANNOTATION_REVOKE]
    || JSON.stringify(es.status?.revocation ?? {}) !== JSON.stringify(old.status?.revocation ?? {});
}

export function buildRevocationController(parts: RevocationParts): Controller {
  const leaves = new LeafCertificates(parts.writer, new Applier(parts.writer));
  const custom = parts.writer.makeApiClient(k8s.CustomObjectsApi);
  const discovery = parts.writer.makeApiClient(k8s.DiscoveryV1Api);
  const slices = async (namespace: string, service: string) =>
    (await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `${SERVICE_NAME_LABEL}=${service}` })).items;
  const revoker = new Revoker({
    caches: parts.caches,
    read: async (namespace, name) => {
      try {
        return (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: ENCRYPTED_SERVICE.plural, namespace, name })) as EncryptedService;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    core: parts.writer.makeApiClient(k8s.CoreV1Api),
    applier: new Applier(parts.writer, REVOCATION_FIELD_MANAGER),
    served: (es, newSerial) => observeServed(es, newSerial, parts.caches, slices, SERVED_PROBE_TIMEOUT_MS),
    reissue: (namespace, name, serial, message) => leaves.triggerIssuance(namespace, name, serial, message),
    audit: parts.audit,
    events: parts.events,
    logger: parts.logger,
    operatorNamespace: parts.operatorNamespace,
    clusterResourceNamespace: parts.clusterResourceNamespace,
    ...(parts.defaultIssuer ? { defaultIssuer: parts.defaultIssuer } : {}),
    ...(parts.crlValidityMs ? { crlValidityMs: parts.crlValidityMs } : {}),
  });
  const publishKey = (cm: k8s.V1ConfigMap): string[] => (cm.metadata?.name === TRUST_BUNDLE_CONFIGMAP || cm.metadata?.labels?.[LABEL_COMPONENT] === COMPONENT_REVOCATION ? [PUBLISH_KEY] : []);
  return new Controller({
    name: 'revocation',
    reconcile: (key) => revoker.reconcile(key),
    logger: parts.logger,
    metrics: parts.metrics,
    concurrency: 2,
    watches: [
      { informer: parts.caches.encryptedServices, onUpdate: (es: EncryptedService, old: EncryptedService) => (revocationChanged(es, old) ? [objectKey(es)] : []) },
      { informer: parts.caches.secrets, toKeys: labelKeys(LABEL_ENCRYPTED_SERVICE) },
      { informer: parts.caches.certificates, toKeys: labelKeys(LABEL_ENCRYPTED_SERVICE) },
      { informer: parts.caches.configMaps, toKeys: publishKey },
    ],
  });
}
