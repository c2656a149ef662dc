import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { Reasons } from '../api/v1alpha1/index.js';

describe('docs/troubleshooting.md', () => {
  it('explains every condition reason the operator writes', () => {
    const doc = readFileSync('docs/troubleshooting.md', 'utf8');
    expect(Object.values(Reasons).filter((reason) => !doc.includes(`| \`${reason}\` |`))).toEqual([]);
  });
});
