// `lockstep audit verify`: checks a KeyPolicy's audit chain — every entry's hash, every link,
// the sequence, the segments' order and summaries, archived and live — against the signed head
// in the operator's namespace, and the signatures with the operator's published public key (or
// one given with --public-key, kept apart from the cluster). Reads from the cluster, or from
// files exported earlier (segment files plus a head). A trail not yet moved by the operator is
// read from the policy's namespace and checked against the head in the policy's status.
import { parseArgs } from 'node:util';
import type { KeyObject } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { GROUP, KEY_POLICY, VERSION, type AuditHead, type KeyPolicy } from '../api/v1alpha1/index.js';
import { HEAD_FORMAT, parseHead, verifyAnchored, type AnchoredHead, type AnchoredVerification } from '../audit/head.js';
import type { AuditVerification } from '../audit/segments.js';
import { publicKeyFromPem } from '../audit/signing.js';
import { readPublishedKey } from '../keypolicy/audit-signer.js';
import { readHead, readSegments, type StoredSegment } from '../keypolicy/audit-store.js';
import { readLegacySegments, verifyStoredTrail } from '../keypolicy/audit-trail.js';
import { auditHeadName } from '../keypolicy/names.js';
import { CliError, type CliIo } from './io.js';

export const AUDIT_VERIFY_USAGE = `Usage: lockstep audit verify --namespace NS --policy POLICY [--operator-namespace NS] [--public-key FILE]
       lockstep audit verify --namespace NS --policy POLICY --segments FILE... [--head FILE] [--public-key FILE]
Verifies the hash-chained, signed audit trail of KeyPolicy NS/POLICY: its archived and live
segments and signed head in the operator's namespace (default $LOCKSTEP_NAMESPACE, else
lockstep-system), with the public key published there or the one in --public-key (PEM). Or from
exported segment files (JSON Lines, in chain order) and a head file (the head ConfigMap's head.json,
or a KeyPolicy status.auditHead). Exits 1 and says where the chain breaks.
`;

export interface ClusterTrail {
  readonly segments: StoredSegment[];
  readonly head: AnchoredHead | undefined;
  /** Set for a trail not yet moved into the operator's namespace. */
  readonly legacyHead?: AuditHead | undefined;
  readonly publicKey: KeyObject | undefined;
  readonly problem?: string;
}

export async function readClusterTrail(kc: k8s.KubeConfig, operatorNamespace: string, namespace: string, policy: string, pinned?: KeyObject): Promise<ClusterTrail> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const ref = { store: operatorNamespace, namespace, name: policy };
  const stored = await readHead(core, ref);
  const live = await readSegments(core, ref, 'segment');
  const publicKey = pinned ?? (await readPublishedKey(core, operatorNamespace))?.key;
  if (stored.unreadable !== undefined) return { segments: live, head: undefined, publicKey, problem: `head ConfigMap ${auditHeadName(namespace, policy)} is unreadable: ${stored.unreadable}` };
  if (stored.head) {
    const head = stored.head;
    const archive = (await readSegments(core, ref, 'archive')).filter((s) => s.index >= head.firstSegment && s.index < head.liveSegment);
    return { segments: [...archive, ...live.filter((s) => s.index >= head.liveSegment)], head, publicKey };
  }
  if (live.length > 0) return { segments: live, head: undefined, publicKey, problem: `${live.length} segments in ${operatorNamespace} but no head ConfigMap ${auditHeadName(namespace, policy)} (deleted)` };
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  let kp: KeyPolicy;
  try {
    kp = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: KEY_POLICY.plural, namespace, name: policy })) as KeyPolicy;
  } catch (err) {
    if ((err as { code?: number }).code === 404) throw new CliError(`KeyPolicy ${namespace}/${policy} not found, and no audit trail for it in ${operatorNamespace}`);
    throw err;
  }
  return { segments: await readLegacySegments(core, namespace, policy), head: undefined, legacyHead: kp.status?.auditHead, publicKey };
}

/** Human-readable report; `ok` decides the exit code. */
export function formatVerification(
  namespace: string, policy: string, result: AuditVerification | AnchoredVerification, context: { anchored: boolean; legacy?: boolean; keyChecked: boolean },
): string {
  const lines: string[] = [];
  if (result.ok) {
    lines.push(`audit trail of KeyPolicy ${namespace}/${policy}: OK — ${result.entries} entries in ${result.segments} segments, ends at seq ${result.end.seq}`);
    const signatures = 'signatures' in result ? result.signatures : undefined;
    if (signatures) lines.push(`signatures: ${signatures.signed} entries and the head verified${signatures.unsigned > 0 ? `; ${signatures.unsigned} older entries written before signing began` : ''}`);
    if (context.legacy) lines.push('note: trail still in the policy\'s namespace (not yet moved by the operator); checked against the head in status');
    if (!context.anchored && !context.legacy) lines.push('warning: no head given; removal of the newest entries cannot be detected');
    if (context.anchored && !context.keyChecked) lines.push('warning: no public key found; signatures not checked');
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
      'operator-namespace': { type: 'string' },
      'public-key': { type: 'string' },
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
  let pinned: KeyObject | undefined;
  if (values['public-key']) {
    try {
      pinned = publicKeyFromPem((await io.readFile(values['public-key'])).toString('utf8'));
    } catch (err) {
      throw new CliError(`--public-key: ${(err as Error).message}`);
    }
  }
  let trail: ClusterTrail;
  if (values.segments && values.segments.length > 0) {
    const segments = await Promise.all(values.segments.map(async (file, index) => ({ configMap: file, index, text: (await io.readFile(file)).toString('utf8') })));
    let head: AnchoredHead | undefined;
    let legacyHead: AuditHead | undefined;
    if (values.head) {
      const text = (await io.readFile(values.head)).toString('utf8');
      if (text.includes(HEAD_FORMAT)) head = parseHead(text);
      else legacyHead = JSON.parse(text) as AuditHead;
    }
    trail = { segments, head, legacyHead, publicKey: pinned };
  } else {
    const operatorNamespace = values['operator-namespace'] ?? process.env['LOCKSTEP_NAMESPACE'] ?? 'lockstep-system';
    trail = await readClusterTrail(io.kubeConfig(), operatorNamespace, namespace, policy, pinned);
  }
  let result: AuditVerification | AnchoredVerification;
  if (trail.problem !== undefined) {
    result = { ok: false, problems: [{ kind: 'missing-head', segmentPosition: 0, segmentIndex: undefined, message: trail.problem }], segments: trail.segments.length, entries: 0, end: { seq: 0, hash: '' } };
  } else if (trail.head) {
    result = verifyAnchored(trail.segments.map((s) => s.text), trail.head, { base: 'first', ...(trail.publicKey ? { publicKey: trail.publicKey } : {}) });
  } else {
    result = verifyStoredTrail(namespace, policy, trail.segments, trail.legacyHead);
  }
  const context = { anchored: trail.head !== undefined, legacy: trail.head === undefined && trail.legacyHead !== undefined && !values.segments, keyChecked: trail.publicKey !== undefined };
  (result.ok ? io.out : io.err)(formatVerification(namespace, policy, result, context));
  return result.ok ? 0 : 1;
}
