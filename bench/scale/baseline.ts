// The limit the operator is measured against: the children the operator would create, rendered
// by the same builders (`lockstep render`), applied by a bare concurrent server-side-apply client,
// then cert-manager issuing every Certificate. The local cluster runs cert-manager without its
// built-in approver, so the bench approves each request itself, as that approver would.
import type * as k8s from '@kubernetes/client-node';
import { renderServices } from '../../operator/cli/render.js';
import { condition, isReady, mapLimit, type Cluster, type ClientLimits } from './kube.js';
import { encryptedServices, keyPolicies, namespaces, RUN_LABEL, type Layout } from './fixtures.js';

export interface BaselineResult {
  readonly objects: number;
  readonly applyMs: number;
  readonly totalMs: number;
}

/** What the operator would write for the layout's services (no trust bundle: it needs the CA's roots). */
export function baselineChildren(layout: Layout): k8s.KubernetesObject[] {
  const { objects, warnings } = renderServices([...keyPolicies(layout), ...encryptedServices(layout)], 'ClusterIssuer/lockstep-ca');
  if (warnings.length > 0) throw new Error(`render warned: ${warnings.slice(0, 3).join('; ')}`);
  return objects.map((o) => ({ ...o, metadata: { ...o.metadata, labels: { ...o.metadata?.labels, [RUN_LABEL]: layout.runId } } }));
}

/** Approves every CertificateRequest in the layout's namespaces that has no decision yet. */
async function approveAll(cluster: Cluster, layout: Layout): Promise<() => Promise<void>> {
  const inRun = (cr: k8s.KubernetesObject): boolean => (cr.metadata?.namespace ?? '').startsWith(`${layout.prefix}-`);
  const requests = await cluster.cache('certificaterequests', { group: 'cert-manager.io', version: 'v1', plural: 'certificaterequests' });
  const approving = new Set<string>();
  const approve = (cr: k8s.KubernetesObject): void => {
    const key = `${cr.metadata?.namespace}/${cr.metadata?.name}`;
    if (!inRun(cr) || approving.has(key) || condition(cr, 'Approved') || condition(cr, 'Denied')) return;
    approving.add(key);
    const conditions = [...((cr as { status?: { conditions?: object[] } }).status?.conditions ?? []),
      { type: 'Approved', status: 'True', reason: 'bench', message: 'approved by make bench-scale (baseline)', lastTransitionTime: new Date().toISOString() }];
    // List items of a JSON list may come without their kind.
    cluster.http.mergePatchStatus({ ...cr, apiVersion: 'cert-manager.io/v1', kind: 'CertificateRequest' }, { metadata: { resourceVersion: cr.metadata?.resourceVersion }, status: { conditions } })
      // A conflict means the request changed: its next event tries again.
      .catch(() => undefined)
      .finally(() => approving.delete(key));
  };
  const off = requests.addHandlers({ add: approve, update: approve });
  return async () => {
    off();
    await requests.stop();
  };
}

export async function runBaseline(cluster: Cluster, layout: Layout, limits: ClientLimits, timeoutMs: number): Promise<BaselineResult> {
  const children = baselineChildren(layout);
  await mapLimit(namespaces(layout), limits.concurrency, (ns) => cluster.apply(ns));
  const stopApprover = await approveAll(cluster, layout);
  const certificates = await cluster.cache('certificates', { group: 'cert-manager.io', version: 'v1', plural: 'certificates' }, `${RUN_LABEL}=${layout.runId}`);
  try {
    const wanted = children.filter((c) => c.kind === 'Certificate').length;
    const t0 = Date.now();
    await cluster.applyAll(children, limits);
    const applyMs = Date.now() - t0;
    const deadline = t0 + timeoutMs;
    while (certificates.list().filter(isReady).length < wanted) {
      if (Date.now() > deadline) throw new Error(`baseline: ${certificates.list().filter(isReady).length}/${wanted} Certificates Ready after ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return { objects: children.length, applyMs, totalMs: Date.now() - t0 };
  } finally {
    await certificates.stop();
    await stopApprover();
  }
}
