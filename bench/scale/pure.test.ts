import { describe, expect, it } from '@jest/globals';
import { countByVerb, countByVerbAndResource, writesAtRest, type AuditRecord } from './audit.js';
import { baselineChildren } from './baseline.js';
import { encryptedServices, initialPeer, otherPeer, type Layout } from './fixtures.js';
import { admits, sampleServices } from './latency.js';
import { controllerFigures, eventToWrite } from './operator-metrics.js';
import { metricsPortOf, parseProcStatus } from './operator-process.js';
import { parseMetrics, quantile } from './prom.js';
import { percentile, spread, spreadText } from './stats.js';
import { objectPath } from './http.js';
import { countsText, markdownTable, ratio } from './table.js';

const layout: Layout = { services: 10, namespaces: 3, prefix: 'bench-t', runId: 'r1' };

describe('fixtures', () => {
  it('spreads services over namespaces, each naming another member of its namespace as its peer', () => {
    const services = encryptedServices(layout);
    expect(services).toHaveLength(10);
    expect(new Set(services.map((s) => s.metadata?.namespace))).toEqual(new Set(['bench-t-00', 'bench-t-01', 'bench-t-02']));
    // Namespace 0 holds services 0, 3, 6, 9.
    expect([initialPeer(layout, 0), initialPeer(layout, 9), otherPeer(layout, 0)]).toEqual([3, 0, 6]);
    expect(otherPeer({ ...layout, services: 4 }, 1)).toBeUndefined();
    const peers = sampleServices(layout, 4);
    expect(peers).toHaveLength(4);
    for (const { index, peer } of peers) expect(peer % 3).toBe(index % 3);
  });

  it('renders the baseline with the operator\'s builders: a Certificate and two NetworkPolicies per service, labelled by run', () => {
    const children = baselineChildren(layout);
    const kinds = children.map((c) => c.kind);
    expect(kinds.filter((k) => k === 'Certificate')).toHaveLength(10);
    expect(kinds.filter((k) => k === 'NetworkPolicy')).toHaveLength(20);
    expect(children.every((c) => c.metadata?.labels?.['bench.lockstep.dev/run'] === 'r1')).toBe(true);
    const allow = children.find((c) => c.kind === 'NetworkPolicy' && c.metadata?.name === 'svc-00000-allow');
    expect(allow && admits(allow, 'svc-00003')).toBe(true);
    expect(allow && admits(allow, 'svc-00006')).toBe(false);
  });
});

describe('stats and table', () => {
  it('nearest-rank percentiles and their text', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(values, 50), percentile(values, 90), percentile(values, 99)]).toEqual([50, 90, 99]);
    expect(percentile([7], 99)).toBe(7);
    expect(spreadText(spread([1500, 20, 300]))).toBe('p50 300 ms, p90 1.50 s, p99 1.50 s, max 1.50 s (n=3)');
    expect(spreadText(spread([]))).toBe('no samples');
  });

  it('markdown rows escape pipes; counts per service; ratio', () => {
    expect(markdownTable([{ figure: 'a | b', measured: '1' }])).toBe('| figure | measured |\n| --- | --- |\n| a \\| b | 1 |');
    expect(countsText([['patch', 30], ['get', 15]], 10)).toBe('patch 3.00, get 1.50');
    expect(countsText([])).toBe('none');
    expect(ratio(260, 104)).toBe('2.50 ×');
    expect(ratio(1, NaN)).toBe('n/a');
  });
});

describe('audit aggregation', () => {
  const rec = (verb: string, resource: string, apiGroup = '', subresource?: string): AuditRecord =>
    ({ verb, user: { username: 'op' }, objectRef: { resource, apiGroup, ...(subresource ? { subresource } : {}) } });

  it('writes at rest leave out reads and lease renewals; counts by verb and resource', () => {
    const records = [
      rec('update', 'leases', 'coordination.k8s.io'), rec('get', 'leases', 'coordination.k8s.io'),
      rec('patch', 'events', 'events.k8s.io'), rec('watch', 'secrets'),
      rec('patch', 'encryptedservices', 'lockstep.dev', 'status'), rec('patch', 'encryptedservices', 'lockstep.dev', 'status'),
      // A Lease that is not coordination's is no renewal.
      rec('update', 'leases', 'example.com'),
    ];
    expect(countByVerbAndResource(writesAtRest(records))).toEqual([
      ['patch encryptedservices/status', 2], ['patch events', 1], ['update leases', 1],
    ]);
    expect(countByVerb(records)).toEqual([['patch', 3], ['update', 2], ['get', 1], ['watch', 1]]);
  });
});

describe('metrics', () => {
  const scrape = (count: number, sum: number, buckets: Record<string, number>, adds: number): string => [
    '# HELP lockstep_reconcile_duration_seconds x',
    `lockstep_reconcile_duration_seconds_count{controller="encryptedservice",result="success"} ${count}`,
    `lockstep_reconcile_duration_seconds_sum{controller="encryptedservice",result="success"} ${sum}`,
    `lockstep_workqueue_adds_total{controller="encryptedservice"} ${adds}`,
    ...Object.entries(buckets).map(([le, n]) => `lockstep_event_to_write_seconds_bucket{le="${le}",controller="encryptedservice",resource="networkpolicies"} ${n}`),
    'process_resident_memory_bytes 1.5e+08',
  ].join('\n');

  it('parses samples and labels', () => {
    const s = parseMetrics('a_total{x="1",y="q\\"uote"} 3\n# c\nb 4.5e+00\n');
    expect(s).toEqual([{ name: 'a_total', labels: { x: '1', y: 'q"uote' }, value: 3 }, { name: 'b', labels: {}, value: 4.5 }]);
  });

  it('differences between two scrapes: mean reconcile, queue adds, event-to-write quantiles', () => {
    const before = parseMetrics(scrape(10, 1, { '0.01': 2, '0.1': 2, '1': 2, '+Inf': 2 }, 12));
    const after = parseMetrics(scrape(30, 5, { '0.01': 2, '0.1': 12, '1': 22, '+Inf': 22 }, 40));
    expect(controllerFigures(before, after)).toEqual([{ controller: 'encryptedservice', reconciles: 20, meanMs: 200, adds: 28, retries: 0, requeues: 0 }]);
    const e = eventToWrite(before, after, { controller: 'encryptedservice', resource: 'networkpolicies' });
    // 10 samples in (0.01, 0.1], 10 in (0.1, 1]: the median is the top of the first bucket.
    expect(e.n).toBe(20);
    expect(e.p50).toBeCloseTo(100);
    expect(e.p90).toBeCloseTo(820);
    expect(e.maxBound).toBe(1000);
    expect(quantile({ le: [0.1, Infinity], counts: [0, 0] }, 0.5)).toBeNaN();
  });
});

describe('bench client paths', () => {
  it('routes each kind a run writes, cluster-scoped or namespaced', () => {
    expect(objectPath({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench-op-00' } })).toBe('/api/v1/namespaces/bench-op-00');
    expect(objectPath({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'n' } }, true)).toBe('/api/v1/namespaces/n/secrets');
    expect(objectPath({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'a-allow', namespace: 'n' } }))
      .toBe('/apis/networking.k8s.io/v1/namespaces/n/networkpolicies/a-allow');
    expect(objectPath({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name: 'svc', namespace: 'n' } }))
      .toBe('/apis/lockstep.dev/v1alpha1/namespaces/n/encryptedservices/svc');
    expect(() => objectPath({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } })).toThrow('no route');
  });
});

describe('operator process', () => {
  it('reads peak and current RSS from /proc status, and the metrics port from the log', () => {
    expect(parseProcStatus('Name:\tnode\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n')).toEqual({ peak: 200 * 1024 * 1024, current: 100 * 1024 * 1024 });
    const logs = ['not json serving /healthz', '{"ts":"x","level":"info","logger":"health","msg":"serving /healthz, /readyz and /metrics","port":41201}'].join('\n');
    expect(metricsPortOf(logs)).toBe(41201);
    expect(metricsPortOf('{"msg":"starting"}')).toBeUndefined();
  });
});
