// The tenant the tenancy tests attack with is realistic: it can do what a namespace's owner does
// (edit, Lockstep kinds) in its own namespace, and none of it elsewhere or cluster-wide. Without
// this, a refusal in a tenancy test could come from a tenant too weak to try the attack.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { clients } from './harness/cluster.js';
import { installCrds } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { createTenant, type Tenant } from './harness/tenant.js';

const c = clients();
let own = '';
let other = '';
let tenant: Tenant;

beforeAll(async () => {
  installCrds();
  own = await createTestNamespace(c, 'e2e-tenant');
  other = await createTestNamespace(c, 'e2e-tenant-other');
  tenant = await createTenant(c, own);
});

afterAll(async () => {
  await deleteTestNamespace(c, own);
  await deleteTestNamespace(c, other);
});

const policy = (namespace: string) => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'p', namespace }, spec: {},
});

it('a tenant writes Secrets, Deployments and Lockstep kinds in its own namespace', () => {
  for (const args of [
    ['auth', 'can-i', 'create', 'secrets', '-n', own],
    ['auth', 'can-i', 'patch', 'deployments.apps', '-n', own],
  ]) {
    expect(tenant.kubectl(args).stdout.trim()).toBe('yes');
  }
  const applied = tenant.apply(policy(own));
  expect(applied.stderr).toBe('');
  expect(applied.status).toBe(0);
});

it('a tenant can do none of it in another namespace or cluster-wide', () => {
  const refused = tenant.apply(policy(other));
  expect(refused.status).not.toBe(0);
  expect(refused.stderr).toMatch(/forbidden/i);
  for (const args of [
    ['auth', 'can-i', 'create', 'secrets', '-n', other],
    ['auth', 'can-i', 'patch', 'clusterissuers.cert-manager.io'],
    ['auth', 'can-i', 'create', 'storageclasses.storage.k8s.io'],
    ['auth', 'can-i', 'patch', 'namespaces'],
    ['auth', 'can-i', 'list', 'secrets', '-A'],
  ]) {
    expect(`${args.join(' ')}: ${tenant.kubectl(args).stdout.trim()}`).toBe(`${args.join(' ')}: no`);
  }
});
