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

describe('per-service request counters', () => {
  it('have a zero series for every declared service, count only declared ones, and drop deleted ones', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    let resources: ResourceState[] = [
      { kind: 'EncryptedService', namespace: 'shop', name: 'api', ready: true },
      { kind: 'EncryptedService', namespace: 'shop', name: 'quiet', ready: true },
      { kind: 'KeyPolicy', namespace: 'shop', name: 'default', ready: true },
    ];
    metrics.reportResources(() => resources);
    metrics.countIdentityRequest('shop', 'api');
    metrics.countIdentityRequest('shop', 'api');
    metrics.countSansOutside('shop', 'api');
    const text = await metrics.registry.metrics();
    expect(text).toContain('lockstep_certificaterequest_identity_requests_total{namespace="shop",service="api"} 2');
    expect(text).toContain('lockstep_certificaterequest_identity_requests_total{namespace="shop",service="quiet"} 0');
    expect(text).toContain('lockstep_certificaterequest_sans_outside_total{namespace="shop",service="api"} 1');
    expect(text).toContain('lockstep_certificaterequest_sans_outside_total{namespace="shop",service="quiet"} 0');
    expect(text).not.toContain('service="default"');

    resources = [{ kind: 'EncryptedService', namespace: 'shop', name: 'quiet', ready: true }];
    const after = await metrics.registry.metrics();
    expect(after).not.toContain('service="api"');
    // Declared again later, it starts over: the old count was forgotten with the service.
    resources = [{ kind: 'EncryptedService', namespace: 'shop', name: 'api', ready: true }];
    expect(await metrics.registry.metrics()).toContain('lockstep_certificaterequest_identity_requests_total{namespace="shop",service="api"} 0');
  });
});
