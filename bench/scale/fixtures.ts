// The objects a scale run applies: N EncryptedServices spread over a few namespaces, one KeyPolicy
// per namespace, each service naming the next one in its namespace as its only peer (so a changed
// peer changes exactly one NetworkPolicy). No volumes, no secrets: the run measures the
// certificate, policy and status path, not key wrapping.
import type { KubernetesObject } from '@kubernetes/client-node';

/** Label on everything a run creates, so cleanup (and a later run) can find it. */
export const RUN_LABEL = 'bench.lockstep.dev/run';

export interface Layout {
  readonly services: number;
  readonly namespaces: number;
  /** Distinguishes the baseline's namespaces from the operator run's, and runs from each other. */
  readonly prefix: string;
  readonly runId: string;
}

/** A manifest: what the API server accepts, not a typed model. */
export type Manifest = KubernetesObject & Record<string, unknown>;

export const namespaceName = (layout: Layout, i: number): string => `${layout.prefix}-${String(i).padStart(2, '0')}`;
export const serviceName = (i: number): string => `svc-${String(i).padStart(5, '0')}`;

export function namespaces(layout: Layout): Manifest[] {
  return Array.from({ length: layout.namespaces }, (_, i) => ({
    apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespaceName(layout, i), labels: { [RUN_LABEL]: layout.runId } },
  }));
}

export function keyPolicies(layout: Layout): Manifest[] {
  return Array.from({ length: layout.namespaces }, (_, i) => ({
    apiVersion: 'lockstep.dev/v1alpha1',
    kind: 'KeyPolicy',
    metadata: { name: 'bench', namespace: namespaceName(layout, i), labels: { [RUN_LABEL]: layout.runId } },
    spec: { certificates: { defaultIssuer: { issuerRef: { kind: 'ClusterIssuer', name: 'lockstep-ca' } } } },
  }));
}

/** Which services share namespace `ns` (service i lives in namespace i mod namespaces). */
function membersOf(layout: Layout, ns: number): number[] {
  const out: number[] = [];
  for (let i = ns; i < layout.services; i += layout.namespaces) out.push(i);
  return out;
}

export function encryptedService(layout: Layout, i: number, peer: number): Manifest {
  const name = serviceName(i);
  return {
    apiVersion: 'lockstep.dev/v1alpha1',
    kind: 'EncryptedService',
    metadata: { name, namespace: namespaceName(layout, i % layout.namespaces), labels: { [RUN_LABEL]: layout.runId } },
    spec: {
      workload: { selector: { matchLabels: { 'app.kubernetes.io/name': name } }, serviceAccountName: name },
      ports: [{ name: 'https', port: 8443 }],
      keyPolicyRef: { name: 'bench' },
      access: { ingress: [{ service: { name: serviceName(peer) }, ports: ['https'] }] },
    },
  };
}

/** The peer a service starts with: the next member of its namespace (itself when alone). */
export function initialPeer(layout: Layout, i: number): number {
  const members = membersOf(layout, i % layout.namespaces);
  return members[(members.indexOf(i) + 1) % members.length] ?? i;
}

/** Another member of the namespace than the initial peer, for a spec change; undefined when there is none. */
export function otherPeer(layout: Layout, i: number): number | undefined {
  const members = membersOf(layout, i % layout.namespaces);
  if (members.length < 3) return undefined;
  return members[(members.indexOf(i) + 2) % members.length];
}

export function encryptedServices(layout: Layout): Manifest[] {
  return Array.from({ length: layout.services }, (_, i) => encryptedService(layout, i, initialPeer(layout, i)));
}
