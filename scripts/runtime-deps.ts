// Runtime dependencies are exactly what the shipped code imports: package.json's `dependencies`
// must name every package dist/ loads (or the image fails at start) and nothing it never loads
// (or the image carries it: cdk8s and constructs are build-time, for manifests-app).
//   tsx scripts/runtime-deps.ts <dir>   checks the .js (or non-test .ts) files under <dir>
// The unit test runs the same check on operator/ sources; the image builds run it on dist/.
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const builtins = new Set(builtinModules);

/** The package a bare specifier loads (`@scope/name/sub` → `@scope/name`); undefined for relative
 *  paths and Node's own modules. */
export function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:')) return undefined;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  return builtins.has(name) ? undefined : name;
}

// `import x from 'p'`, `import 'p'`, `export * from 'p'`, `import('p')`; `import type` / `export
// type` are erased by the compiler and load nothing.
const STATIC = /(?:^|[\s;])(import|export)(\s+type)?\s+(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/g;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The packages one module's code loads at run time. */
export function importedPackages(code: string): Set<string> {
  const found = new Set<string>();
  const add = (spec: string) => {
    const name = packageOf(spec);
    if (name) found.add(name);
  };
  for (const m of code.matchAll(STATIC)) if (!m[2]) add(m[3]!);
  for (const m of code.matchAll(DYNAMIC)) add(m[1]!);
  return found;
}

export interface DepProblems {
  /** Imported by the shipped code, absent from `dependencies`: the image would fail to start. */
  missing: string[];
  /** In `dependencies`, never imported: dead weight (and attack surface) in every image. */
  unused: string[];
}

export function compareDeps(imported: Iterable<string>, dependencies: Iterable<string>): DepProblems {
  const used = new Set(imported);
  const declared = new Set(dependencies);
  return {
    missing: [...used].filter((p) => !declared.has(p)).sort(),
    unused: [...declared].filter((p) => !used.has(p)).sort(),
  };
}

function* codeFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) yield* codeFiles(path);
    else if (/\.js$/.test(e.name) || (/\.ts$/.test(e.name) && !/\.(test|d)\.ts$/.test(e.name))) yield path;
  }
}

/** Checks the code under `dir` against the `dependencies` of the package.json at `pkgFile`. */
export function checkTree(dir: string, pkgFile: string): DepProblems {
  const imported = new Set<string>();
  for (const file of codeFiles(dir)) for (const p of importedPackages(readFileSync(file, 'utf8'))) imported.add(p);
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { dependencies?: Record<string, string> };
  return compareDeps(imported, Object.keys(pkg.dependencies ?? {}));
}

export function describe(problems: DepProblems): string[] {
  return [
    ...problems.missing.map((p) => `${p} is imported but not in package.json dependencies (move it there)`),
    ...problems.unused.map((p) => `${p} is in package.json dependencies but nothing shipped imports it (move it to devDependencies)`),
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: tsx scripts/runtime-deps.ts <dir>');
    process.exit(2);
  }
  const lines = describe(checkTree(dir, join(fileURLToPath(new URL('..', import.meta.url)), 'package.json')));
  for (const line of lines) console.error(`runtime-deps: ${line}`);
  process.exit(lines.length === 0 ? 0 : 1);
}
