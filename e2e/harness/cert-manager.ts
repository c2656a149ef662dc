// cert-manager on the local control plane (e2e/controlplane/cluster-up.sh), taken away and put
// back as a user would meet it: its CRDs deleted and its controller stopped, then the same CRDs
// (crds.sh), the same controller command line, and the default issuers (issuers.yaml) again.
// Only for a cluster this suite started: its controller is a process recorded in pids/ beside
// the kubeconfig. On a kind cluster (cert-manager in pods) `localCertManager()` is undefined.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { eventually, type Clients } from './cluster.js';
import { repoRoot } from './manifests.js';

const controlplane = join(repoRoot, 'e2e', 'controlplane');
const CM_GROUPS = ['cert-manager.io', 'acme.cert-manager.io'];

export interface LocalCertManager {
  /** The controller's command line, read from /proc while it runs. */
  readonly argv: string[];
  readonly pidFile: string;
  readonly logFile: string;
  /** cert-manager's CRDs as cluster-up.sh applies them (crds.sh output). */
  readonly crds: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const pidOf = (pidFile: string): number | undefined => {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
};

/** The local cluster's cert-manager controller, or undefined when this is not such a cluster. */
export function localCertManager(): LocalCertManager | undefined {
  const kubeconfig = process.env.KUBECONFIG;
  if (!kubeconfig) return undefined;
  const dir = dirname(kubeconfig);
  const pidFile = join(dir, 'pids', 'cert-manager');
  const pid = pidOf(pidFile);
  if (pid === undefined || !alive(pid)) return undefined;
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  const crds = execFileSync('bash', [join(controlplane, 'certmanager', 'crds.sh')], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { argv, pidFile, logFile: join(dir, 'logs', 'cert-manager.log'), crds };
}

export function certManagerRunning(cm: LocalCertManager): boolean {
  const pid = pidOf(cm.pidFile);
  return pid !== undefined && alive(pid);
}

/** SIGTERM, then SIGKILL after 10 s. */
export async function stopCertManager(cm: LocalCertManager): Promise<void> {
  const pid = pidOf(cm.pidFile);
  if (pid === undefined || !alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

/** Starts the controller as cluster-up.sh does (own session, log appended), recording its pid for cluster-down.sh. */
export function startCertManager(cm: LocalCertManager): void {
  if (certManagerRunning(cm)) return;
  const log = openSync(cm.logFile, 'a');
  const child = spawn(cm.argv[0]!, cm.argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  writeFileSync(cm.pidFile, `${child.pid}\n`);
}

async function certManagerCrds(c: Clients): Promise<string[]> {
  const list = await c.apiext.listCustomResourceDefinition();
  return list.items.filter((crd) => CM_GROUPS.includes(crd.spec.group)).map((crd) => crd.metadata?.name ?? '');
}

/** Deletes every cert-manager CRD (and so every cert-manager object) and waits until the API is no longer served. */
export async function deleteCertManagerCrds(c: Clients): Promise<void> {
  for (const name of await certManagerCrds(c)) {
    await c.apiext.deleteCustomResourceDefinition({ name }).catch((err: { code?: number }) => {
      if (err.code !== 404) throw err;
    });
  }
  await eventually('cert-manager CRDs gone and cert-manager.io/v1 not served', async () => {
    if ((await certManagerCrds(c)).length > 0) return undefined;
    try {
      await c.kc.makeApiClient(k8s.CustomObjectsApi).listClusterCustomObject({ group: 'cert-manager.io', version: 'v1', plural: 'clusterissuers' });
      return undefined;
    } catch (err) {
      return (err as { code?: number }).code === 404 ? true : undefined;
    }
  }, 120_000, 500);
}

const kubectl = (args: string[], input?: string): string =>
  execFileSync('kubectl', args, { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 << 20, ...(input !== undefined ? { input } : {}) });

/** Applies the CRDs as cluster-up.sh does and waits until the ones Lockstep uses are Established. */
export function installCertManagerCrds(cm: LocalCertManager): void {
  kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], cm.crds);
  // `kubectl wait` fails at once ("status.conditions accessor error") on a CRD the API server has
  // not written a status for yet: asked again until it has, within the same minute.
  const crds = ['crd/certificates.cert-manager.io', 'crd/certificaterequests.cert-manager.io', 'crd/issuers.cert-manager.io', 'crd/clusterissuers.cert-manager.io'];
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      kubectl(['wait', '--for', 'condition=Established', '--timeout', '60s', ...crds]);
      return;
    } catch (err) {
      if (Date.now() > deadline || !String((err as { stderr?: unknown }).stderr).includes('accessor error')) throw err;
      execFileSync('sleep', ['0.2']);
    }
  }
}

/**
 * The default issuers of the local cluster (issuers.yaml), and the administrator's one approval
 * of the root CA's request that cluster-up.sh gives (a running Lockstep approver may give it first).
 */
export async function restoreDefaultIssuers(c: Clients): Promise<void> {
  kubectl(['apply', '--server-side', '-f', join(controlplane, 'issuers.yaml')]);
  await eventually('ClusterIssuer lockstep-ca Ready', async () => {
    await approveRootRequests(c);
    const issuer = await c.custom.getClusterCustomObject({ group: 'cert-manager.io', version: 'v1', plural: 'clusterissuers', name: 'lockstep-ca' }) as {
      status?: { conditions?: { type: string; status: string }[] };
    };
    return issuer.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ? true : undefined;
  }, 120_000, 500);
}

type Request = { metadata: { name: string; annotations?: Record<string, string> }; status?: { conditions?: { type: string }[] } };

async function approveRootRequests(c: Clients): Promise<void> {
  const ref = { group: 'cert-manager.io', version: 'v1', plural: 'certificaterequests', namespace: 'cert-manager' };
  const list = await c.custom.listNamespacedCustomObject(ref) as { items: Request[] };
  for (const cr of list.items) {
    if (cr.metadata.annotations?.['cert-manager.io/certificate-name'] !== 'lockstep-root-ca') continue;
    if (cr.status?.conditions?.some((x) => x.type === 'Approved' || x.type === 'Denied')) continue;
    const conditions = [...(cr.status?.conditions ?? []), {
      type: 'Approved', status: 'True', reason: 'cluster-up', message: 'root CA of the local cluster, approved by its administrator', lastTransitionTime: new Date().toISOString(),
    }];
    await c.custom.patchNamespacedCustomObjectStatus(
      { ...ref, name: cr.metadata.name, body: { status: { conditions } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    ).catch(() => undefined);
  }
}

/** Puts cert-manager back as cluster-up.sh left it; safe to call whatever state it is in. */
export async function restoreCertManager(c: Clients, cm: LocalCertManager): Promise<void> {
  installCertManagerCrds(cm);
  startCertManager(cm);
  await restoreDefaultIssuers(c);
}
