// A tenant of a shared cluster, as the tenancy e2e tests attack with: a user bound in one
// namespace to the built-in `edit` role plus full rights on Lockstep's kinds there, and nothing
// cluster-wide. Requests go through `kubectl --as`, so the real API server authorizes them.
import { spawnSync } from 'node:child_process';
import { stringify } from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';
import { eventually, type Clients } from './cluster.js';
import { repoRoot } from './manifests.js';

/**
 * What cert-manager's Helm chart aggregates into the built-in edit and admin roles: with it, a
 * tenant may make Certificates and raw CertificateRequests in its namespace.
 */
export const CERT_MANAGER_EDIT: KubernetesObject = {
  apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole',
  metadata: { name: 'lockstep-e2e-cert-manager-edit', labels: { 'rbac.authorization.k8s.io/aggregate-to-edit': 'true', 'rbac.authorization.k8s.io/aggregate-to-admin': 'true' } },
  rules: [
    { apiGroups: ['cert-manager.io'], resources: ['certificates', 'certificaterequests', 'issuers'], verbs: ['get', 'list', 'watch', 'create', 'delete', 'deletecollection', 'patch', 'update'] },
  ],
} as KubernetesObject;

/** Rights on Lockstep's kinds (not their status) that a namespace's owner is given. */
const TENANT_ROLE = 'lockstep-e2e-tenant';

export interface KubectlResult {
  status: number;
  stdout: string;
  stderr: string;
}

export interface Tenant {
  user: string;
  namespace: string;
  /** Runs kubectl as the tenant; never throws, so a test can assert on a refusal. */
  kubectl(args: string[], input?: string): KubectlResult;
  /** Server-side apply of objects as the tenant (field manager `tenant`). */
  apply(...objects: KubernetesObject[]): KubectlResult;
}

/** kubectl as the admin of the e2e cluster, or as `as` when given; never throws. */
export function runKubectl(args: string[], options: { as?: string; input?: string } = {}): KubectlResult {
  const impersonation = options.as ? ['--as', options.as, '--as-group', 'system:authenticated'] : [];
  const run = spawnSync('kubectl', [...impersonation, ...args], {
    cwd: repoRoot, encoding: 'utf8', input: options.input, timeout: 60_000,
  });
  return { status: run.status ?? -1, stdout: run.stdout ?? '', stderr: run.stderr ?? '' };
}

/**
 * Makes `user` a tenant of `namespace`: a RoleBinding to `edit` and one to the Lockstep kinds.
 * The ClusterRole for the kinds is shared by all tenants and only ever bound per namespace.
 */
export async function createTenant(c: Clients, namespace: string, user = `tenant-${namespace}`): Promise<Tenant> {
  await c.objects.patch({
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: TENANT_ROLE },
    rules: [{
      apiGroups: ['lockstep.dev'],
      resources: ['encryptedservices', 'keypolicies', 'rotationschedules'],
      verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'],
    }],
  } as KubernetesObject, undefined, undefined, 'lockstep-e2e', true, 'application/apply-patch+yaml');
  for (const [name, role] of [[`${user}-edit`, 'edit'], [`${user}-lockstep`, TENANT_ROLE]]) {
    await c.objects.patch({
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    } as KubernetesObject, undefined, undefined, 'lockstep-e2e', true, 'application/apply-patch+yaml');
  }
  const kubectl = (args: string[], input?: string): KubectlResult => runKubectl(args, { as: user, input });
  return {
    user,
    namespace,
    kubectl,
    apply: (...objects) => kubectl(
      ['apply', '--server-side', '--field-manager', 'tenant', '-f', '-'],
      objects.map((o) => stringify(o)).join('---\n'),
    ),
  };
}

/** A tenant that also holds cert-manager's aggregated rights (CERT_MANAGER_EDIT), once they are in effect. */
export async function createCertManagerTenant(c: Clients, namespace: string): Promise<Tenant> {
  await c.objects.patch(CERT_MANAGER_EDIT, undefined, undefined, 'lockstep-e2e', true, 'application/apply-patch+yaml');
  const tenant = await createTenant(c, namespace);
  // The aggregation controller folds the rule into `edit` asynchronously.
  await eventually('tenant may create cert-manager objects', async () =>
    (['certificates', 'certificaterequests'].every((r) => tenant.kubectl(['auth', 'can-i', 'create', `${r}.cert-manager.io`, '-n', namespace]).stdout.trim() === 'yes') ? true : undefined));
  return tenant;
}

