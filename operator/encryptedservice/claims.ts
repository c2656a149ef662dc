// What a service's certificate may claim: which issuer signs it, which DNS names and trust domain
// it carries, and whether the pods behind it really run as the service account it names. The
// KeyPolicy and the cluster administrator decide; the EncryptedService only asks. Pure: the
// reconciler passes what its caches hold, and refuses (no Certificate created or changed) on a
// Problem.
import type { KubernetesObject } from '@kubernetes/client-node';
import {
  ANNOTATION_ALLOWED_NAMESPACES, CRD_DEFAULTS, LABEL_KEY_POLICY, LABEL_MANAGED_BY, MANAGED_BY_VALUE, Reasons,
  type EncryptedService, type IssuerRef, type KeyPolicy,
} from '../api/v1alpha1/index.js';
import { LABEL_KEY_POLICY_NAMESPACE, managedCAIssuerName } from '../keypolicy/names.js';
import { matchesSelector } from '../kube/label-selector.js';
import { ownDNSNames, spiffeId } from './certificate.js';
import type { Problem } from './policy.js';

const complete = (ref: IssuerRef): Required<IssuerRef> => ({
  name: ref.name, kind: ref.kind ?? CRD_DEFAULTS.issuerKind, group: ref.group ?? CRD_DEFAULTS.issuerGroup,
});

function sameIssuer(a: IssuerRef, b: IssuerRef): boolean {
  const x = complete(a);
  const y = complete(b);
  return x.name === y.name && x.kind === y.kind && x.group === y.group;
}

const policyName = (policy: KeyPolicy): string => `${policy.metadata.namespace}/${policy.metadata.name}`;
const describe = (ref: Required<IssuerRef>): string => `${ref.kind} ${ref.name}`;

/** The issuer a service gets when it names none: the policy's, else the operator's. */
export function policyDefaultIssuer(policy: KeyPolicy, operatorDefault: IssuerRef | undefined): Required<IssuerRef> | undefined {
  const chosen = policy.spec.certificates?.defaultIssuer;
  if (chosen?.issuerRef) return complete(chosen.issuerRef);
  if (chosen?.managedCA) {
    return { name: managedCAIssuerName(policy.metadata.namespace ?? '', policy.metadata.name ?? ''), kind: 'ClusterIssuer', group: CRD_DEFAULTS.issuerGroup };
  }
  return operatorDefault ? complete(operatorDefault) : undefined;
}

/** The namespaces a ClusterIssuer's administrator granted; `*` means every namespace. */
export function grantedNamespaces(clusterIssuer: KubernetesObject | undefined, annotation = ANNOTATION_ALLOWED_NAMESPACES): string[] {
  const value = clusterIssuer?.metadata?.annotations?.[annotation] ?? '';
  return value.split(',').map((n) => n.trim()).filter((n) => n.length > 0);
}

/** The KeyPolicy whose managed CA a ClusterIssuer is (labels only the operator can write on a cluster-scoped object). */
function managedCAOwner(clusterIssuer: KubernetesObject | undefined): string | undefined {
  const labels = clusterIssuer?.metadata?.labels ?? {};
  if (labels[LABEL_MANAGED_BY] !== MANAGED_BY_VALUE || !labels[LABEL_KEY_POLICY]) return undefined;
  return `${labels[LABEL_KEY_POLICY_NAMESPACE] ?? ''}/${labels[LABEL_KEY_POLICY]}`;
}

export interface IssuerFacts {
  /** The ClusterIssuer object when the issuer is one (undefined for an Issuer). */
  clusterIssuer?: KubernetesObject;
  /** LOCKSTEP_DEFAULT_ISSUER: admin configuration, so it counts as granted to every namespace. */
  operatorDefault?: IssuerRef;
}

/**
 * Why the service may not be issued by `issuer`, or undefined. Order matters for the message:
 * another policy's managed CA is refused outright (listing it cannot help), then the policy's
 * list, then the administrator's grant on a ClusterIssuer.
 */
export function issuerDenied(es: EncryptedService, policy: KeyPolicy, issuer: Required<IssuerRef>, facts: IssuerFacts): Problem | undefined {
  const namespace = es.metadata.namespace ?? '';
  const owner = issuer.kind === 'ClusterIssuer' ? managedCAOwner(facts.clusterIssuer) : undefined;
  if (owner && owner !== policyName(policy)) {
    return {
      reason: Reasons.IssuerNotAllowed,
      message: `ClusterIssuer ${issuer.name} is the managed CA of KeyPolicy ${owner}; only that policy's services may use it`,
    };
  }
  const fallback = policyDefaultIssuer(policy, facts.operatorDefault);
  const listed = (fallback !== undefined && sameIssuer(issuer, fallback))
    || (policy.spec.certificates?.allowedIssuers ?? []).some((allowed) => sameIssuer(issuer, allowed));
  if (!listed) {
    const hint = fallback ? `use its default issuer (${describe(fallback)}) or ` : '';
    return {
      reason: Reasons.IssuerNotAllowed,
      message: `KeyPolicy ${policyName(policy)} does not allow ${describe(issuer)}: ${hint}add it to the policy's spec.certificates.allowedIssuers`,
    };
  }
  if (issuer.kind !== 'ClusterIssuer') return undefined;
  const isOperatorDefault = facts.operatorDefault !== undefined && sameIssuer(issuer, facts.operatorDefault);
  if (isOperatorDefault || owner === policyName(policy)) return undefined;
  const granted = grantedNamespaces(facts.clusterIssuer);
  if (granted.includes('*') || granted.includes(namespace)) return undefined;
  return {
    reason: Reasons.IssuerNotAllowed,
    message: `ClusterIssuer ${issuer.name} is not granted to namespace ${namespace}: its administrator lists the namespaces that may use it in the annotation ${ANNOTATION_ALLOWED_NAMESPACES}`,
  };
}

/** The namespace a cluster Service name (`<svc>.<ns>.svc[.cluster.local]`, wildcards too) belongs to. */
export function serviceNamespaceOf(dnsName: string): string | undefined {
  return /^.+\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?$/.exec(dnsName)?.[1];
}

/**
 * Whether a KeyPolicy pattern permits a DNS name. `*.<suffix>` stands for exactly one label
 * (RFC 6125, what TLS clients accept for a wildcard certificate); a wildcard name is permitted
 * only by the identical pattern, never by an exact name or a pattern for a parent domain.
 */
export function dnsPatternPermits(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase();
  const n = name.toLowerCase();
  if (p === n) return true;
  if (!p.startsWith('*.') || n.startsWith('*.')) return false;
  const suffix = p.slice(1);
  if (!n.endsWith(suffix)) return false;
  const label = n.slice(0, -suffix.length);
  return label.length > 0 && !label.includes('.');
}

/** Why the service's extraDNSNames are refused, or undefined. */
export function dnsNamesDenied(es: EncryptedService, policy: KeyPolicy): Problem | undefined {
  const namespace = es.metadata.namespace ?? '';
  const own = new Set(ownDNSNames(es));
  const patterns = policy.spec.certificates?.allowedDNSNames ?? [];
  const refused: string[] = [];
  const foreign: string[] = [];
  for (const name of es.spec.transit?.extraDNSNames ?? []) {
    if (own.has(name)) continue;
    const owner = serviceNamespaceOf(name);
    if (owner !== undefined && owner !== namespace) foreign.push(`${name} (namespace ${owner})`);
    else if (!patterns.some((p) => dnsPatternPermits(p, name))) refused.push(name);
  }
  if (foreign.length > 0) {
    return {
      reason: Reasons.DNSNameNotAllowed,
      message: `extraDNSNames ${foreign.join(', ')} name Services of another namespace; a certificate may only name its own namespace's Services`,
    };
  }
  if (refused.length > 0) {
    return {
      reason: Reasons.DNSNameNotAllowed,
      message: `KeyPolicy ${policyName(policy)} does not permit extraDNSNames ${refused.join(', ')}: a service's certificate carries its own names unless the policy's spec.certificates.allowedDNSNames permits more`,
    };
  }
  return undefined;
}

/** Why the service's trust domain is refused, or undefined. */
export function trustDomainDenied(es: EncryptedService, policy: KeyPolicy): Problem | undefined {
  const asked = es.spec.transit?.trustDomain ?? CRD_DEFAULTS.trustDomain;
  const required = policy.spec.certificates?.trustDomain ?? CRD_DEFAULTS.trustDomain;
  if (asked === required) return undefined;
  return {
    reason: Reasons.TrustDomainNotAllowed,
    message: `transit.trustDomain ${asked} is not KeyPolicy ${policyName(policy)}'s trust domain ${required}: set transit.trustDomain to ${required}`,
  };
}

/** A pod as far as the identity check reads it (the Pod cache keeps only these fields). */
export interface PodIdentity {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  spec?: { serviceAccountName?: string };
  status?: { phase?: string };
}

/** The account a pod runs as: the API server's ServiceAccount admission fills in `default`. */
export const podServiceAccount = (pod: PodIdentity): string => pod.spec?.serviceAccountName || 'default';

/**
 * Why the selected pods do not prove the declared service account, or undefined. Finished pods
 * (Succeeded, Failed) hold no identity any more and are ignored. While no pod is selected the
 * certificate is withheld only when the policy restricts service accounts: a Deployment's pods
 * exist (waiting for their TLS Secret) before the certificate does, so the first rollout proceeds.
 */
export function workloadIdentityDenied(es: EncryptedService, policy: KeyPolicy, pods: readonly PodIdentity[]): Problem | undefined {
  const namespace = es.metadata.namespace ?? '';
  const declared = es.spec.workload.serviceAccountName;
  const selected = pods.filter((p) => p.metadata?.namespace === namespace
    && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed'
    && matchesSelector(es.spec.workload.selector, p.metadata?.labels));
  const others = selected.filter((p) => podServiceAccount(p) !== declared);
  if (others.length > 0) {
    const shown = others.slice(0, 5).map((p) => `${p.metadata?.name} runs as ${podServiceAccount(p)}`).join(', ');
    const more = others.length > 5 ? ` and ${others.length - 5} more` : '';
    return {
      reason: Reasons.IdentityMismatch,
      message: `selected pods do not run as the declared service account ${declared} (${shown}${more}): the certificate would claim ${spiffeId(es)} for them; fix spec.workload.serviceAccountName or the pods`,
    };
  }
  const restricted = (policy.spec.allowed?.serviceAccounts?.length ?? 0) > 0;
  if (selected.length === 0 && restricted) {
    return {
      reason: Reasons.WorkloadNotFound,
      message: `no pod matches spec.workload.selector yet: KeyPolicy ${policyName(policy)} restricts service accounts, so the certificate for ${spiffeId(es)} is issued once selected pods run as ${declared}`,
    };
  }
  return undefined;
}

/**
 * What the Pod cache keeps of a pod: every pod of the cluster is watched, so each costs a few
 * fields instead of its whole spec and status.
 */
export function podIdentityOf(obj: KubernetesObject): KubernetesObject & PodIdentity {
  const pod = obj as KubernetesObject & PodIdentity;
  const m = pod.metadata ?? {};
  return {
    apiVersion: pod.apiVersion ?? 'v1',
    kind: pod.kind ?? 'Pod',
    metadata: {
      name: m.name ?? '', namespace: m.namespace ?? '', resourceVersion: obj.metadata?.resourceVersion ?? '',
      ...(m.labels ? { labels: m.labels } : {}),
    },
    spec: pod.spec?.serviceAccountName ? { serviceAccountName: pod.spec.serviceAccountName } : {},
    status: pod.status?.phase ? { phase: pod.status.phase } : {},
  } as KubernetesObject & PodIdentity;
}
