// `lockstep status`: the encryption health of a namespace or the cluster, from the status the
// operator writes — one line per EncryptedService, then the KeyPolicies and RotationSchedules.
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import {
  ENCRYPTED_SERVICE, GROUP, KEY_POLICY, ROTATION_SCHEDULE, VERSION,
  type Condition, type EncryptedService, type KeyPolicy, type RotationSchedule,
} from '../api/v1alpha1/index.js';
import type { CliIo } from './io.js';

export const STATUS_USAGE = `Usage: lockstep status [-n NAMESPACE | -A]
Shows, per EncryptedService, whether it is Ready and encrypted in transit, access-restricted,
encrypted at rest and its secrets sealed, whether its endpoints were verified (what they serve,
mTLS enforced, plaintext refused, TLS policy), with its certificate expiry and the reason of
anything not ready; then the KeyPolicies (active key) and RotationSchedules (phase, next rotation).
Exit code 1 when anything shown is not Ready, or a service's endpoints failed verification.
`;

const mark = (conditions: Condition[] | undefined, type: string): string => {
  const c = conditions?.find((x) => x.type === type);
  return c?.status === 'True' ? 'yes' : c?.status === 'False' ? 'NO' : '?';
};

const notReadyReason = (conditions: Condition[] | undefined): string => {
  const ready = conditions?.find((c) => c.type === 'Ready');
  return ready?.status === 'True' ? '' : (ready?.reason ?? 'NotReconciled');
};

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export interface StatusInput {
  services: EncryptedService[];
  policies: KeyPolicy[];
  schedules: RotationSchedule[];
}

/** The report, and whether everything in it is Ready. */
export function formatStatus({ services, policies, schedules }: StatusInput): { text: string; healthy: boolean } {
  const byName = <T extends { metadata: k8s.V1ObjectMeta }>(a: T, b: T) =>
    `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`);
  const parts: string[] = [];
  let healthy = true;
  const note = (conditions: Condition[] | undefined) => {
    const reason = notReadyReason(conditions);
    if (reason) healthy = false;
    return reason;
  };
  // Ready says what the operator generated; Verified (continuous verification) what the
  // endpoints actually do. Unknown (nothing to probe yet, a renewal propagating) is no failure.
  const serviceNote = (c: Condition[] | undefined) => {
    const reason = note(c);
    if (reason) return reason;
    const verified = c?.find((x) => x.type === 'Verified');
    if (verified?.status !== 'False') return '';
    healthy = false;
    return verified.reason;
  };
  if (services.length > 0) {
    parts.push(table(
      ['NAMESPACE', 'SERVICE', 'READY', 'TRANSIT', 'ACCESS', 'AT-REST', 'SECRETS', 'VERIFIED', 'CERT-EXPIRES', 'REASON'],
      [...services].sort(byName).map((es) => {
        const c = es.status?.conditions;
        return [es.metadata.namespace ?? '', es.metadata.name ?? '', mark(c, 'Ready'), mark(c, 'TransitReady'), mark(c, 'AccessReady'),
          mark(c, 'AtRestReady'), mark(c, 'SecretsReady'), mark(c, 'Verified'), es.status?.certificate?.notAfter ?? '-', serviceNote(c)];
      }),
    ));
  } else {
    parts.push('No EncryptedServices.\n');
  }
  if (policies.length > 0) {
    parts.push(table(['NAMESPACE', 'KEYPOLICY', 'READY', 'ACTIVE-KID', 'KEYS', 'NEXT-ROTATION', 'REASON'],
      [...policies].sort(byName).map((kp) => [kp.metadata.namespace ?? '', kp.metadata.name ?? '', mark(kp.status?.conditions, 'Ready'),
        kp.status?.activeKid ?? '-', String(kp.status?.keys?.length ?? 0), kp.status?.nextRotation ?? '-', note(kp.status?.conditions)])));
  }
  if (schedules.length > 0) {
    parts.push(table(['NAMESPACE', 'SCHEDULE', 'READY', 'PHASE', 'LAST-ROTATION', 'NEXT-ROTATION', 'REASON'],
      [...schedules].sort(byName).map((rs) => [rs.metadata.namespace ?? '', rs.metadata.name ?? '', mark(rs.status?.conditions, 'Ready'),
        rs.status?.phase ?? '-', rs.status?.lastRotation ?? '-', rs.status?.nextRotation ?? '-', note(rs.status?.conditions)])));
  }
  return { text: parts.join('\n'), healthy };
}

async function list<T>(custom: k8s.CustomObjectsApi, plural: string, namespace: string | undefined): Promise<T[]> {
  const res = namespace
    ? await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural })
    : await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural });
  return (res as { items: T[] }).items;
}

export async function statusCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      namespace: { type: 'string', short: 'n' },
      'all-namespaces': { type: 'boolean', short: 'A' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(STATUS_USAGE);
    return 0;
  }
  const kc = io.kubeConfig();
  const namespace = values['all-namespaces'] ? undefined : (values.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default');
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const [services, policies, schedules] = await Promise.all([
    list<EncryptedService>(custom, ENCRYPTED_SERVICE.plural, namespace),
    list<KeyPolicy>(custom, KEY_POLICY.plural, namespace),
    list<RotationSchedule>(custom, ROTATION_SCHEDULE.plural, namespace),
  ]);
  const { text, healthy } = formatStatus({ services, policies, schedules });
  io.out(text);
  return healthy ? 0 : 1;
}
