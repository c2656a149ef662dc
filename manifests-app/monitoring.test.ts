import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { createMetrics } from '../operator/runtime/metrics.js';
import { ALERTS, dashboard, RUNBOOK_BASE } from './monitoring.js';

const registered = new Set(createMetrics({ defaultMetrics: false }).registry.getMetricsAsArray().map((m) => m.name));
/** lockstep_* names in a PromQL expression, histogram suffixes removed. */
const metricNames = (expr: string): string[] => [...expr.matchAll(/\blockstep_[a-z_]+/g)].map(([m]) => m.replace(/_(bucket|sum|count)$/, ''));

describe('monitoring pack', () => {
  it('every alert names a metric the operator registers, has a severity and a runbook heading in docs/troubleshooting.md', () => {
    const doc = readFileSync('docs/troubleshooting.md', 'utf8');
    const headings = new Set([...doc.matchAll(/^### (\w+)$/gm)].map(([, h]) => h!.toLowerCase()));
    for (const a of ALERTS) {
      expect(metricNames(a.expr).length).toBeGreaterThan(0);
      for (const m of metricNames(a.expr)) expect([a.alert, registered.has(m)]).toEqual([a.alert, true]);
      expect(['critical', 'warning']).toContain(a.labels.severity);
      expect(a.annotations.runbook_url).toBe(`${RUNBOOK_BASE}#${a.alert.toLowerCase()}`);
      expect([a.alert, headings.has(a.alert.toLowerCase())]).toEqual([a.alert, true]);
    }
  });

  it('alerts on a per-object metric name the object (namespace and name) in their summary', () => {
    for (const a of ALERTS.filter((x) => !['LockstepNoLeader', 'LockstepAPIServerUnreachable', 'LockstepReconcileErrors', 'LockstepCertificateRequestUnmatchedIdentity'].includes(x.alert))) {
      expect([a.alert, a.annotations.summary]).toEqual([a.alert, expect.stringContaining('{{ $labels.namespace }}/{{ $labels.')]);
    }
  });

  it('the dashboard has unique panel ids, a Prometheus target per panel, and queries only registered metrics', () => {
    const d = dashboard() as { schemaVersion: number; panels: { id: number; targets: { expr: string }[]; gridPos: object }[] };
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(new Set(d.panels.map((p) => p.id)).size).toBe(d.panels.length);
    for (const p of d.panels) {
      expect(p.targets.length).toBe(1);
      for (const m of metricNames(p.targets[0]!.expr)) expect([m, registered.has(m)]).toEqual([m, true]);
    }
  });
});
