import { describe, expect, it } from '@jest/globals';
import { admissionObjects, OPERATOR_USERNAME, POLICY_NAMES, renderAdmissionDoc, type AdmissionObject } from './admission.js';
import { renderInstall } from './render.js';
import { fileAt, fixtureCrds, objectsIn } from './test-support.js';

const objects = admissionObjects({ 'app.kubernetes.io/part-of': 'lockstep' });
const policies = objects.filter((o) => o.kind === 'ValidatingAdmissionPolicy');
const bindings = objects.filter((o) => o.kind === 'ValidatingAdmissionPolicyBinding');
const spec = (o: AdmissionObject | undefined) => (o?.spec ?? {}) as Record<string, unknown>;
const byName = (list: AdmissionObject[], name: string) => list.find((o) => o.metadata.name === name);

describe('admission policies', () => {
  it('puts every policy in force with one Deny binding of the same name', () => {
    expect(policies.map((p) => p.metadata.name).sort()).toEqual(Object.values(POLICY_NAMES).sort());
    for (const p of policies) {
      const binding = byName(bindings, p.metadata.name);
      expect(spec(binding)).toMatchObject({ policyName: p.metadata.name, validationActions: ['Deny'] });
      expect(spec(p)['failurePolicy']).toBe('Fail');
    }
  });

  it("limits only the operator's own requests with the operator policies", () => {
    expect(OPERATOR_USERNAME).toBe('system:serviceaccount:lockstep-system:lockstep-operator');
    for (const name of [POLICY_NAMES.restartOnly, POLICY_NAMES.managedObjects]) {
      const p = byName(policies, name);
      expect(spec(p)['matchConditions']).toEqual([{ name: 'operator', expression: `request.userInfo.username == '${OPERATOR_USERNAME}'` }]);
      expect(spec(p)['paramKind']).toBeUndefined();
    }
  });

  it('reads the guardrails from the KeyPolicies of the request namespace, and a namespace without one is not guarded', () => {
    for (const name of [POLICY_NAMES.encryptedVolumes, POLICY_NAMES.sealedSecrets, POLICY_NAMES.protectKeys]) {
      expect(spec(byName(policies, name))['paramKind']).toEqual({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy' });
      // No namespace in paramRef: the API server uses the request's.
      expect(spec(byName(bindings, name))['paramRef']).toEqual({ selector: {}, parameterNotFoundAction: 'Allow' });
    }
  });

  it('ships in manifests/admission.yaml, listed after the CRDs it takes parameters from, and documented', () => {
    const files = renderInstall({ crds: fixtureCrds(), version: '0.0.0' });
    expect(objectsIn(fileAt(files, 'manifests/admission.yaml'))).toHaveLength(objects.length);
    const resources = (objectsIn(fileAt(files, 'manifests/kustomization.yaml'))[0] as unknown as { resources: string[] }).resources;
    expect(resources.indexOf('admission.yaml')).toBeGreaterThan(resources.indexOf('crds.yaml'));
    const doc = fileAt(files, 'docs/rbac.md').content;
    expect(doc).toContain(renderAdmissionDoc());
    for (const name of Object.values(POLICY_NAMES)) expect(doc).toContain(`\`${name}\``);
  });
});
