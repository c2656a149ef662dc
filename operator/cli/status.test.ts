import { describe, expect, it } from '@jest/globals';
import type { Condition, EncryptedService } from '../api/v1alpha1/index.js';
import { parse } from 'yaml';
import { formatStatus } from './status.js';
import { renderStatus, statusReport, type StatusReport } from './status-report.js';

const cond = (type: string, status: 'True' | 'False', reason = 'R'): Condition => ({ type, status, reason, message: '', lastTransitionTime: '2026-01-01T00:00:00Z' });
const service = (name: string, conditions: Condition[]): EncryptedService => ({
  metadata: { name, namespace: 'shop' },
  spec: { workload: { selector: {}, serviceAccountName: name }, ports: [], keyPolicyRef: { name: 'shop' } },
  status: { conditions, certificate: { notAfter: '2026-01-02T00:00:00Z' } },
});

describe('formatStatus', () => {
  it('is healthy when everything is Ready, with one line per service', () => {
    const ok = ['Ready', 'TransitReady', 'AccessReady', 'AtRestReady', 'SecretsReady', 'Verified'].map((t) => cond(t, 'True'));
    const { text, healthy } = formatStatus({ services: [service('web', ok), service('api', ok)], policies: [], schedules: [] });
    expect(healthy).toBe(true);
    const lines = text.trim().split('\n');
    expect(lines[0]).toMatch(/^NAMESPACE\s+SERVICE\s+READY\s+TRANSIT/);
    expect(lines[0]).toMatch(/SECRETS\s+VERIFIED\s+CERT-EXPIRES/);
    expect(lines[1]).toMatch(/^shop\s+api\s+yes\s+yes\s+yes\s+yes\s+yes\s+yes\s+2026-01-02T00:00:00Z$/);
    expect(lines[2]).toMatch(/^shop\s+web/);
  });

  it('names what is not ready and why, and is unhealthy', () => {
    const { text, healthy } = formatStatus({
      services: [service('db', [cond('Ready', 'False', 'UnencryptedVolume'), cond('AtRestReady', 'False', 'UnencryptedVolume'), cond('TransitReady', 'True')])],
      policies: [], schedules: [],
    });
    expect(healthy).toBe(false);
    expect(text).toMatch(/shop\s+db\s+NO\s+yes\s+\?\s+NO\s+\?\s+\?\s+2026-01-02T00:00:00Z\s+UnencryptedVolume/);
  });

  it('is unhealthy when a Ready service fails verification, and names why; not while verification is pending', () => {
    const ready = ['Ready', 'TransitReady', 'AccessReady', 'AtRestReady', 'SecretsReady'].map((t) => cond(t, 'True'));
    const failing = formatStatus({ services: [service('api', [...ready, cond('Verified', 'False', 'PlaintextAccepted')])], policies: [], schedules: [] });
    expect(failing.healthy).toBe(false);
    expect(failing.text).toMatch(/shop\s+api\s+yes\s+yes\s+yes\s+yes\s+yes\s+NO\s+2026-01-02T00:00:00Z\s+PlaintextAccepted/);
    const pending = { ...cond('Verified', 'True', 'NoEndpoints'), status: 'Unknown' as const };
    expect(formatStatus({ services: [service('api', [...ready, pending])], policies: [], schedules: [] }).healthy).toBe(true);
  });

  it('says so when there is nothing', () => {
    expect(formatStatus({ services: [], policies: [], schedules: [] })).toEqual({ text: 'No EncryptedServices.\n', healthy: true });
  });
});

describe('status report formats', () => {
  const ready = ['Ready', 'TransitReady', 'AccessReady', 'AtRestReady', 'SecretsReady', 'Verified'].map((t) => cond(t, 'True'));
  const withIdentity = (es: EncryptedService): EncryptedService => ({ ...es, status: { ...es.status, spiffeID: 'spiffe://td/ns/shop/sa/web', keyIds: ['kek-1'] } });
  const input = { services: [withIdentity(service('web', ready)), service('db', [cond('Ready', 'False', 'UnencryptedVolume')])], policies: [], schedules: [] };

  it('-o json carries the same rows as the table, with condition states and reasons', () => {
    const report = JSON.parse(renderStatus(statusReport(input), 'json')) as StatusReport;
    expect(report.healthy).toBe(false);
    expect(report.services.map((s) => [s.name, s.ready, s.reason])).toEqual([['db', 'False', 'UnencryptedVolume'], ['web', 'True', '']]);
    expect(parse(renderStatus(statusReport(input), 'yaml'))).toEqual(report);
  });

  it('-o wide adds identity, key ids and messages; the default table does not', () => {
    const [header, , web] = renderStatus(statusReport(input), 'wide').split('\n');
    expect(header).toMatch(/CERT-EXPIRES\s+CERT-RENEWS\s+SPIFFE-ID\s+KEY-IDS\s+REASON\s+MESSAGE$/);
    expect(web).toMatch(/spiffe:\/\/td\/ns\/shop\/sa\/web\s+kek-1$/);
    expect(renderStatus(statusReport(input), 'table')).not.toContain('spiffe://');
  });
});
