// Holds the TypeScript side of the API to the CRDs in crds/: names, enums, patterns and defaults
// must agree, and every schema must follow the rules that keep it valid and its CEL affordable.
import { describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { parse } from 'yaml';
import { TLS12_CIPHER_SUITES } from './common-types.js';
import { withEncryptedServiceDefaults, withKeyPolicyDefaults, withRotationScheduleDefaults } from './defaults.js';
import { DURATION_PATTERN } from './duration.js';
import { EncryptedServiceConditions } from './conditions.js';
import type { EncryptedServiceSpec, VerificationStatus } from './encrypted-service.js';
import { ENCRYPTED_SERVICE, GROUP, KEY_POLICY, RESOURCES, ROTATION_SCHEDULE, VERSION, crdName, type ResourceInfo } from './group.js';
import type { KeyPolicySpec } from './key-policy.js';
import { ROTATABLES, ROTATION_PHASES, type RotationScheduleSpec } from './rotation-schedule.js';

type Schema = {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema;
  items?: Schema;
  default?: unknown;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  maxLength?: number;
  maxItems?: number;
  maxProperties?: number;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-validations'?: { rule: string; message?: string; messageExpression?: string }[];
};

const crdDir = new URL('../../../crds/', import.meta.url);
const crds = readdirSync(crdDir)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => ({ file: f, crd: parse(readFileSync(new URL(f, crdDir), 'utf8')) }));

function crdFor(resource: ResourceInfo) {
  const found = crds.find((c) => c.crd.metadata.name === crdName(resource));
  if (!found) throw new Error(`no CRD file for ${crdName(resource)}`);
  return found.crd;
}

function rootSchema(resource: ResourceInfo): Schema {
  return crdFor(resource).spec.versions[0].schema.openAPIV3Schema as Schema;
}

function specSchema(resource: ResourceInfo): Schema {
  const spec = rootSchema(resource).properties?.spec;
  if (!spec) throw new Error('no spec schema');
  return spec;
}

/** Structural defaulting as kube-apiserver does it: defaults fill missing properties, then recurse. */
function applySchemaDefaults(value: unknown, schema: Schema): unknown {
  if (Array.isArray(value)) return schema.items ? value.map((v) => applySchemaDefaults(v, schema.items as Schema)) : value;
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    if (!(key in out) && prop.default !== undefined) out[key] = structuredClone(prop.default);
    if (key in out) out[key] = applySchemaDefaults(out[key], prop);
  }
  if (schema.additionalProperties) {
    for (const key of Object.keys(out)) out[key] = applySchemaDefaults(out[key], schema.additionalProperties);
  }
  return out;
}

/** Every schema node with its JSON path. */
function* walk(schema: Schema, path: string): Generator<[string, Schema]> {
  yield [path, schema];
  for (const [key, prop] of Object.entries(schema.properties ?? {})) yield* walk(prop, `${path}.${key}`);
  if (schema.additionalProperties) yield* walk(schema.additionalProperties, `${path}.*`);
  if (schema.items) yield* walk(schema.items, `${path}[]`);
}

describe.each(RESOURCES.map((r) => [r.kind, r] as const))('%s CRD', (_kind, resource) => {
  const crd = crdFor(resource);
  const version = crd.spec.versions[0];

  it('registers the names the operator uses', () => {
    expect(crd.spec.group).toBe(GROUP);
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toMatchObject({ kind: resource.kind, plural: resource.plural, singular: resource.singular, categories: ['lockstep'] });
    expect(crd.spec.names.shortNames).toContain(resource.shortName);
    expect(crd.spec.versions).toHaveLength(1);
    expect(version).toMatchObject({ name: VERSION, served: true, storage: true, subresources: { status: {} } });
  });

  it('prints times that lie ahead as text (kubectl shows <invalid> for a future date column)', () => {
    // A date column reads "5m" for a past time and "<invalid>" for a future one; only fields that
    // hold past times may be dates. Expiry, renewal and next-rotation times are strings.
    const PAST_TIMES = new Set(['.metadata.creationTimestamp', '.status.lastRotation']);
    const columns = version.additionalPrinterColumns as { name: string; type: string; jsonPath: string }[];
    const futureDates = columns.filter((c) => c.type === 'date' && !PAST_TIMES.has(c.jsonPath)).map((c) => `${c.name} (${c.jsonPath})`);
    expect(futureDates).toEqual([]);
  });

  it('shows readiness and age in kubectl get', () => {
    const columns = (version.additionalPrinterColumns as { name: string }[]).map((c) => c.name);
    expect(columns).toEqual(expect.arrayContaining(['Ready', 'Reason', 'Age']));
  });

  it('bounds every list, map and string so CEL cost stays estimable', () => {
    const unbounded: string[] = [];
    for (const [path, node] of walk(rootSchema(resource), '')) {
      if (node.type === 'array' && node.maxItems === undefined) unbounded.push(`${path} (maxItems)`);
      if (node.type === 'array' && node['x-kubernetes-list-type'] === undefined) unbounded.push(`${path} (list type)`);
      if (node.type === 'object' && node.additionalProperties && node.maxProperties === undefined) unbounded.push(`${path} (maxProperties)`);
      const isTopLevelTypeMeta = path === '.apiVersion' || path === '.kind';
      if (node.type === 'string' && !isTopLevelTypeMeta && node.maxLength === undefined && !node.enum && node.format !== 'date-time') {
        unbounded.push(`${path} (maxLength)`);
      }
    }
    expect(unbounded).toEqual([]);
  });

  it('types and describes every field', () => {
    const problems: string[] = [];
    for (const [path, node] of walk(rootSchema(resource), '')) {
      if (!node.type && !node['x-kubernetes-int-or-string']) problems.push(`${path} has no type`);
      if (!node.description && path !== '.metadata' && !path.endsWith('[]') && !path.endsWith('.*')) problems.push(`${path} has no description`);
      if (node.default !== undefined && node.enum && !node.enum.includes(node.default)) problems.push(`${path} default is not in its enum`);
      if (typeof node.default === 'string' && node.pattern && !new RegExp(node.pattern).test(node.default)) {
        problems.push(`${path} default does not match its pattern`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('gives every CEL rule a message that tells the user what to fix', () => {
    for (const [path, node] of walk(rootSchema(resource), '')) {
      for (const rule of node['x-kubernetes-validations'] ?? []) {
        const message = rule.message ?? rule.messageExpression ?? '';
        expect({ path, rule: rule.rule, hasMessage: message.length > 20 }).toEqual({ path, rule: rule.rule, hasMessage: true });
      }
    }
  });
});

describe('enums and patterns shared with the TypeScript API', () => {
  const es = specSchema(ENCRYPTED_SERVICE);
  const kp = specSchema(KEY_POLICY);
  const rs = specSchema(ROTATION_SCHEDULE);

  it('uses one duration pattern everywhere', () => {
    const patterns = new Set<string>();
    for (const resource of RESOURCES) {
      for (const [, node] of walk(specSchema(resource), '')) {
        if (node.description?.includes('Go duration string')) patterns.add(node.pattern ?? '(none)');
      }
    }
    expect([...patterns]).toEqual([DURATION_PATTERN]);
  });

  it('offers the same TLS 1.2 cipher suites', () => {
    expect(es.properties?.transit?.properties?.tls?.properties?.cipherSuites?.items?.enum).toEqual([...TLS12_CIPHER_SUITES]);
    expect(kp.properties?.tls?.properties?.cipherSuites?.items?.enum).toEqual([...TLS12_CIPHER_SUITES]);
  });

  it('describes every EncryptedService condition type, and shows Verified in kubectl get', () => {
    const status = rootSchema(ENCRYPTED_SERVICE).properties?.status;
    for (const type of Object.values(EncryptedServiceConditions)) expect(status?.properties?.conditions?.description).toContain(type);
    const version = crdFor(ENCRYPTED_SERVICE).spec.versions[0] as { additionalPrinterColumns: { name: string; jsonPath: string }[] };
    expect(version.additionalPrinterColumns).toContainEqual(expect.objectContaining({ name: 'Verified', jsonPath: '.status.conditions[?(@.type=="Verified")].status' }));
  });

  it('has room for continuous verification\'s record', () => {
    const record: Required<VerificationStatus> = { restartedForSerial: '', restartedAt: '' };
    expect(Object.keys(rootSchema(ENCRYPTED_SERVICE).properties?.status?.properties?.verification?.properties ?? {}).sort()).toEqual(Object.keys(record).sort());
  });

  it('knows every rotatable and every phase', () => {
    expect(rs.properties?.rotate?.items?.enum).toEqual([...ROTATABLES]);
    expect(rootSchema(ROTATION_SCHEDULE).properties?.status?.properties?.phase?.enum).toEqual([...ROTATION_PHASES]);
  });
});

describe('TypeScript defaulting mirrors the CRD defaults', () => {
  const services: EncryptedServiceSpec[] = [
    {
      workload: { selector: { matchLabels: { app: 'api' } }, serviceAccountName: 'api' },
      ports: [{ name: 'https', port: 8443 }],
      keyPolicyRef: { name: 'default' },
    },
    {
      workload: {
        selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['db'] }] },
        serviceAccountName: 'db',
        restart: { kind: 'StatefulSet', name: 'db' },
      },
      serviceName: 'db',
      ports: [{ name: 'pg', port: 5432, appProtocol: 'postgresql' }],
      keyPolicyRef: { name: 'default', namespace: 'security' },
      transit: { issuerRef: { name: 'ca' }, renewBefore: '1h', privateKey: { algorithm: 'RSA', size: 3072 }, tls: { minVersion: 'TLS1.3' } },
      access: { ingress: [{ service: { name: 'api' } }], egress: { to: [{ podSelector: { matchLabels: { a: 'b' } } }] } },
      atRest: {
        volumes: [
          { name: 'a', provider: 'aws-ebs', size: '10Gi', aws: {} },
          { name: 'b', provider: 'gce-pd', size: '10Gi', gce: { kmsKeyName: 'projects/p/locations/l/keyRings/r/cryptoKeys/k' } },
          { name: 'c', provider: 'azure-disk', size: '10Gi', azure: { diskEncryptionSetID: '/subscriptions/x' } },
          { name: 'd', provider: 'longhorn', size: '10Gi', longhorn: {} },
          { name: 'e', provider: 'ceph-rbd', size: '10Gi', ceph: { clusterID: 'c', pool: 'p' }, accessModes: ['ReadWriteOncePod'] },
        ],
      },
      secrets: { envelope: [{ name: 'app' }], sealed: [{ name: 'creds', encryptedData: { k: 'a.b.c.d.e' } }] },
    },
  ];
  const policies: (KeyPolicySpec | undefined)[] = [
    undefined,
    {},
    { certificates: { defaultIssuer: { issuerRef: { name: 'ca' } } }, allowed: { namespaces: ['*'] } },
    { keyWrap: { algorithm: 'RSA-OAEP-256' }, certificates: { maxDuration: '48h', defaultIssuer: { managedCA: {} } }, tls: { cipherSuites: [] } },
  ];
  const schedules: RotationScheduleSpec[] = [
    { targets: { names: ['api'] }, rotate: ['certificates'] },
    {
      targets: { selector: {} },
      rotate: ['ca', 'dataKeys'],
      ca: { overlap: '48h', issuerRef: { name: 'root', kind: 'ClusterIssuer' } },
      schedule: { interval: '24h', maintenanceWindows: [{ start: '02:00', duration: '2h' }] },
      strategy: { canarySteps: [50, 100], verification: { decrypt: false } },
      emergency: true,
    },
  ];

  it.each(services.map((s, i) => [i, s] as const))('EncryptedService spec %d', (_i, spec) => {
    expect(withEncryptedServiceDefaults(spec)).toEqual(applySchemaDefaults(spec, specSchema(ENCRYPTED_SERVICE)));
  });

  it.each(policies.map((p, i) => [i, p] as const))('KeyPolicy spec %d', (_i, spec) => {
    const root = applySchemaDefaults(spec === undefined ? {} : { spec }, rootSchema(KEY_POLICY)) as { spec: unknown };
    expect(withKeyPolicyDefaults(spec)).toEqual(root.spec);
  });

  it.each(schedules.map((s, i) => [i, s] as const))('RotationSchedule spec %d', (_i, spec) => {
    expect(withRotationScheduleDefaults(spec)).toEqual(applySchemaDefaults(spec, specSchema(ROTATION_SCHEDULE)));
  });
});
