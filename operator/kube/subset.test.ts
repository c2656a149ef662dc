import { describe, expect, it } from '@jest/globals';
import { specHasForeignFields } from './apply.js';
import { isSubset } from './subset.js';

describe('isSubset', () => {
  it('accepts fields the server added', () => {
    expect(isSubset({ spec: { a: 1 } }, { spec: { a: 1, defaulted: true }, status: {} })).toBe(true);
  });
  it('detects a changed scalar deep inside', () => {
    expect(isSubset({ spec: { tls: { min: 'TLS1.3' } } }, { spec: { tls: { min: 'TLS1.2' } } })).toBe(false);
  });
  it('detects a missing field', () => {
    expect(isSubset({ spec: { a: 1, b: 2 } }, { spec: { a: 1 } })).toBe(false);
  });
  it('treats lists as ordered and exact in length', () => {
    expect(isSubset({ l: [1, 2] }, { l: [1, 2] })).toBe(true);
    expect(isSubset({ l: [1, 2] }, { l: [2, 1] })).toBe(false);
    expect(isSubset({ l: [1] }, { l: [1, 2] })).toBe(false);
    expect(isSubset({ l: [{ name: 'a' }] }, { l: [{ name: 'a', extra: 1 }] })).toBe(true);
  });
  it('does not confuse a list with an object or a scalar with an object', () => {
    expect(isSubset({ a: [] }, { a: {} })).toBe(false);
    expect(isSubset({ a: {} }, { a: [] })).toBe(false);
    expect(isSubset({ a: { b: 1 } }, { a: 'x' })).toBe(false);
  });
  it('ignores undefined and null in desired', () => {
    expect(isSubset({ a: undefined, b: null }, {})).toBe(true);
  });
});

describe('specHasForeignFields (NetworkPolicies must be exactly as declared)', () => {
  const deny = {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'api-default-deny', namespace: 'shop' },
    spec: { podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Ingress'] },
  };
  const live = (spec: object) => ({ ...deny, metadata: { ...deny.metadata, resourceVersion: '7', uid: 'u', labels: { team: 'x' } }, spec });

  it('is false for the declared spec with server metadata around it', () => {
    expect(specHasForeignFields(deny, live(deny.spec))).toBe(false);
  });

  it('sees a rule added to a deny-all policy (it would admit everything) and a selector label added (it would select fewer pods)', () => {
    expect(isSubset(deny, live({ ...deny.spec, ingress: [{}] }))).toBe(true);
    expect(specHasForeignFields(deny, live({ ...deny.spec, ingress: [{}] }))).toBe(true);
    expect(specHasForeignFields(deny, live({ ...deny.spec, podSelector: { matchLabels: { app: 'api', canary: 'no' } } }))).toBe(true);
    expect(specHasForeignFields(deny, live({ ...deny.spec, podSelector: { matchLabels: { app: 'api' }, matchExpressions: [{ key: 'x', operator: 'Exists' }] } }))).toBe(true);
  });
});
