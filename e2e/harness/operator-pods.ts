// The operator installed as pods (e2e/node/operator-overlay: manifests/ with the local image), as
// the suites that run it that way find and remove it: other suites run it as a host process, and
// two operators must not act on one cluster at once.
import { execFileSync } from 'node:child_process';
import { eventually, type Clients } from './cluster.js';
import { repoRoot } from './manifests.js';

export const OPERATOR_NS = 'lockstep-system';
const SELECTOR = 'app.kubernetes.io/name=lockstep-operator';

export async function operatorPodCount(c: Clients): Promise<number> {
  return (await c.core.listNamespacedPod({ namespace: OPERATOR_NS, labelSelector: SELECTOR })).items.length;
}

/** Deletes the operator's Deployment and waits (up to a minute) until its pods are gone. */
export async function removeOperatorDeployment(c: Clients): Promise<void> {
  execFileSync('kubectl', ['delete', '--ignore-not-found', '--wait=false', '-n', OPERATOR_NS, 'deployment/lockstep-operator'],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  await eventually('operator pods gone', async () => ((await operatorPodCount(c)) === 0 ? true : undefined), 60_000).catch(() => undefined);
}
