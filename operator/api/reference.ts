// docs/api.md, generated from the CRDs in crds/ (the API server's own schema, descriptions,
// defaults, enums and validation messages), so the reference cannot drift from what is enforced.
// reference.test.ts fails when the committed file is stale; regenerate with
// `npx tsx scripts/gen-api-docs.ts`.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

interface Schema {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  maxLength?: number;
  'x-kubernetes-validations'?: { rule: string; message?: string }[];
}
interface Crd {
  spec: { names: { kind: string; plural: string; shortNames?: string[] }; scope: string; group: string; versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ').trim();
const code = (value: unknown) => `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;

function typeOf(s: Schema): string {
  if (s.type === 'array') return `[]${s.items ? typeOf(s.items) : 'any'}`;
  if (s.type === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object') return `map[string]${typeOf(s.additionalProperties)}`;
  return s.type ?? 'any';
}

function constraints(s: Schema): string[] {
  const out: string[] = [];
  if (s.enum) out.push(`one of ${s.enum.map(code).join(', ')}`);
  if (s.default !== undefined) out.push(`default ${code(s.default)}`);
  if (s.pattern) out.push(`pattern ${code(s.pattern)}`);
  if (s.minimum !== undefined) out.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) out.push(`≤ ${s.maximum}`);
  if (s.minItems !== undefined) out.push(`at least ${s.minItems} items`);
  if (s.maxItems !== undefined) out.push(`at most ${s.maxItems} items`);
  if (s.maxLength !== undefined) out.push(`at most ${s.maxLength} characters`);
  for (const v of s['x-kubernetes-validations'] ?? []) out.push(`rule: ${v.message ?? code(v.rule)}`);
  return out;
}

/** One row per field, depth first, with its dotted path. */
function rows(schema: Schema, path: string, required: boolean): string[] {
  const extra = constraints(schema);
  const own = `| \`${path}\` | ${typeOf(schema)}${required ? ' (required)' : ''} | ${cell(schema.description ?? '')}${extra.length ? ` ${cell(extra.join('; '))}.` : ''} |`;
  const element = schema.type === 'array' ? schema.items : schema;
  const suffix = schema.type === 'array' ? '[]' : '';
  const children = Object.entries(element?.properties ?? {})
    .flatMap(([name, child]) => rows(child, `${path}${suffix}.${name}`, element?.required?.includes(name) ?? false));
  return [own, ...children];
}

function kindSection(crd: Crd): string {
  const { names, group, scope } = crd.spec;
  const version = crd.spec.versions[0]!;
  const root = version.schema.openAPIV3Schema;
  const part = (name: 'spec' | 'status') => {
    const s = root.properties?.[name];
    if (!s) return '';
    const table = ['| field | type | description |', '| --- | --- | --- |', ...rows(s, name, root.required?.includes(name) ?? false)].join('\n');
    return `### ${names.kind} ${name}\n\n${table}\n`;
  };
  const short = names.shortNames?.length ? `, short names ${names.shortNames.map(code).join(', ')}` : '';
  return [
    `## ${names.kind}`,
    '',
    `\`${group}/${version.name}\`, ${scope.toLowerCase()}, plural \`${names.plural}\`${short}.${root.description ? ` ${cell(root.description)}` : ''}`,
    '',
    part('spec'),
    part('status'),
  ].join('\n');
}

/** The whole reference, from every CRD file in `dir`, in file order. */
export function apiReference(dir = 'crds'): string {
  const crds = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort().map((f) => parse(readFileSync(join(dir, f), 'utf8')) as Crd);
  return [
    '# API reference (`lockstep.dev/v1alpha1`)',
    '',
    '<!-- Generated from crds/ by `npx tsx scripts/gen-api-docs.ts`; do not edit by hand. -->',
    '',
    'Every field of the three kinds, as the API server validates them: type, whether it is required,',
    'its default, allowed values and the validation rules (CEL) with the message a user sees.',
    '',
    ...crds.map(kindSection),
  ].join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}
