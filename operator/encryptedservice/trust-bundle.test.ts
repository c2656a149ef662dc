import { describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { TEST_LEAF, TEST_ROOT_A, TEST_ROOT_B } from '../rotationschedule/test-certificates.js';
import { mergeRoots, rootFacts, withoutRetired } from './trust-bundle.js';

describe('mergeRoots', () => {
  it('keeps each CA once, ordered by fingerprint, whatever the order and repetition of the bundles', () => {
    const many = Array.from({ length: 50 }, (_, i) => (i % 2 ? TEST_ROOT_A : `${TEST_ROOT_B}${TEST_LEAF}`));
    const merged = mergeRoots(...many, undefined, 'not a certificate');
    expect(merged).toEqual(mergeRoots(TEST_ROOT_B, TEST_ROOT_A));
    expect(merged).toHaveLength(2);
    expect(merged.map((p) => new X509Certificate(p).fingerprint256)).toEqual(
      [TEST_ROOT_A, TEST_ROOT_B].map((p) => new X509Certificate(p).fingerprint256).sort());
  });

  it('drops a malformed block without losing the good ones', () => {
    const broken = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    expect(mergeRoots(broken, TEST_ROOT_A)).toEqual([TEST_ROOT_A]);
  });
});

describe('rootFacts', () => {
  it('parses a certificate once: the same PEM gives the same facts object', () => {
    const first = rootFacts(TEST_ROOT_A);
    expect(first).toEqual({ ca: true, fingerprint256: new X509Certificate(TEST_ROOT_A).fingerprint256 });
    expect(rootFacts(TEST_ROOT_A)).toBe(first);
    expect(rootFacts(TEST_LEAF)?.ca).toBe(false);
    expect(rootFacts('not a certificate')).toBeUndefined();
  });

  it('withoutRetired still removes a retired root by fingerprint', () => {
    const fp = new X509Certificate(TEST_ROOT_A).fingerprint256;
    expect(withoutRetired([TEST_ROOT_A, TEST_ROOT_B], fp)).toEqual([TEST_ROOT_B]);
  });
});
