// Wires the KeyPolicy reconciler to its informers. Services and their envelope stores map to the
// policy they reference (usage counts, re-wrap progress); generated objects map back by label.
import type { KubernetesObject } from '@kubernetes/client-node';
import { LABEL_COMPONENT, LABEL_ENCRYPTED_SERVICE, LABEL_KEY_POLICY, keyPolicyNamespaceOf, type EncryptedService } from '../api/v1alpha1/index.js';
import { Controller, labelKeys, type KeyMapper } from '../runtime/controller.js';
import { keyFor, objectKey } from '../runtime/keys.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import { LABEL_KEY_POLICY_NAMESPACE } from './names.js';
import type { KeyPolicyCaches, KeyPolicyReconciler } from './reconciler.js';

/**
 * Whether an update of a service can change what its KeyPolicy reports: who uses it and how
 * (spec, so generation), whether the service is going, and the kids it recorded as opened
 * (status.keyIds, counted for retirement). The service's other status writes — several per
 * service while it converges — do not wake the policy.
 */
export function changesPolicyUsage(obj: EncryptedService, old: EncryptedService): boolean {
  return obj.metadata.generation !== old.metadata.generation
    || obj.metadata.uid !== old.metadata.uid
    || Boolean(obj.metadata.deletionTimestamp) !== Boolean(old.metadata.deletionTimestamp)
    || (obj.status?.keyIds ?? []).join(',') !== (old.status?.keyIds ?? []).join(',');
}

export function keyPolicyController(
  caches: KeyPolicyCaches,
  reconciler: KeyPolicyReconciler,
  logger: Logger,
  metrics: OperatorMetrics,
): Controller {
  const policyOf = (es: EncryptedService): string[] => [keyFor(keyPolicyNamespaceOf(es), es.spec.keyPolicyRef.name)];
  const byPolicyLabels = labelKeys(LABEL_KEY_POLICY, LABEL_KEY_POLICY_NAMESPACE);
  const generated: KeyMapper = (obj) => byPolicyLabels(obj);
  // A ClusterIssuer a policy names as its default (it reports one that does not exist).
  const namingIssuer: KeyMapper = (issuer) => caches.keyPolicies.list().filter((kp) => {
    const ref = kp.spec.certificates?.defaultIssuer?.issuerRef;
    return ref?.kind === 'ClusterIssuer' && ref.name === issuer.metadata?.name;
  }).map(objectKey);
  const secretToPolicy: KeyMapper = (obj: KubernetesObject) => {
    const labels = obj.metadata?.labels ?? {};
    if (labels[LABEL_KEY_POLICY]) return byPolicyLabels(obj);
    // An envelope store changed (a data key was created or re-wrapped): its service's policy recounts.
    if (labels[LABEL_COMPONENT] !== 'secrets' || !labels[LABEL_ENCRYPTED_SERVICE]) return [];
    const es = caches.encryptedServices.get(obj.metadata?.namespace, labels[LABEL_ENCRYPTED_SERVICE]);
    return es ? policyOf(es) : [];
  };
  return new Controller({
    name: 'keypolicy',
    reconcile: (key) => reconciler.reconcile(key),
    logger,
    metrics,
    watches: [
      { informer: caches.keyPolicies },
      {
        informer: caches.encryptedServices,
        toKeys: policyOf,
        onUpdate: (es: EncryptedService, old: EncryptedService) => (changesPolicyUsage(es, old) ? new Set([...policyOf(old), ...policyOf(es)]) : []),
      },
      { informer: caches.secrets, toKeys: secretToPolicy },
      { informer: caches.configMaps, toKeys: generated },
      { informer: caches.certificates, toKeys: generated },
      { informer: caches.clusterIssuers, toKeys: (obj) => new Set([...generated(obj), ...namingIssuer(obj)]) },
    ],
  });
}
