// Reading the YAML the e2e suite applies (CRDs, examples, manifests) as plain objects.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';

export const repoRoot = new URL('../../', import.meta.url).pathname;

export function yamlFiles(dir: string): string[] {
  const abs = join(repoRoot, dir);
  return readdirSync(abs)
    .flatMap((entry) => {
      const p = join(abs, entry);
      if (statSync(p).isDirectory()) return yamlFiles(join(dir, entry));
      return /\.ya?ml$/.test(entry) ? [join(dir, entry)] : [];
    })
    .sort();
}

export function loadObjects(file: string): KubernetesObject[] {
  const text = readFileSync(join(repoRoot, file), 'utf8');
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null && typeof o === 'object' && 'kind' in o);
}
