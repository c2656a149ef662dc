// Names and labels of what the KeyPolicy controller generates. The key Secret and the audit
// ConfigMaps are read by `lockstep audit verify` and by backups, and the managed CA's
// ClusterIssuer is resolved by EncryptedServices, so these names are part of the API.
import { createHash } from 'node:crypto';
import {
  LABEL_COMPONENT, LABEL_KEY_POLICY, LABEL_MANAGED_BY, MANAGED_BY_VALUE, type Component,
} from '../api/v1alpha1/index.js';

/** Namespace of the KeyPolicy a cluster-scoped or cross-namespace object belongs to. */
export const LABEL_KEY_POLICY_NAMESPACE = 'lockstep.dev/key-policy-namespace';
/** On the key Secret: the last `lockstep.dev/rotate-now` value a rotation was made for. */
export const ANNOTATION_ROTATED_FOR = 'lockstep.dev/rotated-for';

/** Secret (in the policy's namespace) with the KEK and sealing key sets. */
export function keySecretName(policy: string): string {
  return `${policy}-keys`;
}
export const KEK_SET_KEY = 'kek.json';
export const SEAL_SET_KEY = 'seal.json';

/** ConfigMap holding audit segment `index` of a policy's trail. */
export function auditSegmentConfigMapName(policy: string, index: number): string {
  return `${policy}-audit-${String(index).padStart(6, '0')}`;
}

/** The trail id hashed into the chain's genesis: a chain copied to another policy does not verify. */
export function auditTrailId(namespace: string, policy: string): string {
  return `keypolicy/${namespace}/${policy}`;
}

// Cluster-scoped names must be unique across namespaces, so they carry both; a hash keeps
// long combinations within the 253-character limit while staying unique.
function clusterName(namespace: string, policy: string, suffix: string): string {
  const full = `lockstep-${namespace}-${policy}-${suffix}`;
  if (full.length <= 253) return full;
  const digest = createHash('sha256').update(`${namespace}/${policy}`).digest('hex').slice(0, 12);
  return `lockstep-${namespace}-${policy.slice(0, 253 - namespace.length - suffix.length - 25)}-${digest}-${suffix}`;
}

/** ClusterIssuer that signs the certificates of services using a policy with managedCA. */
export function managedCAIssuerName(namespace: string, policy: string): string {
  return clusterName(namespace, policy, 'ca');
}

/** Self-signed ClusterIssuer that signs the managed CA's root. */
export function managedCASelfSignedIssuerName(namespace: string, policy: string): string {
  return clusterName(namespace, policy, 'selfsigned');
}

/** Certificate (and its Secret) of the managed root, in cert-manager's cluster resource namespace. */
export function managedCACertificateName(namespace: string, policy: string): string {
  return clusterName(namespace, policy, 'root');
}

export function keyPolicyLabels(namespace: string, policy: string, component: Component): Record<string, string> {
  return {
    [LABEL_MANAGED_BY]: MANAGED_BY_VALUE,
    [LABEL_KEY_POLICY]: policy,
    [LABEL_KEY_POLICY_NAMESPACE]: namespace,
    [LABEL_COMPONENT]: component,
  };
}
