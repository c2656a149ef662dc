// Spec change → NetworkPolicy, one service at a time: the peer of each sampled service moves to
// another service of its namespace. End to end is from the client's apply until a watch on
// NetworkPolicies shows the new peer; the operator's own figure is lockstep_event_to_write_seconds
// for NetworkPolicy writes, read as the difference of two scrapes around the changes.
import type * as k8s from '@kubernetes/client-node';
import type { Informer } from '../../operator/runtime/informer.js';
import { encryptedService, namespaceName, otherPeer, serviceName, type Layout } from './fixtures.js';
import { sleep, waitUntil, type Cluster } from './kube.js';

export interface LatencyResult {
  /** End to end, ms. */
  readonly endToEnd: number[];
  /** From the apply until the bench's own watch of EncryptedServices delivers the change, ms:
   * what the API server and a watch cost before any operator sees the change. */
  readonly delivered: number[];
}

/** Services to change: spread over namespaces, each with a third member to move to. */
export function sampleServices(layout: Layout, count: number): Array<{ index: number; peer: number }> {
  const out: Array<{ index: number; peer: number }> = [];
  for (let i = 0; i < layout.services && out.length < count; i++) {
    const peer = otherPeer(layout, i);
    if (peer !== undefined) out.push({ index: i, peer });
  }
  return out;
}

/** The allow policy of service `name` admits pods of `peer` (its selector names the peer's pods). */
export const admits = (np: k8s.KubernetesObject, peer: string): boolean =>
  JSON.stringify((np as { spec?: unknown }).spec ?? {}).includes(`"${peer}"`);

export async function measureSpecChanges(
  cluster: Cluster, layout: Layout, services: Informer, count: number, timeoutMs: number,
): Promise<LatencyResult> {
  const samples = sampleServices(layout, count);
  const policies = await cluster.cache('networkpolicies', { group: 'networking.k8s.io', version: 'v1', plural: 'networkpolicies' }, 'app.kubernetes.io/managed-by=lockstep');
  const endToEnd: number[] = [];
  const delivered: number[] = [];
  try {
    for (const { index, peer } of samples) {
      const ns = namespaceName(layout, index % layout.namespaces);
      const peerName = serviceName(peer);
      const changed = (): boolean => policies.list(ns).some((np) => np.metadata?.name?.startsWith(`${serviceName(index)}-`) && admits(np, peerName));
      const seen = (): boolean => admits(services.get(ns, serviceName(index)) ?? {}, peerName);
      const t0 = Date.now();
      await cluster.apply(encryptedService(layout, index, peer));
      let deliveredAt: number | undefined;
      await waitUntil(`the NetworkPolicy of ${ns}/${serviceName(index)} to admit ${peerName}`, () => {
        if (deliveredAt === undefined && seen()) deliveredAt = Date.now();
        return changed();
      }, timeoutMs, 2);
      endToEnd.push(Date.now() - t0);
      delivered.push((deliveredAt ?? Date.now()) - t0);
      // Let the change's follow-up (status write, its own watch events) pass before the next one.
      await sleep(500);
    }
  } finally {
    await policies.stop();
  }
  return { endToEnd, delivered };
}
