// Shared by the manifests-app tests: parse what was rendered, the way kubectl would read it.
import { parseAllDocuments } from 'yaml';
import { parseCrds, type CustomResourceDefinition } from './crds.js';
import type { RenderedFile } from './render.js';

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
};

export function objectsIn(file: RenderedFile | undefined): K8sObject[] {
  if (!file) throw new Error('file not rendered');
  return parseAllDocuments(file.content)
    .map((doc) => doc.toJS() as unknown)
    .filter((v): v is K8sObject => typeof v === 'object' && v !== null);
}

export function fileAt(files: readonly RenderedFile[], path: string): RenderedFile {
  const file = files.find((f) => f.path === path);
  if (!file) throw new Error(`${path} not rendered; got ${files.map((f) => f.path).join(', ')}`);
  return file;
}

export function findObject(objects: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (!found) throw new Error(`no ${kind}${name ? `/${name}` : ''} among ${objects.map((o) => o.kind).join(', ')}`);
  return found;
}

/** A small CRD with the schema features that typed model classes are known to mangle. */
export function fixtureCrds(): CustomResourceDefinition[] {
  return parseCrds(
    `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.lockstep.dev
spec:
  group: lockstep.dev
  names: { kind: Widget, listKind: WidgetList, plural: widgets, singular: widget }
  scope: Namespaced
  versions:
    - name: v1alpha1
      served: true
      storage: true
      subresources: { status: {} }
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              x-kubernetes-validations:
                - rule: "self.size > 0"
                  message: size must be positive
              properties:
                size: { type: integer }
                tags: { type: array, x-kubernetes-list-type: set, items: { type: string } }
                extra: { type: object, x-kubernetes-preserve-unknown-fields: true, properties: {} }
`,
    'fixture',
  );
}
