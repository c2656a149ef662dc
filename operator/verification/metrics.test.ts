// The continuous-verification series: days to expiry of what is served, computed at scrape
// time, and every series of a service gone once it is forgotten.
import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../runtime/fake-clock.js';
import { createMetrics } from '../runtime/metrics.js';

describe('verification metrics', () => {
  it('reports days to expiry of the served certificate at scrape time, and forgets a service entirely', async () => {
    const clock = new FakeClock(Date.UTC(2026, 10, 30));
    const m = createMetrics({ defaultMetrics: false, clock });
    m.trackServedExpiry('shop', 'api', clock.now() + 2 * 86_400_000);
    m.servedDrift.set({ namespace: 'shop', service: 'api' }, 1);
    m.verificationViolations.set({ namespace: 'shop', service: 'api', kind: 'stale_certificate' }, 1);
    expect(await m.registry.metrics()).toContain('lockstep_served_certificate_days_to_expiry{namespace="shop",service="api"} 2');
    await clock.advance(86_400_000 / 2);
    expect(await m.registry.metrics()).toContain('lockstep_served_certificate_days_to_expiry{namespace="shop",service="api"} 1.5');

    m.untrackServed('shop', 'api');
    const text = await m.registry.metrics();
    expect(text).not.toMatch(/service="api"/);
  });
});
