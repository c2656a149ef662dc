// Names and labels of what the KeyPolicy controller generates. The key Secret and the audit
// ConfigMaps are read by `lockstep audit verify` and by backups, and the managed CA's
// ClusterIssuer is resolved by EncryptedServices, so these names are part of the API.
import { createHash } from 'node:crypto';
import {
  LABEL_COMPONENT, LABEL_KEY_POLICY, LABEL_KEY_POLICY_NAMESPACE, LABEL_MANAGED_BY, MANAGED_BY_VALUE, type Component,
} from '../api/v1alpha1/index.js';

export { LABEL_KEY_POLICY_NAMESPACE } from '../api/v1alpha1/index.js';
/** On the key Secret: the last `lockstep.dev/rotate-now` value a rotation was made for. */
export const ANNOTATION_ROTATED_FOR = 'lockstep.dev/rotated-for';

/** Secret (in the policy's namespace) with the KEK and sealing key sets. */
export function keySecretName(policy: string): string {
  return `${policy}-keys`;
}
export const KEK_SET_KEY = 'kek.json';
export const SEAL_SET_KEY = 'seal.json';
/** With keyStore PKCS11, instead of KEK_SET_KEY: the KEK index (kids and dates; the keys are in the token). */
export const KEK_INDEX_KEY = 'kek-index.json';

/** Before issue 11: ConfigMap holding audit segment `index`, in the policy's own namespace. Read
 * only to migrate such a trail into the operator's namespace. */
export function auditSegmentConfigMapName(policy: string, index: number): string {
  return `${policy}-audit-${String(index).padStart(6, '0')}`;
}

/** The trail id hashed into the chain's genesis: a chain copied to another policy does not verify. */
export function auditTrailId(namespace: string, policy: string): string {
  return `keypolicy/${namespace}/${policy}`;
}

// The audit trail lives in the operator's namespace, where every policy of every namespace
// shares one name space: names carry a digest of namespace and name (the separator cannot occur
// in either), so `team-a/prod` and `team/a-prod` never meet, and stay short whatever the input.
/** Label on every object of one trail in the operator's namespace (value: auditTrailKey). */
export const LABEL_AUDIT_TRAIL = 'lockstep.dev/audit-trail';
/** `segment` (live), `archive` or `head`. */
export const LABEL_AUDIT_ROLE = 'lockstep.dev/audit-role';
/** On audit objects in the operator's namespace: whose trail it is (labels cannot hold 253 characters). */
export const ANNOTATION_AUDIT_OWNER = 'lockstep.dev/audit-owner';
/** Operator Secret (private) and ConfigMap (public) of the key that signs audit entries and heads. */
export const AUDIT_SIGNING_KEY_NAME = 'lockstep-audit-signing-key';

export function auditTrailKey(namespace: string, policy: string): string {
  return createHash('sha256').update(`${namespace}/${policy}`).digest('hex').slice(0, 24);
}

export function auditLiveSegmentName(namespace: string, policy: string, index: number): string {
  return `lockstep-audit-${auditTrailKey(namespace, policy)}-${String(index).padStart(6, '0')}`;
}

export function auditArchiveSegmentName(namespace: string, policy: string, index: number): string {
  return `lockstep-audit-${auditTrailKey(namespace, policy)}-archive-${String(index).padStart(6, '0')}`;
}

export function auditHeadName(namespace: string, policy: string): string {
  return `lockstep-audit-${auditTrailKey(namespace, policy)}-head`;
}

// Cluster-scoped names (and names in cert-manager's shared namespace) must be unique per owner.
// Joining namespace and name with '-' is not: `team-a/prod` and `team/a-prod` both read
// `team-a-prod`, which let one tenant's policy take over, and later delete, another's CA. So the
// name ends in a hash of `namespace/name` ('/' cannot occur in either); the readable part in front
// is for people and is cut to fit 253 characters.
const OWNER_HASH_LENGTH = 16;
const MAX_NAME = 253;

function ownerHash(namespace: string, policy: string): string {
  return createHash('sha256').update(`${namespace}/${policy}`).digest('hex').slice(0, OWNER_HASH_LENGTH);
}

function clusterName(namespace: string, policy: string, suffix: string): string {
  const tail = `-${ownerHash(namespace, policy)}-${suffix}`;
  // A cut may end on '.' or '-', which cannot precede the tail's '-' in a DNS subdomain.
  const readable = `lockstep-${namespace}-${policy}`.slice(0, MAX_NAME - tail.length).replace(/[.-]+$/, '');
  return `${readable}${tail}`;
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

/**
 * Names operator versions before the owner hash gave (`lockstep-<ns>-<policy>-<suffix>`), which
 * may collide across owners. Only objects under them that carry this policy's labels are used
 * (an existing root keeps signing, see managed-ca.ts) or deleted.
 */
export function legacyManagedCANames(namespace: string, policy: string): { issuer: string; selfSigned: string; root: string } {
  const legacy = (suffix: string): string => {
    const full = `lockstep-${namespace}-${policy}-${suffix}`;
    if (full.length <= MAX_NAME) return full;
    const digest = createHash('sha256').update(`${namespace}/${policy}`).digest('hex').slice(0, 12);
    return `lockstep-${namespace}-${policy.slice(0, MAX_NAME - namespace.length - suffix.length - 25)}-${digest}-${suffix}`;
  };
  return { issuer: legacy('ca'), selfSigned: legacy('selfsigned'), root: legacy('root') };
}

/** Whether an object carries the labels Lockstep gives what it makes for this KeyPolicy (keyPolicyLabels). */
export function ownedByPolicy(metadata: { labels?: Record<string, string> | undefined } | undefined, namespace: string, policy: string): boolean {
  const labels = metadata?.labels ?? {};
  return labels[LABEL_MANAGED_BY] === MANAGED_BY_VALUE && labels[LABEL_KEY_POLICY] === policy && labels[LABEL_KEY_POLICY_NAMESPACE] === namespace;
}

export function keyPolicyLabels(namespace: string, policy: string, component: Component): Record<string, string> {
  return {
    [LABEL_MANAGED_BY]: MANAGED_BY_VALUE,
    [LABEL_KEY_POLICY]: policy,
    [LABEL_KEY_POLICY_NAMESPACE]: namespace,
    [LABEL_COMPONENT]: component,
  };
}
