// The NetworkPolicies that enforce spec.access: who may reach the service's pods, on which TLS
// ports, and (optionally) where those pods may connect to. Pure: the reconciler resolves peer
// EncryptedServices through its cache and applies what this returns.
//
// Two policies per service, always both, so the set of generated names never depends on the
// spec and drift handling stays trivial:
//   <name>-default-deny  selects the workload and allows nothing (Ingress, plus Egress when
//                        egress.restrict). It alone closes the pods even if the allow policy is
//                        deleted by hand, because NetworkPolicies are additive.
//   <name>-allow         one ingress rule per resolved peer on its TLS ports, one for the
//                        operator's own verification probes (TLS ports only); with
//                        egress.restrict, one egress rule per destination plus DNS.
// Empty rule lists are omitted rather than sent as []: the API server drops empty lists, so a
// `[]` would never match the live object and every reconcile would re-apply it.
import type {
  V1LabelSelector, V1NetworkPolicy, V1NetworkPolicyEgressRule, V1NetworkPolicyIngressRule, V1NetworkPolicyPeer,
  V1NetworkPolicyPort, V1NetworkPolicySpec, V1OwnerReference,
} from '@kubernetes/client-node';
import type { EncryptedService, LabelSelector, Peer, TLSPort } from '../api/v1alpha1/index.js';
import { childLabels } from './children.js';

// NetworkPolicy as it is on the wire. client-node's model calls the ingress rule's `from` field
// `_from` (a reserved word for its generator) and only its ObjectSerializer maps it back, so the
// model type cannot describe the JSON these builders return.
export type NetworkPolicyIngressRule = Omit<V1NetworkPolicyIngressRule, '_from'> & { from?: V1NetworkPolicyPeer[] };
export type NetworkPolicySpec = Omit<V1NetworkPolicySpec, 'ingress'> & { ingress?: NetworkPolicyIngressRule[] };
export type NetworkPolicy = Omit<V1NetworkPolicy, 'spec'> & { spec?: NetworkPolicySpec };

/** An EncryptedService by namespace and name. */
export interface ServiceRef {
  namespace: string;
  name: string;
}

export type PeerDirection = 'ingress' | 'egress';

/** A declared peer turned into NetworkPolicy terms. */
export interface ResolvedPeer {
  direction: PeerDirection;
  /** Position in spec.access.ingress or spec.access.egress.to; rules follow the spec's order. */
  index: number;
  /** The EncryptedService the peer names; absent for selector peers. */
  service?: ServiceRef;
  peer: V1NetworkPolicyPeer;
  /** Ports the rule opens. Undefined opens every port: only an egress selector peer that names
   * no ports (the CRD documents that ports are how selector destinations are narrowed). */
  ports?: V1NetworkPolicyPort[];
}

/** Port names a peer asked for that the target EncryptedService does not declare. */
export interface UnknownPorts {
  direction: PeerDirection;
  index: number;
  /** The EncryptedService whose spec.ports lacks the names (this one for ingress peers). */
  target: ServiceRef;
  names: string[];
}

export interface PeerResolution {
  peers: ResolvedPeer[];
  /** Service peers that do not exist. They contribute no rule: their traffic stays denied. */
  missing: ServiceRef[];
  /** Unknown port names are left out of the rule; a peer left with no port gets no rule. */
  unknownPorts: UnknownPorts[];
}

export type EncryptedServiceLookup = (namespace: string, name: string) => EncryptedService | undefined;

/** Label the API server keeps equal to every namespace's name, so relabelling cannot spoof it. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** Where cluster DNS runs: the kube-dns pods (CoreDNS keeps the k8s-app=kube-dns label). Pinned to
 * kube-system so that a pod labelled k8s-app=kube-dns elsewhere cannot receive port-53 traffic. */
export const CLUSTER_DNS = { namespace: 'kube-system', podLabels: { 'k8s-app': 'kube-dns' } } as const;

/**
 * Where the operator's verification probes come from: its pods, by namespace and labels. On a
 * cluster that enforces NetworkPolicies, the default-deny policy would otherwise drop every probe
 * and every rotation would fail verification and roll back.
 */
export interface ProbeSource {
  namespace: string;
  podLabels: Record<string, string>;
}

export function defaultDenyPolicyName(encryptedServiceName: string): string {
  return `${encryptedServiceName}-default-deny`;
}

export function allowPolicyName(encryptedServiceName: string): string {
  return `${encryptedServiceName}-allow`;
}

interface DeclaredPeer {
  direction: PeerDirection;
  index: number;
  peer: Peer;
}

function namespaceOf(es: EncryptedService): string {
  const namespace = es.metadata.namespace;
  if (!namespace) throw new Error(`EncryptedService ${es.metadata.name ?? ''} has no namespace`);
  return namespace;
}

function nameOf(es: EncryptedService): string {
  const name = es.metadata.name;
  if (!name) throw new Error('EncryptedService has no metadata.name');
  return name;
}

// egress.to only takes effect with restrict (the CRD rejects it otherwise), so unrestricted
// egress peers are neither resolved nor watched.
function declaredPeers(es: EncryptedService): DeclaredPeer[] {
  const access = es.spec.access ?? {};
  const ingress = (access.ingress ?? []).map((peer, index) => ({ direction: 'ingress' as const, index, peer }));
  const egress = access.egress?.restrict
    ? (access.egress.to ?? []).map((peer, index) => ({ direction: 'egress' as const, index, peer }))
    : [];
  return [...ingress, ...egress];
}

function serviceRefOf(es: EncryptedService, peer: Peer): ServiceRef | undefined {
  if (!peer.service) return undefined;
  return { namespace: peer.service.namespace ?? namespaceOf(es), name: peer.service.name };
}

function refKey(ref: ServiceRef): string {
  return `${ref.namespace}/${ref.name}`;
}

function uniqueRefs(refs: ServiceRef[]): ServiceRef[] {
  const seen = new Map<string, ServiceRef>();
  for (const ref of refs) if (!seen.has(refKey(ref))) seen.set(refKey(ref), ref);
  return [...seen.values()];
}

/** The EncryptedServices this one names as peers: when one of them changes, this one's policies must be rebuilt. */
export function peerServiceRefs(es: EncryptedService): ServiceRef[] {
  return uniqueRefs(declaredPeers(es).flatMap(({ peer }) => serviceRefOf(es, peer) ?? []));
}

// Copies a user's selector without empty members: the API server omits an empty matchLabels or
// matchExpressions, and an empty member in the desired object would never match the live one.
// An empty selector ({}) is kept: it means "everything" and is stored as {}.
export function copySelector(selector: LabelSelector): V1LabelSelector {
  const out: V1LabelSelector = {};
  if (selector.matchLabels && Object.keys(selector.matchLabels).length > 0) out.matchLabels = { ...selector.matchLabels };
  if (selector.matchExpressions && selector.matchExpressions.length > 0) {
    out.matchExpressions = selector.matchExpressions.map((e) => ({
      key: e.key,
      operator: e.operator,
      ...(e.values && e.values.length > 0 ? { values: [...e.values] } : {}),
    }));
  }
  return out;
}

function copyPeer(peer: V1NetworkPolicyPeer): V1NetworkPolicyPeer {
  return structuredClone(peer);
}

function tlsPorts(declared: TLSPort[], names: string[] | undefined): { ports: V1NetworkPolicyPort[]; unknown: string[] } {
  const wanted = names ?? declared.map((p) => p.name);
  const numbers = new Set<number>();
  const unknown: string[] = [];
  for (const name of wanted) {
    const port = declared.find((p) => p.name === name);
    if (port) numbers.add(port.port);
    else if (!unknown.includes(name)) unknown.push(name);
  }
  // Sorted so a reordered spec.ports does not change the policy.
  const ports = [...numbers].sort((a, b) => a - b).map((port) => ({ protocol: 'TCP', port }));
  return { ports, unknown };
}

function namedPorts(names: string[]): V1NetworkPolicyPort[] {
  return [...new Set(names)].sort().map((port) => ({ protocol: 'TCP', port }));
}

// A same-namespace peer is written as a bare podSelector, which the API defines as "this
// namespace" and which needs no namespace label; other namespaces are pinned by their name label.
function servicePeer(ownNamespace: string, ref: ServiceRef, target: EncryptedService): V1NetworkPolicyPeer {
  const podSelector = copySelector(target.spec.workload.selector);
  if (ref.namespace === ownNamespace) return { podSelector };
  return { podSelector, namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: ref.namespace } } };
}

function selectorPeer(peer: Peer): V1NetworkPolicyPeer {
  const out: V1NetworkPolicyPeer = {};
  if (peer.podSelector) out.podSelector = copySelector(peer.podSelector);
  if (peer.namespaceSelector) out.namespaceSelector = copySelector(peer.namespaceSelector);
  return out;
}

/**
 * Resolves every declared peer (ingress, and egress.to when egress.restrict) to a NetworkPolicy
 * peer and ports. Service peers resolve to the named EncryptedService's workload selector; a
 * service that does not exist is reported in `missing` and gets no rule (fail closed). Port
 * names of ingress peers name this service's spec.ports; port names of egress service peers name
 * the destination's spec.ports, and of egress selector peers the destination's container ports.
 */
export function resolvePeers(es: EncryptedService, lookup: EncryptedServiceLookup): PeerResolution {
  const ownNamespace = namespaceOf(es);
  const self: ServiceRef = { namespace: ownNamespace, name: nameOf(es) };
  const peers: ResolvedPeer[] = [];
  const missing: ServiceRef[] = [];
  const unknownPorts: UnknownPorts[] = [];

  const withPorts = (resolved: ResolvedPeer, target: ServiceRef, declared: TLSPort[], names: string[] | undefined) => {
    const { ports, unknown } = tlsPorts(declared, names);
    if (unknown.length > 0) unknownPorts.push({ direction: resolved.direction, index: resolved.index, target, names: unknown });
    // A rule without ports would open every port, so a peer left with none gets no rule at all.
    if (ports.length > 0) peers.push({ ...resolved, ports });
  };

  for (const { direction, index, peer } of declaredPeers(es)) {
    const ref = serviceRefOf(es, peer);
    if (ref) {
      const target = lookup(ref.namespace, ref.name);
      if (!target) {
        missing.push(ref);
        continue;
      }
      const resolved: ResolvedPeer = { direction, index, service: ref, peer: servicePeer(ownNamespace, ref, target) };
      if (direction === 'ingress') withPorts(resolved, self, es.spec.ports, peer.ports);
      else withPorts(resolved, ref, target.spec.ports, peer.ports);
      continue;
    }
    const resolved: ResolvedPeer = { direction, index, peer: selectorPeer(peer) };
    if (direction === 'ingress') {
      withPorts(resolved, self, es.spec.ports, peer.ports);
    } else if (peer.ports === undefined) {
      peers.push(resolved);
    } else if (peer.ports.length > 0) {
      peers.push({ ...resolved, ports: namedPorts(peer.ports) });
    }
  }
  return { peers, missing: uniqueRefs(missing), unknownPorts };
}

function byIndex(a: ResolvedPeer, b: ResolvedPeer): number {
  return a.index - b.index;
}

function ingressRule(peer: ResolvedPeer): NetworkPolicyIngressRule {
  return { from: [copyPeer(peer.peer)], ...(peer.ports ? { ports: structuredClone(peer.ports) } : {}) };
}

function egressRule(peer: ResolvedPeer): V1NetworkPolicyEgressRule {
  return { to: [copyPeer(peer.peer)], ...(peer.ports ? { ports: structuredClone(peer.ports) } : {}) };
}

function dnsRule(): V1NetworkPolicyEgressRule {
  return {
    to: [{
      namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: CLUSTER_DNS.namespace } },
      podSelector: { matchLabels: { ...CLUSTER_DNS.podLabels } },
    }],
    ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
  };
}

// The operator reaches a service only on its TLS ports: what it verifies is the TLS it serves.
export function probeRule(es: EncryptedService, probes: ProbeSource): NetworkPolicyIngressRule {
  return {
    from: [{
      namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: probes.namespace } },
      podSelector: { matchLabels: { ...probes.podLabels } },
    }],
    ports: tlsPorts(es.spec.ports, undefined).ports,
  };
}

/**
 * The two NetworkPolicies of an EncryptedService (defaults applied): `<name>-default-deny`, then
 * `<name>-allow`. Peers come from resolvePeers; rules follow the spec's order, then the
 * operator's probe rule when `probes` is given, so the same inputs always give the same objects.
 */
export function buildNetworkPolicies(
  es: EncryptedService, resolved: ResolvedPeer[], owner: V1OwnerReference, probes?: ProbeSource,
): NetworkPolicy[] {
  const namespace = namespaceOf(es);
  const name = nameOf(es);
  const egress = es.spec.access?.egress;
  const restrictEgress = egress?.restrict === true;
  const policyTypes = () => (restrictEgress ? ['Ingress', 'Egress'] : ['Ingress']);
  const metadata = (policyName: string) => ({
    name: policyName,
    namespace,
    labels: childLabels(es, 'access'),
    ownerReferences: [{ ...owner }],
  });
  const podSelector = () => copySelector(es.spec.workload.selector);

  const defaultDeny: NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: metadata(defaultDenyPolicyName(name)),
    spec: { podSelector: podSelector(), policyTypes: policyTypes() },
  };

  const ingress = resolved.filter((p) => p.direction === 'ingress').sort(byIndex).map(ingressRule);
  if (probes && es.spec.ports.length > 0) ingress.push(probeRule(es, probes));
  const egressRules = restrictEgress
    ? [
        ...resolved.filter((p) => p.direction === 'egress').sort(byIndex).map(egressRule),
        ...(egress?.allowDNS === false ? [] : [dnsRule()]),
      ]
    : [];
  const allow: NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: metadata(allowPolicyName(name)),
    spec: {
      podSelector: podSelector(),
      policyTypes: policyTypes(),
      ...(ingress.length > 0 ? { ingress } : {}),
      ...(egressRules.length > 0 ? { egress: egressRules } : {}),
    },
  };
  return [defaultDeny, allow];
}
