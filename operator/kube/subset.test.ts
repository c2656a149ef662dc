import { describe, expect, it } from '@jest/globals';
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
