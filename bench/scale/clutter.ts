// Objects Lockstep does not own: small Secrets and ConfigMaps in a namespace of their own. An
// operator whose caches hold only what it generated keeps the same memory with them around.
import { mapLimit, type Cluster } from './kube.js';
import { RUN_LABEL } from './fixtures.js';

export async function addClutter(cluster: Cluster, namespace: string, runId: string, count: number, concurrency: number): Promise<number> {
  await cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { [RUN_LABEL]: runId } } });
  const t0 = Date.now();
  const indexes = Array.from({ length: count }, (_, i) => i);
  await mapLimit(indexes, concurrency, async (i) => {
    const name = `unrelated-${String(i).padStart(6, '0')}`;
    const metadata = { name, labels: { app: 'unrelated' } };
    // Half Secrets, half ConfigMaps; a value of a few dozen bytes, like a small application setting.
    if (i % 2 === 0) await cluster.core.createNamespacedSecret({ namespace, body: { metadata, stringData: { value: `not-a-secret-${i}` } } });
    else await cluster.core.createNamespacedConfigMap({ namespace, body: { metadata, data: { value: `setting-${i}` } } });
  });
  return Date.now() - t0;
}
