// Renders manifests/ and docs/rbac.md from crds/ and manifests-app/.
//
//   npm run manifests                          write into the repository
//   npm run manifests -- --root DIR            write into DIR instead (used by the drift check)
//   npm run manifests -- --image REF           another operator image (the committed files use the default)
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadCrds } from './crds.js';
import { renderInstall } from './render.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function packageVersion(): string {
  const pkg: unknown = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  const version = typeof pkg === 'object' && pkg !== null ? (pkg as Record<string, unknown>)['version'] : undefined;
  if (typeof version !== 'string') throw new Error('package.json has no version');
  return version;
}

function main(): void {
  const { values } = parseArgs({
    options: { root: { type: 'string' }, image: { type: 'string' } },
    strict: true,
  });
  const outRoot = resolve(values.root ?? repoRoot);
  const files = renderInstall({
    crds: loadCrds(join(repoRoot, 'crds')),
    version: packageVersion(),
    ...(values.image === undefined ? {} : { image: values.image }),
  });

  // manifests/ is wholly generated: a file the app no longer renders must not linger there.
  const manifestsDir = join(outRoot, 'manifests');
  mkdirSync(manifestsDir, { recursive: true });
  const rendered = new Set(files.map((f) => resolve(outRoot, f.path)));
  for (const name of readdirSync(manifestsDir)) {
    const path = join(manifestsDir, name);
    if (!rendered.has(path)) rmSync(path, { recursive: true });
  }
  for (const file of files) {
    const path = join(outRoot, file.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, file.content);
    console.log(`wrote ${file.path}`);
  }
}

main();
