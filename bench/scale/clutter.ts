// Objects Lockstep does not own: small Secrets and ConfigMaps in a namespace of their own. An
// operator whose caches hold only what it generated keeps the same memory with them around.
import type * as k8s from '@kubernetes/client-node';
import { mapLimit, type Cluster } from './kube.js';
import { RUN_LABEL } from './fixtures.js';

export async function addClutter(cluster: Cluster, namespace: string, runId: string, count: number, concurrency: number): Promise<number> {
  await cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { [RUN_LABEL]: runId } } });
  const t0 = Date.now();
  const indexes = Array.from({ length: count }, (_, i) => i);
  await mapLimit(indexes, concurrency, async (i) => {
    const name = `unrelated-${String(i).padStart(6, '0')}`;
    const metadata = { name, namespace, labels: { app: 'unrelated' } };
    // Half Secrets, half ConfigMaps; a value of a few dozen bytes, like a small application setting.
    await cluster.http.create(i % 2 === 0
      ? { apiVersion: 'v1', kind: 'Secret', metadata, stringData: { value: `not-a-secret-${i}` } } as k8s.KubernetesObject
      : { apiVersion: 'v1', kind: 'ConfigMap', metadata, data: { value: `setting-${i}` } } as k8s.KubernetesObject);
  });
  return Date.now() - t0;
}
