import { describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { withoutRetired } from '../encryptedservice/trust-bundle.js';
import { bundleHas, fingerprint, issuedBy } from './ca-rotation.js';
import { TEST_LEAF, TEST_ROOT_A, TEST_ROOT_B } from './test-certificates.js';

const ROOT_A = TEST_ROOT_A;
const ROOT_B = TEST_ROOT_B;
const LEAF_A = TEST_LEAF;

const bundle = (...pems: string[]) => ({ data: { 'ca.crt': pems.join('') } });

describe('issuedBy', () => {
  it('is true only for the root whose key signed the leaf', () => {
    expect(issuedBy(LEAF_A, ROOT_A)).toBe(true);
    expect(issuedBy(LEAF_A, ROOT_B)).toBe(false);
    expect(issuedBy('not a certificate', ROOT_A)).toBe(false);
  });
});

describe('bundleHas', () => {
  it('finds a root by fingerprint among several', () => {
    expect(bundleHas(bundle(ROOT_B, ROOT_A), ROOT_A)).toBe(true);
    expect(bundleHas(bundle(ROOT_B), ROOT_A)).toBe(false);
    expect(bundleHas(undefined, ROOT_A)).toBe(false);
  });
});

describe('withoutRetired', () => {
  it('drops exactly the listed fingerprints and keeps the rest', () => {
    expect(withoutRetired([ROOT_A, ROOT_B], fingerprint(ROOT_A))).toEqual([ROOT_B]);
    expect(withoutRetired([ROOT_A, ROOT_B], ` ${fingerprint(ROOT_B)} ,${fingerprint(ROOT_A)}`)).toEqual([]);
    expect(withoutRetired([ROOT_A, ROOT_B], undefined)).toEqual([ROOT_A, ROOT_B]);
    expect(withoutRetired([ROOT_A], '')).toEqual([ROOT_A]);
  });

  it('compares the same fingerprint form that X509Certificate reports', () => {
    expect(fingerprint(ROOT_A)).toBe(new X509Certificate(ROOT_A).fingerprint256);
  });
});
