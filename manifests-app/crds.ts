import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

// CRDs stay plain objects from crds/ to manifests/: typed model classes rename schema keys
// (`x-kubernetes-validations` and friends), and cdk8s charts stamp namespaces onto them.
export interface CustomResourceDefinition {
  apiVersion: string;
  kind: 'CustomResourceDefinition';
  metadata: { name: string } & Record<string, unknown>;
  spec: { group: string; names: { plural: string; kind: string } } & Record<string, unknown>;
  [key: string]: unknown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asCrd(value: unknown, source: string): CustomResourceDefinition {
  if (!isRecord(value) || value['kind'] !== 'CustomResourceDefinition') {
    throw new Error(`${source}: expected only CustomResourceDefinition documents`);
  }
  const { apiVersion, metadata, spec } = value;
  if (apiVersion !== 'apiextensions.k8s.io/v1') {
    throw new Error(`${source}: CRD apiVersion must be apiextensions.k8s.io/v1, got ${String(apiVersion)}`);
  }
  if (!isRecord(metadata) || typeof metadata['name'] !== 'string') {
    throw new Error(`${source}: CRD without metadata.name`);
  }
  if ('namespace' in metadata) {
    throw new Error(`${source}: CRD ${metadata['name']} is cluster-scoped and must not set metadata.namespace`);
  }
  const names = isRecord(spec) ? spec['names'] : undefined;
  if (!isRecord(spec) || typeof spec['group'] !== 'string' || !isRecord(names) || typeof names['plural'] !== 'string') {
    throw new Error(`${source}: CRD ${metadata['name']} without spec.group / spec.names.plural`);
  }
  return value as CustomResourceDefinition;
}

/** Parses CRD YAML (one or more documents); empty documents are skipped. */
export function parseCrds(text: string, source: string): CustomResourceDefinition[] {
  const crds: CustomResourceDefinition[] = [];
  for (const doc of parseAllDocuments(text)) {
    const first = doc.errors[0];
    if (first) throw new Error(`${source}: ${first.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    crds.push(asCrd(value, source));
  }
  return crds;
}

/** Every CRD in `dir/*.yaml`, ordered by name so the rendered file does not depend on the file system. */
export function loadCrds(dir: string): CustomResourceDefinition[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort();
  const crds = files.flatMap((f) => parseCrds(readFileSync(join(dir, f), 'utf8'), join(dir, f)));
  if (crds.length === 0) throw new Error(`no CustomResourceDefinitions found in ${dir}`);
  const seen = new Set<string>();
  for (const crd of crds) {
    if (seen.has(crd.metadata.name)) throw new Error(`CRD ${crd.metadata.name} is defined twice in ${dir}`);
    seen.add(crd.metadata.name);
  }
  return crds.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
}

/**
 * Deleting a CRD deletes every object of its kind, and with them what the objects own: uninstalling
 * a Helm release or pruning an Argo CD application must not take the KeyPolicies (and the keys
 * they guard) along. These annotations tell both tools to leave the CRDs in place.
 */
export const CRD_KEEP_ANNOTATIONS: Readonly<Record<string, string>> = {
  'helm.sh/resource-policy': 'keep',
  'argocd.argoproj.io/sync-options': 'Prune=false,Delete=false',
};

export function withKeepAnnotations(crd: CustomResourceDefinition): CustomResourceDefinition {
  const annotations = { ...(crd.metadata['annotations'] as Record<string, string> | undefined), ...CRD_KEEP_ANNOTATIONS };
  return { ...crd, metadata: { ...crd.metadata, annotations } };
}
