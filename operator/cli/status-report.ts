// The report `lockstep status` prints: one row per EncryptedService, KeyPolicy and
// RotationSchedule from the status the operator writes, whether all of it is Ready, and its
// renderings (table, wide table, JSON, YAML). Pure.
import type * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { Condition, EncryptedService, KeyPolicy, RotationSchedule } from '../api/v1alpha1/index.js';

export interface StatusInput {
  services: EncryptedService[];
  policies: KeyPolicy[];
  schedules: RotationSchedule[];
}

type ConditionState = 'True' | 'False' | 'Unknown';

export interface ServiceRow {
  namespace: string; name: string;
  ready: ConditionState; transit: ConditionState; access: ConditionState; atRest: ConditionState;
  secrets: ConditionState; verified: ConditionState;
  certExpires?: string; certRenews?: string; spiffeID?: string; keyIds: string[];
  /** Why it is not healthy (Ready's reason, else a failed verification's), empty when healthy. */
  reason: string; message: string;
}

export interface PolicyRow {
  namespace: string; name: string; ready: ConditionState; activeKid?: string; keys: number;
  sealingKid?: string; sealingKeyThumbprint?: string; nextRotation?: string; reason: string; message: string;
}

export interface ScheduleRow {
  namespace: string; name: string; ready: ConditionState; phase?: string; rotationId?: string;
  currentStep?: number; lastRotation?: string; nextRotation?: string; reason: string; message: string;
}

export interface StatusReport {
  healthy: boolean;
  services: ServiceRow[];
  keyPolicies: PolicyRow[];
  rotationSchedules: ScheduleRow[];
}

export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

const state = (conditions: Condition[] | undefined, type: string): ConditionState => {
  const s = conditions?.find((x) => x.type === type)?.status;
  return s === 'True' || s === 'False' ? s : 'Unknown';
};

/** Ready's reason and message when it is not True (NotReconciled before the operator wrote any). */
function notReady(conditions: Condition[] | undefined): { reason: string; message: string } {
  const ready = conditions?.find((c) => c.type === 'Ready');
  if (ready?.status === 'True') return { reason: '', message: '' };
  return { reason: ready?.reason ?? 'NotReconciled', message: ready?.message ?? 'the operator has not reported on it yet' };
}

const byName = <T extends { metadata: k8s.V1ObjectMeta }>(a: T, b: T) =>
  `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`);

const optional = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

function serviceRow(es: EncryptedService): ServiceRow {
  const c = es.status?.conditions;
  let { reason, message } = notReady(c);
  // Ready says what the operator generated; Verified (continuous verification) what the
  // endpoints actually do. Unknown (nothing to probe yet, a renewal propagating) is no failure.
  const verified = c?.find((x) => x.type === 'Verified');
  if (!reason && verified?.status === 'False') ({ reason, message } = { reason: verified.reason, message: verified.message });
  return optional({
    namespace: es.metadata.namespace ?? '', name: es.metadata.name ?? '',
    ready: state(c, 'Ready'), transit: state(c, 'TransitReady'), access: state(c, 'AccessReady'), atRest: state(c, 'AtRestReady'),
    secrets: state(c, 'SecretsReady'), verified: state(c, 'Verified'),
    certExpires: es.status?.certificate?.notAfter, certRenews: es.status?.certificate?.renewalTime, spiffeID: es.status?.spiffeID,
    keyIds: es.status?.keyIds ?? [], reason, message,
  });
}

function policyRow(kp: KeyPolicy): PolicyRow {
  const s = kp.status;
  return optional({
    namespace: kp.metadata.namespace ?? '', name: kp.metadata.name ?? '', ready: state(s?.conditions, 'Ready'),
    activeKid: s?.activeKid, keys: s?.keys?.length ?? 0, sealingKid: s?.sealingKid, sealingKeyThumbprint: s?.sealingKeyThumbprint,
    nextRotation: s?.nextRotation, ...notReady(s?.conditions),
  });
}

function scheduleRow(rs: RotationSchedule): ScheduleRow {
  const s = rs.status;
  return optional({
    namespace: rs.metadata.namespace ?? '', name: rs.metadata.name ?? '', ready: state(s?.conditions, 'Ready'),
    phase: s?.phase, rotationId: s?.rotationId, currentStep: s?.currentStep, lastRotation: s?.lastRotation,
    nextRotation: s?.nextRotation, ...notReady(s?.conditions),
  });
}

export function statusReport({ services, policies, schedules }: StatusInput): StatusReport {
  const report = {
    services: [...services].sort(byName).map(serviceRow),
    keyPolicies: [...policies].sort(byName).map(policyRow),
    rotationSchedules: [...schedules].sort(byName).map(scheduleRow),
  };
  const healthy = [...report.services, ...report.keyPolicies, ...report.rotationSchedules].every((r) => r.reason === '');
  return { healthy, ...report };
}

interface Column<R> { header: string; value: (row: R) => string; wide?: boolean }

const mark = (s: ConditionState) => (s === 'True' ? 'yes' : s === 'False' ? 'NO' : '?');

const SERVICE_COLUMNS: Column<ServiceRow>[] = [
  { header: 'NAMESPACE', value: (r) => r.namespace }, { header: 'SERVICE', value: (r) => r.name },
  { header: 'READY', value: (r) => mark(r.ready) }, { header: 'TRANSIT', value: (r) => mark(r.transit) },
  { header: 'ACCESS', value: (r) => mark(r.access) }, { header: 'AT-REST', value: (r) => mark(r.atRest) },
  { header: 'SECRETS', value: (r) => mark(r.secrets) }, { header: 'VERIFIED', value: (r) => mark(r.verified) },
  { header: 'CERT-EXPIRES', value: (r) => r.certExpires ?? '-' },
  { header: 'CERT-RENEWS', value: (r) => r.certRenews ?? '-', wide: true },
  { header: 'SPIFFE-ID', value: (r) => r.spiffeID ?? '-', wide: true },
  { header: 'KEY-IDS', value: (r) => r.keyIds.join(',') || '-', wide: true },
  { header: 'REASON', value: (r) => r.reason }, { header: 'MESSAGE', value: (r) => r.message, wide: true },
];

const POLICY_COLUMNS: Column<PolicyRow>[] = [
  { header: 'NAMESPACE', value: (r) => r.namespace }, { header: 'KEYPOLICY', value: (r) => r.name },
  { header: 'READY', value: (r) => mark(r.ready) }, { header: 'ACTIVE-KID', value: (r) => r.activeKid ?? '-' },
  { header: 'KEYS', value: (r) => String(r.keys) }, { header: 'NEXT-ROTATION', value: (r) => r.nextRotation ?? '-' },
  { header: 'SEALING-KEY-THUMBPRINT', value: (r) => r.sealingKeyThumbprint ?? '-', wide: true },
  { header: 'REASON', value: (r) => r.reason }, { header: 'MESSAGE', value: (r) => r.message, wide: true },
];

const SCHEDULE_COLUMNS: Column<ScheduleRow>[] = [
  { header: 'NAMESPACE', value: (r) => r.namespace }, { header: 'SCHEDULE', value: (r) => r.name },
  { header: 'READY', value: (r) => mark(r.ready) }, { header: 'PHASE', value: (r) => r.phase ?? '-' },
  { header: 'ROTATION', value: (r) => r.rotationId ?? '-', wide: true },
  { header: 'STEP', value: (r) => (r.currentStep === undefined ? '-' : String(r.currentStep + 1)), wide: true },
  { header: 'LAST-ROTATION', value: (r) => r.lastRotation ?? '-' }, { header: 'NEXT-ROTATION', value: (r) => r.nextRotation ?? '-' },
  { header: 'REASON', value: (r) => r.reason }, { header: 'MESSAGE', value: (r) => r.message, wide: true },
];

function table<R>(columns: Column<R>[], rows: R[], wide: boolean): string {
  const shown = columns.filter((c) => wide || !c.wide);
  const cells = [shown.map((c) => c.header), ...rows.map((r) => shown.map((c) => c.value(r)))];
  const widths = shown.map((_, i) => Math.max(...cells.map((line) => (line[i] ?? '').length)));
  return cells.map((line) => line.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n') + '\n';
}

export function renderStatus(report: StatusReport, format: OutputFormat): string {
  if (format === 'json') return `${JSON.stringify(report, null, 2)}\n`;
  if (format === 'yaml') return stringify(report);
  const wide = format === 'wide';
  const parts = [report.services.length > 0 ? table(SERVICE_COLUMNS, report.services, wide) : 'No EncryptedServices.\n'];
  if (report.keyPolicies.length > 0) parts.push(table(POLICY_COLUMNS, report.keyPolicies, wide));
  if (report.rotationSchedules.length > 0) parts.push(table(SCHEDULE_COLUMNS, report.rotationSchedules, wide));
  return parts.join('\n');
}

/** The table, and whether everything in it is Ready. */
export function formatStatus(input: StatusInput): { text: string; healthy: boolean } {
  const report = statusReport(input);
  return { text: renderStatus(report, 'table'), healthy: report.healthy };
}
