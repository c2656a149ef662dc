import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { KmsError } from './backend.js';
import { ciphertextKid, deriveCipherKey, open, seal } from './ciphertext.js';

const reason = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    if (err instanceof KmsError) return err.reason;
    throw err;
  }
  return undefined;
};

describe('KMS ciphertext', () => {
  const key = deriveCipherKey(randomBytes(32));
  const seed = randomBytes(32);

  it('round-trips and names its key without the key', () => {
    const sealed = seal('kek-a', key, seed);
    expect(ciphertextKid(sealed)).toBe('kek-a');
    expect(open(key, sealed).equals(seed)).toBe(true);
    expect(sealed.includes(seed)).toBe(false);
  });

  it('uses a fresh nonce each time', () => {
    expect(seal('kek-a', key, seed).equals(seal('kek-a', key, seed))).toBe(false);
  });

  it('derives the GCM key rather than using the root key as is', () => {
    const root = randomBytes(32);
    expect(deriveCipherKey(root).equals(root)).toBe(false);
    expect(deriveCipherKey(root).equals(deriveCipherKey(root))).toBe(true);
  });

  it('refuses a flipped bit anywhere in the body or tag', () => {
    const sealed = seal('kek-a', key, seed);
    for (const position of [2 + 5 + 1, sealed.length - 20, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[position] = bad[position]! ^ 0x01;
      expect(reason(() => open(key, bad))).toBe('Tampered');
    }
  });

  it('refuses a ciphertext relabelled with another kid of the same length (the header is authenticated)', () => {
    const sealed = seal('kek-a', key, seed);
    const relabelled = Buffer.from(sealed);
    relabelled.write('kek-b', 2, 'ascii');
    expect(ciphertextKid(relabelled)).toBe('kek-b');
    expect(reason(() => open(key, relabelled))).toBe('Tampered');
  });

  it('refuses the wrong key', () => {
    expect(reason(() => open(deriveCipherKey(randomBytes(32)), seal('kek-a', key, seed)))).toBe('Tampered');
  });

  it('calls foreign and truncated input malformed', () => {
    expect(reason(() => ciphertextKid(Buffer.from('k8s:enc:aescbc:v1:'))) ).toBe('Malformed');
    expect(reason(() => ciphertextKid(seal('kek-a', key, seed).subarray(0, 20)))).toBe('Malformed');
    expect(reason(() => ciphertextKid(Buffer.alloc(0)))).toBe('Malformed');
  });
});
