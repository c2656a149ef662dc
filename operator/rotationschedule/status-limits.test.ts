import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import type { RotationScheduleStatus } from '../api/v1alpha1/index.js';
import { boundStatus } from './status-limits.js';

interface Schema { type?: string; maxLength?: number; properties?: Record<string, Schema>; items?: Schema }

/** Every string in `value` that exceeds the maxLength its schema gives, as JSON paths. */
function overLimit(value: unknown, schema: Schema | undefined, path: string): string[] {
  if (!schema) return [];
  if (typeof value === 'string') return schema.maxLength !== undefined && value.length > schema.maxLength ? [path] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => overLimit(v, schema.items, `${path}[${i}]`));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => overLimit(v, schema.properties?.[k], `${path}.${k}`));
  return [];
}

describe('boundStatus', () => {
  it('keeps every free-text field within the CRD maxLength, so a long problem list cannot block a status write', () => {
    const crd = parse(readFileSync('crds/rotationschedules.lockstep.dev.yaml', 'utf8')) as { spec: { versions: { schema: { openAPIV3Schema: Schema } }[] } };
    const schema = crd.spec.versions[0]!.schema.openAPIV3Schema.properties!.status!;
    const long = 'x'.repeat(20_000);
    const status: RotationScheduleStatus = {
      phase: 'Verifying', lastError: long, waiting: long,
      ca: { stage: 'VerifyTrust', message: long },
      targets: [{ namespace: 'ns', name: 'a', phase: 'Failed', message: long }],
      failure: { reason: 'VerificationFailed', target: `ns/${'a'.repeat(400)}`, message: long },
      history: [{ rotationId: 'r', outcome: 'Failed', message: long }],
    };
    expect(overLimit(status, schema, 'status').length).toBeGreaterThan(0);
    expect(overLimit(boundStatus(status), schema, 'status')).toEqual([]);
    expect(boundStatus(status).ca?.message).toMatch(/truncated\)$/);
  });
});
