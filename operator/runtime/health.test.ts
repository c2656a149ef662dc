import { describe, expect, it } from '@jest/globals';
import { evaluateReadiness, informerSynced, readinessBody, startHealthServer, type ReadinessCheck } from './health.js';
import { createLogger, MemorySink } from './logger.js';
import { createMetrics } from './metrics.js';

describe('evaluateReadiness', () => {
  it('is ready only when every check passes, and names the failing ones; a throwing check fails', () => {
    let synced = false;
    const checks: ReadinessCheck[] = [
      informerSynced({ name: 'certificates', hasSynced: () => synced }),
      informerSynced({ name: 'secrets', hasSynced: () => true }),
      {
        name: 'broken',
        ready: () => {
          throw new Error('x');
        },
      },
    ];
    expect(evaluateReadiness(checks)).toEqual({ ready: false, failing: ['informer/certificates', 'broken'], waiting: [] });
    synced = true;
    expect(evaluateReadiness(checks.slice(0, 2))).toEqual({ ready: true, failing: [], waiting: [] });
    expect(evaluateReadiness([])).toEqual({ ready: true, failing: [], waiting: [] });
  });

  it('stays ready while a check waits for something, and the body says what', () => {
    let missing: string | undefined = 'install cert-manager v1.x: cert-manager.io/v1 Certificate not served';
    const checks: ReadinessCheck[] = [
      informerSynced({ name: 'secrets', hasSynced: () => true }),
      { name: 'dependency/cert-manager', ready: () => true, waitingFor: () => missing },
    ];
    const report = evaluateReadiness(checks);
    expect(report).toEqual({ ready: true, failing: [], waiting: [`dependency/cert-manager: ${missing}`] });
    expect(readinessBody(report)).toBe(`ok\nwaiting for dependency/cert-manager: ${missing}\n`);
    missing = undefined;
    expect(readinessBody(evaluateReadiness(checks))).toBe('ok\n');
    expect(readinessBody({ ready: false, failing: ['informer/secrets'], waiting: ['dependency/x: y'] })).toBe('not ready: informer/secrets\nwaiting for dependency/x: y\n');
  });
});

describe('health server', () => {
  it('serves /healthz, /readyz (503 until synced) and /metrics on an ephemeral port', async () => {
    const metrics = createMetrics({ defaultMetrics: true });
    metrics.leader.set(1);
    let synced = false;
    const server = await startHealthServer({
      port: 0,
      host: '127.0.0.1',
      registry: metrics.registry,
      readiness: () => [informerSynced({ name: 'encryptedservices', hasSynced: () => synced })],
      logger: createLogger({ sink: new MemorySink() }),
    });
    const base = `http://127.0.0.1:${server.port}`;
    try {
      expect(server.port).toBeGreaterThan(0);
      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(200);

      const notReady = await fetch(`${base}/readyz`);
      expect(notReady.status).toBe(503);
      expect(await notReady.text()).toBe('not ready: informer/encryptedservices\n');
      synced = true;
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);

      const m = await fetch(`${base}/metrics`);
      expect(m.status).toBe(200);
      expect(m.headers.get('content-type')).toContain('text/plain');
      const text = await m.text();
      expect(text).toContain('lockstep_leader 1');
      expect(text).toContain('process_cpu_user_seconds_total');
      expect(text).toContain('# TYPE lockstep_reconcile_duration_seconds histogram');

      expect((await fetch(`${base}/nope`)).status).toBe(404);
      expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
    }
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });

  it('metric registries are isolated and key age is computed at scrape time', async () => {
    let now = Date.UTC(2026, 0, 1);
    const a = createMetrics({ defaultMetrics: false, clock: { now: () => now, setTimeout: () => ({ id: 0 }), clearTimeout: () => undefined } });
    const b = createMetrics({ defaultMetrics: false });
    a.trackKeyAge({ namespace: 'shop', keypolicy: 'default', kid: 'k1' }, now - 3600_000);
    a.rotations.inc({ kind: 'certificate', outcome: 'succeeded' });
    expect(await a.registry.metrics()).toContain('lockstep_key_age_seconds{namespace="shop",keypolicy="default",kid="k1"} 3600');
    now += 60_000;
    expect(await a.registry.metrics()).toContain('lockstep_key_age_seconds{namespace="shop",keypolicy="default",kid="k1"} 3660');
    expect(await a.registry.metrics()).toContain(`lockstep_key_created_timestamp_seconds{namespace="shop",keypolicy="default",kid="k1"} ${Date.UTC(2026, 0, 1) / 1000 - 3600}`);
    a.untrackKeyAge({ namespace: 'shop', keypolicy: 'default', kid: 'k1' });
    expect(await a.registry.metrics()).not.toContain('kid="k1"');
    expect(await b.registry.metrics()).not.toContain('lockstep_rotations_total{');
  });
});
