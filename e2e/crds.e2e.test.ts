// The API server is the judge of the lockstep.dev API: the CRDs install and become Established
// with their schemas stored unchanged, every example is accepted (server-side dry run) and
// defaulted exactly as the TypeScript defaulting says, and every invalid object is rejected with
// the message a user needs.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PatchStrategy, setHeaderOptions, type KubernetesObject, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { API_VERSION, RESOURCES, crdName } from '../operator/api/v1alpha1/group.js';
import { withEncryptedServiceDefaults, withKeyPolicyDefaults, withRotationScheduleDefaults } from '../operator/api/v1alpha1/defaults.js';
import { INVALID_RESOURCES, INVALID_UPDATES, VALID_EXAMPLE_DIRS } from './fixtures/invalid-resources.js';
import { apiErrorCode, apiErrorMessage, clients, eventually } from './harness/cluster.js';
import { loadObjects, repoRoot, yamlFiles } from './harness/manifests.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { installGitOpsCrds } from './harness/gitops-crds.js';

const FIELD_MANAGER = 'lockstep-e2e';
const c = clients();
let ns = '';

type Spec = { spec?: unknown };
const defaulters: Record<string, (spec: never) => unknown> = {
  EncryptedService: withEncryptedServiceDefaults,
  KeyPolicy: withKeyPolicyDefaults,
  RotationSchedule: withRotationScheduleDefaults,
};

function crdFiles(): { file: string; crd: V1CustomResourceDefinition }[] {
  return yamlFiles('crds').map((file) => ({ file, crd: parse(readFileSync(join(repoRoot, file), 'utf8')) as V1CustomResourceDefinition }));
}

/** Puts a namespaced object into this file's namespace. */
async function placed<T extends KubernetesObject>(object: T): Promise<T> {
  const apiVersion = object.apiVersion ?? '';
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const served = group ? await c.custom.getAPIResources({ group, version: version ?? '' }) : await c.core.getAPIResources();
  const resource = served.resources.find((r) => r.kind === object.kind && !r.name.includes('/'));
  if (!resource) throw new Error(`the API server does not serve ${apiVersion} ${object.kind}`);
  if (resource.namespaced) return { ...object, metadata: { ...object.metadata, namespace: ns } };
  // A cluster-scoped example (the Namespace) may already exist; a unique name keeps the dry run about validity.
  return { ...object, metadata: { ...object.metadata, name: `${object.metadata?.name}-${ns.slice(-6)}` } };
}

async function rejection(attempt: () => Promise<unknown>, cleanup: () => Promise<unknown>): Promise<{ code?: number; message: string }> {
  try {
    await attempt();
  } catch (err) {
    return { code: apiErrorCode(err), message: apiErrorMessage(err) };
  }
  await cleanup().catch(() => undefined);
  return { message: '(accepted)' };
}

beforeAll(async () => {
  for (const { crd } of crdFiles()) {
    await c.apiext.patchCustomResourceDefinition(
      { name: crd.metadata?.name ?? '', body: crd, fieldManager: FIELD_MANAGER, force: true },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
  }
  for (const resource of RESOURCES) {
    await eventually(`CRD ${crdName(resource)} Established`, async () => {
      const crd = await c.apiext.readCustomResourceDefinition({ name: crdName(resource) });
      return crd.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') ? true : undefined;
    });
  }
  ns = await createTestNamespace(c, 'e2e-crds');
  // Established precedes discovery by a moment; the object client resolves kinds through discovery.
  await eventually('lockstep.dev kinds in discovery', async () => {
    for (const resource of RESOURCES) await c.objects.list(API_VERSION, resource.kind, ns);
    return true;
  });
});

afterAll(async () => {
  if (ns) await deleteTestNamespace(c, ns);
});

describe('CustomResourceDefinitions', () => {
  it.each(crdFiles().map(({ file, crd }) => [file, crd] as const))('%s is stored with its schema unchanged', async (_file, crd) => {
    const live = await c.apiext.readCustomResourceDefinition({ name: crd.metadata?.name ?? '' });
    const conditions = Object.fromEntries((live.status?.conditions ?? []).map((x) => [x.type, x.status]));
    expect(conditions).toMatchObject({ Established: 'True', NamesAccepted: 'True' });
    expect(conditions.NonStructuralSchema).toBeUndefined();
    // Read raw: the CustomResourceDefinition model class would rename the x-kubernetes-* keys.
    const stored = (await c.custom.getClusterCustomObject({
      group: 'apiextensions.k8s.io',
      version: 'v1',
      plural: 'customresourcedefinitions',
      name: crd.metadata?.name ?? '',
    })) as { spec: { versions: { schema: unknown }[] } };
    const source = crd as unknown as { spec: { versions: { schema: unknown }[] } };
    expect(stored.spec.versions[0]?.schema).toEqual(source.spec.versions[0]?.schema);
  });
});

describe('examples', () => {
  const objects = VALID_EXAMPLE_DIRS.flatMap((dir) => yamlFiles(dir)).flatMap((file) =>
    loadObjects(file).map((object) => [`${file}: ${object.kind}/${object.metadata?.name}`, object] as const),
  );

  it('has the three-tier application and the nightly rotation', () => {
    const kinds = objects.map(([, o]) => `${o.kind}/${o.metadata?.name}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'Namespace/shop',
        'KeyPolicy/shop',
        'EncryptedService/frontend',
        'EncryptedService/api',
        'EncryptedService/database',
        'RotationSchedule/nightly',
      ]),
    );
  });

  // The GitOps examples (Argo CD Applications, Flux Kustomizations) are judged by those tools' own CRDs.
  beforeAll(() => installGitOpsCrds(), 180_000);

  it.each(objects)('accepts %s', async (_label, object) => {
    // kubectl, for strict field validation: an API client's create only warns about unknown fields.
    const created = JSON.parse(execFileSync('kubectl', ['create', '--dry-run=server', '--validate=strict', `--field-manager=${FIELD_MANAGER}`, '-o', 'json', '-f', '-'],
      { input: JSON.stringify(await placed(object)), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] })) as KubernetesObject & Spec;
    const defaulter = defaulters[object.kind ?? ''];
    if (defaulter) {
      expect(created.spec).toEqual(defaulter((object as Spec).spec as never));
    }
  });
});

describe('invalid objects', () => {
  it('breaks every CEL rule of the CRDs at least once', () => {
    const messages: string[] = [];
    const collect = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(collect);
      else if (node && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if (key === 'x-kubernetes-validations') messages.push(...(value as { message: string }[]).map((r) => r.message));
          else collect(value);
        }
      }
    };
    for (const { crd } of crdFiles()) collect(crd);
    const expected = [...INVALID_RESOURCES, ...INVALID_UPDATES].map((e) => e.expectedMessage);
    const unbroken = [...new Set(messages)].filter((m) => !expected.some((e) => m.includes(e)));
    expect(unbroken).toEqual([]);
    expect(INVALID_RESOURCES.length).toBeGreaterThanOrEqual(30);
  });

  it.each(INVALID_RESOURCES.map((entry) => [entry.name, entry] as const))('rejects %s', async (_name, entry) => {
    const object = await placed(entry.object as KubernetesObject);
    const result = await rejection(
      () => c.objects.create(object, undefined, undefined, FIELD_MANAGER),
      () => c.objects.delete(object),
    );
    expect(result.message).toContain(entry.expectedMessage);
    expect(result.code).toBe(422);
  });

  it.each(INVALID_UPDATES.map((entry) => [entry.name, entry] as const))('rejects %s', async (_name, entry) => {
    const object = await placed({ ...(entry.object as KubernetesObject), metadata: { ...entry.object.metadata, name: `update-${INVALID_UPDATES.indexOf(entry)}` } });
    const created = await c.objects.create(object, undefined, undefined, FIELD_MANAGER);
    try {
      const changed = structuredClone(created) as Record<string, unknown>;
      entry.change(changed);
      const result = await rejection(
        () => c.objects.replace(changed as KubernetesObject, undefined, undefined, FIELD_MANAGER),
        async () => undefined,
      );
      expect(result.message).toContain(entry.expectedMessage);
      expect(result.code).toBe(422);
    } finally {
      await c.objects.delete(object).catch(() => undefined);
    }
  });
});
