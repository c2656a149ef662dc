import { describe, expect, it } from '@jest/globals';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCrds } from './crds.js';
import { clusterRules, leaderElectionRules, toPolicyRules, type ExplainedRule } from './rbac.js';
import { renderInstall } from './render.js';
import { fileAt, findObject, fixtureCrds, objectsIn, type K8sObject } from './test-support.js';

const allRules: readonly ExplainedRule[] = [...clusterRules, ...leaderElectionRules];
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

function grants(rules: readonly ExplainedRule[], group: string, resource: string, verb: string): boolean {
  return rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && (r.verbs as readonly string[]).includes(verb));
}

describe('RBAC rules as data', () => {
  it('gives every rule a reason', () => {
    for (const rule of allRules) {
      expect(rule.why.trim().length).toBeGreaterThan(30);
    }
  });

  it('uses no wildcards and no privilege-escalating or bulk verbs', () => {
    const forbiddenVerbs = ['*', 'escalate', 'bind', 'impersonate', 'deletecollection'];
    for (const rule of allRules) {
      expect(rule.verbs.length).toBeGreaterThan(0);
      expect(rule.resources.length).toBeGreaterThan(0);
      for (const verb of rule.verbs) expect(forbiddenVerbs).not.toContain(verb);
      for (const value of [...rule.apiGroups, ...rule.resources]) expect(value).not.toContain('*');
    }
  });

  it('grants each group/resource pair in one rule per role only, so each table has one reason per permission', () => {
    for (const rules of [clusterRules, leaderElectionRules]) {
    const seen = new Set<string>();
    for (const rule of rules) {
      for (const group of rule.apiGroups) {
        for (const resource of rule.resources) {
          const key = `${group}/${resource}`;
          expect(seen.has(key)).toBe(false);
          seen.add(key);
        }
      }
    }
    }
  });

  it('grants Lease access only through the namespaced Role', () => {
    expect(clusterRules.some((r) => r.resources.includes('leases'))).toBe(false);
    expect(grants(leaderElectionRules, 'coordination.k8s.io', 'leases', 'update')).toBe(true);
  });

  it('never updates StorageClasses, whose parameters are immutable', () => {
    expect(grants(clusterRules, 'storage.k8s.io', 'storageclasses', 'update')).toBe(false);
    expect(grants(clusterRules, 'storage.k8s.io', 'storageclasses', 'delete')).toBe(true);
  });

  it('covers exactly the CRDs in crds/: the resource, its status and its finalizers', () => {
    const plurals = loadCrds(join(repoRoot, 'crds'))
      .filter((crd) => crd.spec.group === 'lockstep.dev')
      .map((crd) => crd.spec.names.plural)
      .sort();
    expect(plurals.length).toBeGreaterThan(0);
    for (const plural of plurals) {
      expect(grants(clusterRules, 'lockstep.dev', plural, 'watch')).toBe(true);
      expect(grants(clusterRules, 'lockstep.dev', `${plural}/status`, 'patch')).toBe(true);
      expect(grants(clusterRules, 'lockstep.dev', `${plural}/finalizers`, 'update')).toBe(true);
    }
    const granted = new Set(
      clusterRules
        .filter((r) => r.apiGroups.includes('lockstep.dev'))
        .flatMap((r) => r.resources.map((res) => res.split('/')[0] ?? res)),
    );
    expect([...granted].sort()).toEqual(plurals);
  });
});

describe('rendered RBAC', () => {
  const files = renderInstall({ crds: fixtureCrds(), version: '0.0.0' });
  const objects = objectsIn(fileAt(files, 'manifests/rbac.yaml'));
  const rulesOf = (o: K8sObject): unknown => o['rules'];

  it('grants exactly the documented rules, cluster-wide and in the operator namespace', () => {
    const clusterRole = findObject(objects, 'ClusterRole', 'lockstep-operator');
    expect(clusterRole.metadata.namespace).toBeUndefined();
    expect(rulesOf(clusterRole)).toEqual(toPolicyRules(clusterRules));

    const role = findObject(objects, 'Role');
    expect(role.metadata.namespace).toBe('lockstep-system');
    expect(rulesOf(role)).toEqual(toPolicyRules(leaderElectionRules));
  });

  it('binds both roles to the operator ServiceAccount', () => {
    const sa = findObject(objects, 'ServiceAccount');
    expect(sa.metadata).toMatchObject({ name: 'lockstep-operator', namespace: 'lockstep-system' });
    const subject = { kind: 'ServiceAccount', name: 'lockstep-operator', namespace: 'lockstep-system' };

    const crb = findObject(objects, 'ClusterRoleBinding') as K8sObject & { roleRef: unknown; subjects: unknown };
    expect(crb.metadata.namespace).toBeUndefined();
    expect(crb.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'lockstep-operator' });
    expect(crb.subjects).toEqual([subject]);

    const rb = findObject(objects, 'RoleBinding') as K8sObject & { roleRef: { kind: string; name: string }; subjects: unknown };
    expect(rb.metadata.namespace).toBe('lockstep-system');
    expect(rb.roleRef.kind).toBe('Role');
    expect(rb.roleRef.name).toBe(findObject(objects, 'Role').metadata.name);
    expect(rb.subjects).toEqual([subject]);
  });

  it('documents every rule with its reason in docs/rbac.md', () => {
    const doc = fileAt(files, 'docs/rbac.md').content.split('## ValidatingAdmissionPolicies')[0] ?? '';
    const tableRows = doc.split('\n').filter((line) => line.startsWith('| `'));
    expect(tableRows).toHaveLength(allRules.length);
    for (const rule of allRules) {
      expect(tableRows.some((row) => row.includes(rule.why) && rule.resources.every((r) => row.includes(`\`${r}\``)))).toBe(true);
    }
  });
});
