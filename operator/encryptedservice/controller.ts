// Wires the EncryptedService reconciler to its informers. Every event becomes keys of the
// EncryptedServices that must look again; the reconciler reads the rest from the caches.
import type { KubernetesObject } from '@kubernetes/client-node';
import { LABEL_ENCRYPTED_SERVICE, keyPolicyNamespaceOf, type EncryptedService } from '../api/v1alpha1/index.js';
import { Controller, labelKeys, type KeyMapper } from '../runtime/controller.js';
import { matchesSelector } from '../kube/label-selector.js';
import { objectKey } from '../runtime/keys.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import { peerServiceRefs } from './network-policy.js';
import type { Caches, EncryptedServiceReconciler } from './reconciler.js';
import { LABEL_BUNDLE_NAMESPACE, trustChangesName } from './trust-bundle.js';

export function encryptedServiceController(
  caches: Caches,
  reconciler: EncryptedServiceReconciler,
  logger: Logger,
  metrics: OperatorMetrics,
): Controller {
  const services = caches.encryptedServices;
  const all = (): EncryptedService[] => services.list();
  const inNamespace: KeyMapper = (obj) => services.list(obj.metadata?.namespace).map(objectKey);
  // A service, the services in its namespace (they share the trust bundle), and the services
  // that name it as a peer (their NetworkPolicies follow it).
  const serviceAndDependents: KeyMapper<EncryptedService> = (es) => {
    const ns = es.metadata.namespace;
    const peersOf = all().filter((other) =>
      peerServiceRefs(other).some((p) => p.namespace === ns && p.name === es.metadata.name));
    return new Set([objectKey(es), ...inNamespace(es), ...peersOf.map(objectKey)]);
  };
  const usersOfPolicy: KeyMapper = (kp) =>
    all().filter((es) => keyPolicyNamespaceOf(es) === kp.metadata?.namespace && es.spec.keyPolicyRef.name === kp.metadata?.name).map(objectKey);
  const everyService: KeyMapper = () => all().map(objectKey);
  const withVolumes: KeyMapper = () => all().filter((es) => (es.spec.atRest?.volumes?.length ?? 0) > 0).map(objectKey);
  const owner = labelKeys(LABEL_ENCRYPTED_SERVICE);

  // Generated objects per kind, read from the label-selected caches after each reconcile.
  const countChildren = (): void => {
    const kinds: [string, { list(): unknown[] }][] = [
      ['Certificate', caches.certificates], ['NetworkPolicy', caches.networkPolicies], ['ConfigMap', caches.configMaps],
      ['Secret', caches.secrets], ['StorageClass', caches.storageClasses], ['PersistentVolumeClaim', caches.claims],
    ];
    for (const [kind, cache] of kinds) metrics.children.set({ kind }, cache.list().length);
  };

  return new Controller({
    name: 'encryptedservice',
    reconcile: async (key) => {
      try {
        return await reconciler.reconcile(key);
      } finally {
        countChildren();
      }
    },
    logger,
    metrics,
    watches: [
      { informer: services, toKeys: serviceAndDependents },
      { informer: caches.keyPolicies, toKeys: usersOfPolicy },
      { informer: caches.certificates, toKeys: owner },
      { informer: caches.networkPolicies, toKeys: owner },
      { informer: caches.claims, toKeys: owner },
      // TLS Secrets carry the CA roots of the namespace's trust bundle.
      { informer: caches.secrets, toKeys: (s: KubernetesObject) => new Set([...owner(s), ...inNamespace(s)]) },
      // A CA rotation's record of bundle changes (in the operator's namespace) names the bundle's namespace.
      { informer: caches.configMaps, toKeys: (cm: KubernetesObject) => {
        const target = cm.metadata?.labels?.[LABEL_BUNDLE_NAMESPACE];
        const changes = target && cm.metadata?.name === trustChangesName(target) ? services.list(target).map(objectKey) : [];
        return new Set([...inNamespace(cm), ...changes]);
      } },
      { informer: caches.storageClasses, toKeys: withVolumes },
      { informer: caches.issuers, toKeys: (i: KubernetesObject) => services.list(i.metadata?.namespace).map(objectKey) },
      { informer: caches.clusterIssuers, toKeys: everyService },
      // The identity check (claims.ts) reads the pods each service selects.
      { informer: caches.pods, toKeys: (p: KubernetesObject) => services.list(p.metadata?.namespace)
        .filter((es) => matchesSelector(es.spec.workload.selector, p.metadata?.labels)).map(objectKey) },
    ],
  });
}

