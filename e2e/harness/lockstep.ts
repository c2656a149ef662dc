// Helpers for tests of Lockstep's own resources on the cluster.
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Condition, EncryptedService, RotationSchedule } from '../../operator/api/v1alpha1/index.js';
import { eventually, type Clients } from './cluster.js';
import { deleteTestNamespace } from './namespace.js';
import { repoRoot } from './manifests.js';

/** Installs (or updates) the CRDs from crds/ and waits until they are Established. */
export function installCrds(): void {
  const run = (...args: string[]) => execFileSync('kubectl', args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  run('apply', '--server-side', '--force-conflicts', '--field-manager=lockstep-e2e', '-f', 'crds/');
  run('wait', '--for', 'condition=Established', '--timeout', '60s', '-f', 'crds/');
}

export async function readService(c: Clients, namespace: string, name: string): Promise<EncryptedService> {
  return (await c.objects.read({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace } })) as unknown as EncryptedService;
}

export function condition(obj: { status?: { conditions?: Condition[] } }, type: string): Condition | undefined {
  return obj.status?.conditions?.find((x) => x.type === type);
}

/** Waits until the service's condition `type` has `status` (and `reason`, when given). */
export async function waitForCondition(
  c: Clients, namespace: string, name: string, type: string, status: 'True' | 'False', reason?: string, timeoutMs = 90_000,
): Promise<EncryptedService> {
  return eventually(`${namespace}/${name} ${type}=${status}${reason ? ` (${reason})` : ''}`, async () => {
    const es = await readService(c, namespace, name);
    const cond = condition(es, type);
    const matches = cond?.status === status && (!reason || cond.reason === reason)
      && es.status?.observedGeneration === es.metadata.generation;
    return matches ? es : undefined;
  }, timeoutMs);
}

/** Server-side apply as a user would (`kubectl apply --server-side`), under the test's manager. */
export async function applyAsUser<T extends KubernetesObject>(c: Clients, obj: T): Promise<T> {
  return c.objects.patch(obj, undefined, undefined, 'lockstep-e2e-user', true, 'application/apply-patch+yaml') as Promise<T>;
}

export async function exists(c: Clients, ref: KubernetesObject): Promise<boolean> {
  try {
    await c.objects.read(ref as KubernetesObject & { metadata: { name: string } });
    return true;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return false;
    throw err;
  }
}

/**
 * Deletes a test namespace and waits (up to a minute) until a running operator has finalized its
 * EncryptedServices and KeyPolicies: stopping the operator earlier would leave their finalizers,
 * and the namespace, behind for good.
 */
export async function deleteNamespaceAndFinalize(c: Clients, namespace: string): Promise<void> {
  await deleteTestNamespace(c, namespace);
  // KeyPolicies wait for their services (their keys are in use until then), so they are last.
  await eventually(`EncryptedServices and KeyPolicies in ${namespace} finalized`, async () => {
    for (const plural of ['encryptedservices', 'keypolicies']) {
      const list = await c.custom.listNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', namespace, plural });
      if ((list as { items: unknown[] }).items.length > 0) return undefined;
    }
    return true;
  }, 60_000).catch(() => undefined);
}

export async function readSchedule(c: Clients, namespace: string, name: string): Promise<RotationSchedule> {
  return (await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'rotationschedules', namespace, name })) as RotationSchedule;
}

/** Waits until `check` holds for the schedule; on timeout prints its last status (the state machine's story). */
export async function waitForSchedule(
  c: Clients, namespace: string, name: string, what: string, check: (rs: RotationSchedule) => boolean, timeoutMs: number,
): Promise<RotationSchedule> {
  let last: RotationSchedule | undefined;
  try {
    return await eventually(`RotationSchedule ${name}: ${what}`, async () => {
      last = await readSchedule(c, namespace, name);
      return check(last) ? last : undefined;
    }, timeoutMs, 250);
  } catch (err) {
    console.log(`RotationSchedule ${name} status when giving up: ${JSON.stringify(last?.status, null, 1)}`);
    throw err;
  }
}

/** Renews a Certificate now, the way `cmctl renew` and cert-manager's trigger controller do: Issuing=True on its status. */
export async function renewCertificate(c: Clients, namespace: string, name: string): Promise<void> {
  const cert = await c.custom.getNamespacedCustomObjectStatus({ group: 'cert-manager.io', version: 'v1', namespace, plural: 'certificates', name }) as {
    status?: { conditions?: Array<Record<string, unknown>> };
  };
  const conditions = (cert.status?.conditions ?? []).filter((x) => x['type'] !== 'Issuing');
  conditions.push({ type: 'Issuing', status: 'True', reason: 'ManuallyTriggered', message: 'e2e: renew', lastTransitionTime: new Date().toISOString() });
  await c.custom.patchNamespacedCustomObjectStatus(
    { group: 'cert-manager.io', version: 'v1', namespace, plural: 'certificates', name, body: { status: { conditions } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
}
