// References that exist but are not what the spec expects, found at reconcile time (no schema can
// see them): an issuer of the other kind, a port the peer does not declare, a workload another
// EncryptedService already claims, an object someone else made at a name Lockstep derives. Pure:
// each returns the Problem to report, with what to fix, or undefined.
import type { KubernetesObject } from '@kubernetes/client-node';
import { Reasons, serviceNameOf, type EncryptedService, type IssuerRef } from '../api/v1alpha1/index.js';
import { matchesSelector } from '../kube/label-selector.js';
import type { PodIdentity } from './claims.js';
import type { UnknownPorts } from './network-policy.js';
import type { Problem } from './policy.js';

/** The issuer is missing; `otherKind` says whether one of that name exists as the other kind. */
export function issuerNotFound(issuer: Required<IssuerRef>, namespace: string, otherKind: boolean): Problem {
  const where = issuer.kind === 'Issuer' ? ` in namespace ${namespace}` : '';
  const hint = !otherKind ? 'create it or change the issuer'
    : issuer.kind === 'Issuer'
      ? `a ClusterIssuer ${issuer.name} exists: set spec.transit.issuerRef.kind: ClusterIssuer to use it`
      : `an Issuer ${issuer.name} exists in namespace ${namespace}: set spec.transit.issuerRef.kind: Issuer to use it`;
  return { reason: Reasons.IssuerNotFound, message: `${issuer.kind} ${issuer.name} does not exist${where}: ${hint}` };
}

/** Port names a peer rule asks for that its target service does not declare (they open nothing). */
export function unknownPeerPorts(unknown: readonly UnknownPorts[]): Problem | undefined {
  if (unknown.length === 0) return undefined;
  const each = unknown.map((u) => `${u.target.namespace}/${u.target.name} declares no port ${u.names.join(', ')} (access.${u.direction}[${u.index}])`);
  return {
    reason: Reasons.PeerPortNotFound,
    message: `${each.join('; ')}: name a port from that EncryptedService's spec.ports; no rule opens an undeclared port`,
  };
}

const sameSelector = (a: EncryptedService, b: EncryptedService) =>
  JSON.stringify(a.spec.workload.selector) === JSON.stringify(b.spec.workload.selector);

/**
 * Another EncryptedService of the namespace that selects the same pods: two certificates, two
 * identities and the union of two access policies for one workload. Equal selectors always
 * collide; different ones collide on a pod both select.
 */
export function workloadClaimedTwice(es: EncryptedService, others: readonly EncryptedService[], pods: readonly PodIdentity[]): Problem | undefined {
  const mine = (p: PodIdentity) => matchesSelector(es.spec.workload.selector, p.metadata?.labels);
  for (const other of others) {
    if (other.metadata.uid === es.metadata.uid || other.metadata.name === es.metadata.name || other.metadata.deletionTimestamp) continue;
    const shared = sameSelector(es, other) ? undefined : pods.find((p) => mine(p) && matchesSelector(other.spec.workload.selector, p.metadata?.labels));
    if (!sameSelector(es, other) && !shared) continue;
    const what = shared ? `pod ${shared.metadata?.name ?? ''} is selected by both` : 'its workload.selector is the same';
    return {
      reason: Reasons.WorkloadClaimedTwice,
      message: `EncryptedService ${other.metadata.name ?? ''} selects the same pods (${what}): keep one EncryptedService per workload, or make the selectors disjoint`,
    };
  }
  return undefined;
}

/** An object at a name Lockstep derives that it did not make: reported, never taken over. */
export function nameTaken(kind: string, name: string, consequence: string): Problem {
  return {
    reason: Reasons.NameTaken,
    message: `${kind} ${name} exists and was not made by Lockstep: ${consequence}; delete or rename it`,
  };
}

/** A Kubernetes Service as far as the port check reads it (the cache keeps nothing else). */
export interface ServicePorts {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: { ports?: { name?: string; port: number; targetPort?: number | string }[] };
}

export function servicePortsOf(obj: KubernetesObject): KubernetesObject & ServicePorts {
  const svc = obj as KubernetesObject & ServicePorts;
  const m = svc.metadata ?? {};
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name: m.name ?? '', namespace: m.namespace ?? '', resourceVersion: m.resourceVersion ?? '' },
    spec: { ports: (svc.spec?.ports ?? []).map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}) })) },
  };
}

/**
 * TLS ports the service's Kubernetes Service does not route to: no Service port reaches the pod
 * port (targetPort, else port) by number or name. A missing Service is not reported here: it may
 * come later, and verification reports a service without endpoints.
 */
export function portsNotExposed(es: EncryptedService, service: ServicePorts | undefined): Problem | undefined {
  if (!service) return undefined;
  const routes = service.spec?.ports ?? [];
  const reaches = (name: string, port: number) => routes.some((r) => (r.targetPort ?? r.port) === port || r.targetPort === name);
  const lacking = es.spec.ports.filter((p) => !reaches(p.name, p.port));
  if (lacking.length === 0) return undefined;
  const name = serviceNameOf(es);
  return {
    reason: Reasons.PortNotExposed,
    message: `Service ${name} routes to no pod port ${lacking.map((p) => `${p.port} (${p.name})`).join(', ')} of spec.ports: add the port to Service ${name} (targetPort ${lacking[0]!.port}) or fix spec.ports`,
  };
}
