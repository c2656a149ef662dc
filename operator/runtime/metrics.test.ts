import { describe, expect, it } from '@jest/globals';
import { createMetrics, type CAState, type ResourceState } from './metrics.js';

describe('scrape-time gauges', () => {
  it('report what the caches hold at each scrape: an object that is gone has no series', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    let resources: ResourceState[] = [
      { kind: 'KeyPolicy', namespace: 'shop', name: 'p', ready: true, rotationPeriodSeconds: 3600 },
      { kind: 'RotationSchedule', namespace: 'shop', name: 'r', ready: false, phase: 'RolledBack' },
    ];
    let cas: CAState[] = [{ namespace: 'cert-manager', certificate: 'root', keypolicy: 'shop/p', notAfterMs: 1_800_000_000_000 }];
    metrics.reportResources(() => resources);
    metrics.reportCAs(() => cas);
    const text = await metrics.registry.metrics();
    expect(text).toContain('lockstep_key_rotation_period_seconds{namespace="shop",keypolicy="p"} 3600');
    expect(text).toContain('lockstep_rotation_phase{namespace="shop",name="r",phase="RolledBack"} 1');
    expect(text).toContain('lockstep_ca_expiry_timestamp_seconds{namespace="cert-manager",certificate="root",keypolicy="shop/p"} 1800000000');

    resources = [{ kind: 'RotationSchedule', namespace: 'shop', name: 'r', ready: true, phase: 'Completed' }];
    cas = [];
    const after = await metrics.registry.metrics();
    expect(after).not.toContain('lockstep_key_rotation_period_seconds{');
    expect(after).not.toContain('phase="RolledBack"');
    expect(after).toContain('lockstep_rotation_phase{namespace="shop",name="r",phase="Completed"} 1');
    expect(after).not.toContain('lockstep_ca_expiry_timestamp_seconds{');
  });
});
