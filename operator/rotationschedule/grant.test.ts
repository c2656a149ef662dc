import { describe, expect, it } from '@jest/globals';
import { ANNOTATION_ROTATION_ALLOWED_NAMESPACES } from '../api/v1alpha1/index.js';
import { keyPolicyLabels } from '../keypolicy/names.js';
import { caRotationGrant, grantsNamespace } from './grant.js';

const cluster = { kind: 'ClusterIssuer', name: 'shared-ca' } as const;
const input = (scheduleNamespace: string, metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }) =>
  caRotationGrant({ scheduleNamespace, operatorNamespace: 'lockstep-system', issuer: cluster, metadata });

describe('grantsNamespace', () => {
  it.each([
    ['team-a', 'team-a', true], ['team-b, team-a', 'team-a', true], ['*', 'anything', true], [' * ', 'x', true],
    ['team-ab', 'team-a', false], ['', 'team-a', false], [undefined, 'team-a', false], [',', '', false],
  ])('%p grants %p: %p', (value, ns, expected) => {
    expect(grantsNamespace(value, ns)).toBe(expected);
  });
});

describe('caRotationGrant', () => {
  it('refuses a ClusterIssuer without a grant, naming the annotation an administrator would set', () => {
    const grant = input('team-a');
    expect(grant).toMatchObject({ allowed: false, reason: 'RotationNotAllowed' });
    expect(!grant.allowed && grant.message).toContain(`${ANNOTATION_ROTATION_ALLOWED_NAMESPACES} of ClusterIssuer shared-ca`);
  });

  it('allows the namespaces the annotation names, and every namespace for *', () => {
    expect(input('team-a', { annotations: { [ANNOTATION_ROTATION_ALLOWED_NAMESPACES]: 'team-b,team-a' } }).allowed).toBe(true);
    expect(input('team-c', { annotations: { [ANNOTATION_ROTATION_ALLOWED_NAMESPACES]: 'team-b,team-a' } }).allowed).toBe(false);
    expect(input('team-c', { annotations: { [ANNOTATION_ROTATION_ALLOWED_NAMESPACES]: '*' } }).allowed).toBe(true);
  });

  it("allows the operator's own namespace and a namespaced Issuer", () => {
    expect(input('lockstep-system').allowed).toBe(true);
    expect(caRotationGrant({ scheduleNamespace: 'team-a', operatorNamespace: 'lockstep-system', issuer: { kind: 'Issuer', name: 'x' }, metadata: undefined }).allowed).toBe(true);
  });

  it("allows a KeyPolicy's managed CA only from the policy's namespace", () => {
    const labels = keyPolicyLabels('team-a', 'prod', 'trust');
    expect(input('team-a', { labels }).allowed).toBe(true);
    const other = input('team-b', { labels });
    expect(other.allowed).toBe(false);
    expect(!other.allowed && other.message).toContain('managed CA of KeyPolicy team-a/prod');
  });

  it('does not take a partial label set for a managed CA', () => {
    expect(input('team-a', { labels: { 'lockstep.dev/key-policy': 'prod', 'lockstep.dev/key-policy-namespace': 'team-a' } }).allowed).toBe(false);
  });
});
