import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { apiReference } from './reference.js';

describe('docs/api.md', () => {
  it('is what crds/ generates (regenerate: npx tsx scripts/gen-api-docs.ts)', () => {
    expect(readFileSync('docs/api.md', 'utf8')).toBe(apiReference());
  });
  it('lists nested fields with their defaults and validation messages', () => {
    const doc = apiReference();
    expect(doc).toContain('| `spec.keyWrap.algorithm` | string |');
    expect(doc).toMatch(/one of `A256KW`, `RSA-OAEP-256`, `ECDH-ES\+A256KW`/);
    expect(doc).toContain('## RotationSchedule');
  });
});
