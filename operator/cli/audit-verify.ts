// `lockstep audit verify`: checks a KeyPolicy's audit chain — every entry's hash, every link,
// the sequence, the segments' order and summaries — against the head in the policy's status.
// Reads from the cluster, or from files exported earlier (segment files plus an optional head).
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { GROUP, KEY_POLICY, VERSION, type AuditHead, type KeyPolicy } from '../api/v1alpha1/index.js';
import type { AuditVerification } from '../audit/segments.js';
import { readStoredSegments, verifyStoredTrail, type StoredSegment } from '../keypolicy/audit-trail.js';
import { CliError, type CliIo } from './io.js';

export const AUDIT_VERIFY_USAGE = `Usage: lockstep audit verify --namespace NS --policy POLICY
       lockstep audit verify --namespace NS --policy POLICY --segments FILE... [--head FILE]
Verifies the hash-chained audit trail of KeyPolicy NS/POLICY: from its ConfigMaps and the head in
its status, or from exported segment files (JSON Lines, in chain order) and a head file holding
the policy's status.auditHead as JSON. Exits 1 and says where the chain breaks.
`;

export async function readClusterTrail(kc: k8s.KubeConfig, namespace: string, policy: string): Promise<{ segments: StoredSegment[]; head: AuditHead | undefined }> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  let kp: KeyPolicy;
  try {
    kp = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: KEY_POLICY.plural, namespace, name: policy })) as KeyPolicy;
  } catch (err) {
    if ((err as { code?: number }).code === 404) throw new CliError(`KeyPolicy ${namespace}/${policy} not found`);
    throw err;
  }
  const segments = await readStoredSegments(kc.makeApiClient(k8s.CoreV1Api), namespace, policy);
  return { segments, head: kp.status?.auditHead };
}

/** Human-readable report; `ok` decides the exit code. */
export function formatVerification(namespace: string, policy: string, result: AuditVerification, head: AuditHead | undefined): string {
  const lines: string[] = [];
  if (result.ok) {
    lines.push(`audit trail of KeyPolicy ${namespace}/${policy}: OK — ${result.entries} entries in ${result.segments} segments, ends at seq ${result.end.seq}`);
    if (!head) lines.push('warning: no head recorded in status; removal of the newest entries cannot be detected');
  } else {
    lines.push(`audit trail of KeyPolicy ${namespace}/${policy}: BROKEN — ${result.problems.length} problems`);
    for (const p of result.problems) {
      const where = [`segment ${p.segmentIndex ?? `#${p.segmentPosition}`}`, ...(p.entryPosition === undefined ? [] : [`entry ${p.entryPosition}`]), ...(p.seq === undefined ? [] : [`seq ${p.seq}`])].join(', ');
      lines.push(`  ${p.kind} (${where}): ${p.message}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export async function auditCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'verify') throw new CliError(`unknown audit command ${sub ?? '(none)'}\n${AUDIT_VERIFY_USAGE}`, 2);
  const { values } = parseArgs({
    args: rest,
    options: {
      namespace: { type: 'string', short: 'n' },
      policy: { type: 'string' },
      segments: { type: 'string', multiple: true },
      head: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.out(AUDIT_VERIFY_USAGE);
    return 0;
  }
  const { namespace, policy } = values;
  if (!namespace || !policy) throw new CliError(`--namespace and --policy are required\n${AUDIT_VERIFY_USAGE}`, 2);
  let segments: StoredSegment[];
  let head: AuditHead | undefined;
  if (values.segments && values.segments.length > 0) {
    segments = await Promise.all(values.segments.map(async (file, index) => ({ configMap: file, index, text: (await io.readFile(file)).toString('utf8') })));
    head = values.head ? (JSON.parse((await io.readFile(values.head)).toString('utf8')) as AuditHead) : undefined;
  } else {
    ({ segments, head } = await readClusterTrail(io.kubeConfig(), namespace, policy));
  }
  const result = verifyStoredTrail(namespace, policy, segments, head);
  (result.ok ? io.out : io.err)(formatVerification(namespace, policy, result, head));
  return result.ok ? 0 : 1;
}
