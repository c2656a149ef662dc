// The chart's monitoring values render the very objects of the kustomize Component
// manifests/monitoring/ (both come from manifests-app/monitoring.ts): same rules, same dashboard.
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { byKey, parseObjects, renderChart, repoRoot } from '../e2e/helm/tool.js';

const MONITORING_KINDS = ['PrometheusRule', 'ServiceMonitor'];

function kustomizedWithComponent(): ReturnType<typeof parseObjects> {
  // kustomize loads only relative paths below the kustomization: the overlay sits in the clone.
  const overlay = mkdtempSync(join(repoRoot, '.monitoring-test-'));
  try {
    writeFileSync(join(overlay, 'kustomization.yaml'), 'resources: [../manifests]\ncomponents: [../manifests/monitoring]\n');
    return parseObjects(execFileSync('kubectl', ['kustomize', overlay], { encoding: 'utf8' }));
  } finally {
    rmSync(overlay, { recursive: true, force: true });
  }
}

describe('charts/lockstep monitoring values', () => {
  it('render the PrometheusRule, ServiceMonitor and dashboard of manifests/monitoring/', () => {
    const pick = (objects: ReturnType<typeof parseObjects>) =>
      byKey(objects.filter((o) => MONITORING_KINDS.includes(o.kind) || o.metadata.name === 'lockstep-dashboard'));
    const chart = pick(renderChart([], {
      'monitoring.prometheusRule.enabled': true, 'monitoring.dashboard.enabled': true, 'metrics.serviceMonitor.enabled': true,
    }));
    const kustomized = pick(kustomizedWithComponent());
    expect([...chart.keys()]).toEqual([...kustomized.keys()]);
    expect(chart.size).toBe(3);
    for (const [key, object] of chart) expect({ key, object }).toEqual({ key, object: kustomized.get(key) });
  });

  it('render none of them by default', () => {
    expect(renderChart().filter((o) => MONITORING_KINDS.includes(o.kind) || o.metadata.name === 'lockstep-dashboard')).toEqual([]);
  });
});
