import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { metricsTable, withMetricsTable } from './metrics-doc.js';

describe('docs/metrics.md', () => {
  it('lists exactly the metrics the operator registers (regenerate: npx tsx scripts/gen-metrics-doc.ts)', () => {
    const doc = readFileSync('docs/metrics.md', 'utf8');
    expect(withMetricsTable(doc)).toBe(doc);
  });
  it('names each metric with its type and labels', () => {
    expect(metricsTable()).toContain('| `lockstep_resource_ready` | gauge | `kind`, `namespace`, `name` |');
    expect(metricsTable()).toContain('| `lockstep_leader` | gauge | — |');
    expect(metricsTable()).toContain('| `lockstep_build_info` | gauge | `version`, `node` |');
  });
});
