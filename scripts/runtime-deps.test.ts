import { describe as group, expect, it } from '@jest/globals';
import { fileURLToPath } from 'node:url';
import { checkTree, compareDeps, describe, importedPackages, packageOf } from './runtime-deps.js';

const root = fileURLToPath(new URL('..', import.meta.url));

group('runtime dependencies', () => {
  it('package.json dependencies are exactly the packages the operator and CLI import', () => {
    // What dist/ is compiled from; the image builds run the same check on dist/ itself.
    expect(describe(checkTree(`${root}/operator`, `${root}/package.json`))).toEqual([]);
  });

  it('names the package a specifier loads, not Node built-ins or relative paths', () => {
    expect(packageOf('@kubernetes/client-node')).toBe('@kubernetes/client-node');
    expect(packageOf('@scope/pkg/deep/file.js')).toBe('@scope/pkg');
    expect(packageOf('yaml/util')).toBe('yaml');
    expect(packageOf('node:fs')).toBeUndefined();
    expect(packageOf('crypto')).toBeUndefined();
    expect(packageOf('./local.js')).toBeUndefined();
  });

  it('finds static, side-effect, re-export and dynamic imports; type-only imports load nothing', () => {
    const code = [
      "import { a } from 'one';",
      "import 'two';",
      "export * from 'three';",
      'import {\n  x,\n  y,\n} from "four";',
      "const m = await import('five');",
      "import type { T } from 'typeonly';",
      "export type { U } from 'typeonly2';",
      "import { type V } from 'six'; // still loads six",
      "import { z } from './relative.js';",
    ].join('\n');
    expect([...importedPackages(code)].sort()).toEqual(['five', 'four', 'one', 'six', 'three', 'two']);
  });

  it('reports a dependency nothing imports and an import no dependency provides', () => {
    const problems = compareDeps(['yaml', 'left-pad'], ['yaml', 'cdk8s']);
    expect(problems).toEqual({ missing: ['left-pad'], unused: ['cdk8s'] });
    expect(describe(problems)).toEqual([
      'left-pad is imported but not in package.json dependencies (move it there)',
      'cdk8s is in package.json dependencies but nothing shipped imports it (move it to devDependencies)',
    ]);
  });
});
