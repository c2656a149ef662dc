// Wires the EncryptedService reconciler to its informers. Every event becomes keys of the
// EncryptedServices that must look again; the reconciler reads the rest from the caches.
import type { KubernetesObject, V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import {
  FINALIZER, LABEL_ENCRYPTED_SERVICE, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY, keyPolicyNamespaceOf, serviceNameOf, type EncryptedService,
} from '../api/v1alpha1/index.js';
import { Controller, labelKeys, type KeyMapper } from '../runtime/controller.js';
import { matchesSelector } from '../kube/label-selector.js';
import { objectKey } from '../runtime/keys.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import { peerServiceRefs } from './network-policy.js';
import type { Caches, EncryptedServiceReconciler } from './reconciler.js';
import { LABEL_BUNDLE_NAMESPACE, rootFacts, splitPem, trustChangesName } from './trust-bundle.js';

export function encryptedServiceController(
  caches: Caches,
  reconciler: EncryptedServiceReconciler,
  logger: Logger,
  metrics: OperatorMetrics,
  concurrency: number,
): Controller {
  const services = caches.encryptedServices;
  const all = (): EncryptedService[] => services.list();
  const inNamespace = (obj: KubernetesObject): string[] => services.list(obj.metadata?.namespace).map(objectKey);
  const peersOf = (es: EncryptedService): string[] => all().filter((other) =>
    peerServiceRefs(other).some((p) => p.namespace === es.metadata.namespace && p.name === es.metadata.name)).map(objectKey);
  // A service, the services in its namespace (they share the trust bundle), and the services
  // that name it as a peer (their NetworkPolicies follow it).
  const serviceAndDependents: KeyMapper<EncryptedService> = (es) => new Set([objectKey(es), ...inNamespace(es), ...peersOf(es)]);
  // A service's status writes (several while it converges) concern nobody, itself included
  // (inputsChanged): the others read its spec (peers' NetworkPolicies) and whether it exists
  // (the shared bundle's owners).
  const serviceUpdate = (es: EncryptedService, old: EncryptedService): Iterable<string> => {
    const keys = new Set<string>();
    if (inputsChanged(es, old)) keys.add(objectKey(es));
    if (es.metadata.generation !== old.metadata.generation || !sameLabels(es, old)) for (const k of peersOf(es)) keys.add(k);
    // Deletion changes the bundle's owners; a new selector may start or end a workload claimed twice.
    const selectorChanged = JSON.stringify(es.spec.workload.selector) !== JSON.stringify(old.spec.workload.selector);
    if (selectorChanged || Boolean(es.metadata.deletionTimestamp) !== Boolean(old.metadata.deletionTimestamp)) for (const k of inNamespace(es)) keys.add(k);
    return keys;
  };
  // A TLS Secret concerns its service; the namespace's other services only when it holds a root
  // the published bundle lacks (once the bundle has it, the bundle's own change wakes them).
  const secretKeys: KeyMapper<V1Secret> = (secret) => {
    const keys = new Set(owner(secret));
    if (bundleLacksRootsOf(secret)) for (const k of inNamespace(secret)) keys.add(k);
    return keys;
  };
  const bundleLacksRootsOf = (secret: V1Secret): boolean => {
    const ca = secret.data?.['ca.crt'];
    if (!ca) return false;
    const published = caches.configMaps.get(secret.metadata?.namespace, TRUST_BUNDLE_CONFIGMAP)?.data?.[TRUST_BUNDLE_KEY] ?? '';
    return splitPem(Buffer.from(ca, 'base64').toString('utf8')).some((pem) => rootFacts(pem)?.ca && !published.includes(pem));
  };
  const configMapKeys: KeyMapper = (cm) => {
    const target = cm.metadata?.labels?.[LABEL_BUNDLE_NAMESPACE];
    const changes = target && cm.metadata?.name === trustChangesName(target) ? services.list(target).map(objectKey) : [];
    return new Set([...inNamespace(cm), ...changes]);
  };
  // Every service reports the bundle's roots: they look again when its data changed. A change of
  // metadata only (owners added as services come) needs one of them, to put back what drifted.
  const configMapUpdate = (cm: V1ConfigMap, old: V1ConfigMap): Iterable<string> => {
    if (!sameData(cm, old)) return new Set([...configMapKeys(old), ...configMapKeys(cm)]);
    return inNamespace(cm).slice(0, 1);
  };
  const usersOfPolicy: KeyMapper = (kp) =>
    all().filter((es) => keyPolicyNamespaceOf(es) === kp.metadata?.namespace && es.spec.keyPolicyRef.name === kp.metadata?.name).map(objectKey);
  const everyService: KeyMapper = () => all().map(objectKey);
  const withVolumes: KeyMapper = () => all().filter((es) => (es.spec.atRest?.volumes?.length ?? 0) > 0).map(objectKey);
  const owner = labelKeys(LABEL_ENCRYPTED_SERVICE);

  // Generated objects per kind, read from the label-selected caches after a reconcile — at most
  // once a second: listing every cache after every reconcile grew with the number of children.
  let counted = 0;
  let later: NodeJS.Timeout | undefined;
  const countChildren = (): void => {
    if (Date.now() - counted < 1_000) {
      // The last reconcile of a burst is still counted, a second later.
      later ??= setTimeout(() => {
        later = undefined;
        countChildren();
      }, 1_000).unref();
      return;
    }
    counted = Date.now();
    const kinds: [string, { list(): unknown[] }][] = [
      ['Certificate', caches.certificates], ['NetworkPolicy', caches.networkPolicies], ['ConfigMap', caches.configMaps],
      ['Secret', caches.secrets], ['StorageClass', caches.storageClasses], ['PersistentVolumeClaim', caches.claims],
    ];
    for (const [kind, cache] of kinds) metrics.children.set({ kind }, cache.list().length);
  };

  return new Controller({
    name: 'encryptedservice',
    concurrency,
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
      { informer: services, toKeys: serviceAndDependents, onUpdate: serviceUpdate },
      { informer: caches.keyPolicies, toKeys: usersOfPolicy },
      { informer: caches.certificates, toKeys: owner },
      { informer: caches.networkPolicies, toKeys: owner },
      { informer: caches.claims, toKeys: owner },
      // TLS Secrets carry the CA roots of the namespace's trust bundle.
      { informer: caches.secrets, toKeys: secretKeys },
      // A CA rotation's record of bundle changes (in the operator's namespace) names the bundle's namespace.
      { informer: caches.configMaps, toKeys: configMapKeys, onUpdate: configMapUpdate },
      { informer: caches.storageClasses, toKeys: withVolumes },
      { informer: caches.issuers, toKeys: (i: KubernetesObject) => services.list(i.metadata?.namespace).map(objectKey) },
      { informer: caches.clusterIssuers, toKeys: everyService },
      // The port check (references.ts) reads the Kubernetes Service each service names.
      { informer: caches.services, toKeys: (svc: KubernetesObject) => services.list(svc.metadata?.namespace)
        .filter((es) => serviceNameOf(es) === svc.metadata?.name).map(objectKey) },
      // The identity check (claims.ts) reads the pods each service selects.
      { informer: caches.pods, toKeys: (p: KubernetesObject) => services.list(p.metadata?.namespace)
        .filter((es) => matchesSelector(es.spec.workload.selector, p.metadata?.labels)).map(objectKey) },
    ],
  });
}

/**
 * Whether an update of a service changed what its own reconcile reads from it. A status write
 * (its own, or the verifier's) does not: the reconciler derives status, it never acts on it, and
 * each write used to come back as one more reconcile per service. Nor does the finalizer it just
 * added; one removed by someone else does (it is put back).
 */
export function inputsChanged(es: EncryptedService, old: EncryptedService): boolean {
  const m = es.metadata;
  const o = old.metadata;
  return m.generation !== o.generation || !sameLabels(es, old)
    || JSON.stringify(m.annotations ?? {}) !== JSON.stringify(o.annotations ?? {})
    || Boolean(m.deletionTimestamp) !== Boolean(o.deletionTimestamp)
    || !(m.finalizers ?? []).includes(FINALIZER)
    // Written by the revocation controller: the access part swaps the policies for the quarantine one.
    || (es.status?.revocation?.quarantined === true) !== (old.status?.revocation?.quarantined === true);
}

function sameLabels(a: KubernetesObject, b: KubernetesObject): boolean {
  return JSON.stringify(a.metadata?.labels ?? {}) === JSON.stringify(b.metadata?.labels ?? {});
}

function sameData(a: V1ConfigMap, b: V1ConfigMap): boolean {
  return JSON.stringify(a.data ?? {}) === JSON.stringify(b.data ?? {}) && JSON.stringify(a.metadata?.labels ?? {}) === JSON.stringify(b.metadata?.labels ?? {});
}
