import { describe, expect, it } from '@jest/globals';
import { ApiDependency, type ServedSource } from './dependency.js';
import type { InformerHandlers } from './informer.js';
import { createMetrics } from './metrics.js';

/** An informer as far as a dependency sees it: served or not, and who to tell. */
class Source implements ServedSource {
  private readonly handlers: InformerHandlers<never>[] = [];
  constructor(private state: boolean | undefined) {}
  served(): boolean | undefined {
    return this.state;
  }
  addHandlers(h: InformerHandlers<never>): () => void {
    this.handlers.push(h);
    return () => undefined;
  }
  set(served: boolean): void {
    this.state = served;
    for (const h of this.handlers) h.servedChanged?.(served);
  }
}

async function gauge(metrics: ReturnType<typeof createMetrics>): Promise<number | undefined> {
  const m = await metrics.dependencyMissing.get();
  return m.values.find((v) => v.labels['dependency'] === 'cert-manager')?.value;
}

describe('ApiDependency', () => {
  it('names the kinds not served and how to fix it, reports the gauge, and clears when they are served', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const certificates = new Source(undefined);
    const issuers = new Source(undefined);
    const dep = new ApiDependency({
      name: 'cert-manager', reason: 'CertManagerMissing', fix: 'install cert-manager v1.x', groupVersion: 'cert-manager.io/v1',
      kinds: { Certificate: certificates, Issuer: issuers }, metrics,
    });
    // Not listed yet is not "missing".
    expect(dep.problem()).toBeUndefined();
    expect(await gauge(metrics)).toBe(0);

    certificates.set(false);
    issuers.set(false);
    expect(dep.problem()).toEqual({ reason: 'CertManagerMissing', message: 'install cert-manager v1.x: cert-manager.io/v1 Certificate, Issuer not served' });
    expect(await gauge(metrics)).toBe(1);
    const check = dep.readinessCheck();
    expect(check.ready()).toBe(true);
    expect(check.waitingFor?.()).toBe('install cert-manager v1.x: cert-manager.io/v1 Certificate, Issuer not served');

    certificates.set(true);
    expect(dep.problem()?.message).toBe('install cert-manager v1.x: cert-manager.io/v1 Issuer not served');
    expect(await gauge(metrics)).toBe(1);
    issuers.set(true);
    expect(dep.problem()).toBeUndefined();
    expect(check.waitingFor?.()).toBeUndefined();
    expect(await gauge(metrics)).toBe(0);
  });
});
