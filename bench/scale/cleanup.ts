// Everything a run creates is undone, also on Ctrl-C: namespaces go while the operator still runs
// (EncryptedServices and KeyPolicies carry its finalizers), then the operator stops. Should the
// operator be gone first, the finalizers of the run's own objects are lifted so its namespaces can go.
import * as k8s from '@kubernetes/client-node';
import { RUN_LABEL } from './fixtures.js';
import type { Cluster } from './kube.js';

const LOCKSTEP_KINDS = ['encryptedservices', 'keypolicies'];

async function liftFinalizers(cluster: Cluster, namespace: string): Promise<void> {
  for (const plural of LOCKSTEP_KINDS) {
    const list = await cluster.custom.listNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural, namespace })
      .catch(() => ({ items: [] })) as { items: k8s.KubernetesObject[] };
    for (const obj of list.items) {
      if (!obj.metadata?.labels?.[RUN_LABEL] || !obj.metadata.finalizers?.length) continue;
      await cluster.custom.patchNamespacedCustomObject({
        group: 'lockstep.dev', version: 'v1alpha1', plural, namespace, name: obj.metadata.name ?? '', body: { metadata: { finalizers: null } },
      }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)).catch(() => undefined);
    }
  }
}

/** Deletes every namespace labelled by a bench run; `operatorRunning` decides who lifts finalizers. */
export async function removeRunNamespaces(cluster: Cluster, operatorRunning: boolean, timeoutMs: number): Promise<void> {
  const names = await cluster.namespacesWith(RUN_LABEL);
  if (names.length === 0) return;
  if (!operatorRunning) for (const ns of names) await liftFinalizers(cluster, ns);
  try {
    await cluster.deleteNamespaces(names, timeoutMs);
  } catch (err) {
    if (operatorRunning) throw err;
    for (const ns of names) await liftFinalizers(cluster, ns);
    await cluster.deleteNamespaces(names, timeoutMs);
  }
}

/** Runs registered undo steps once, last registered first, on normal exit, error or SIGINT/SIGTERM. */
export class Cleanup {
  private readonly steps: Array<{ what: string; run: () => Promise<void> }> = [];
  private running: Promise<void> | undefined;

  constructor() {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        console.error(`\n${signal}: cleaning up (namespaces, unrelated objects, the operator)…`);
        void this.run().finally(() => process.exit(130));
      });
    }
  }

  add(what: string, run: () => Promise<void>): void {
    this.steps.push({ what, run });
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.splice(0).reverse()) {
        try {
          await step.run();
        } catch (err) {
          console.error(`cleanup: ${step.what} failed: ${(err as Error).message}`);
        }
      }
    })();
    return this.running;
  }
}
