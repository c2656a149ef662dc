// Durable storage of a KeyPolicy's audit chain: one ConfigMap per segment in the policy's
// namespace, the head in the policy's status. The pure chain and segment logic is operator/audit;
// this file only reads, appends and writes.
//
// Appends are serialised per trail inside the process (the KeyPolicy and EncryptedService
// controllers both record events) and guarded across processes by resourceVersion: a conflicting
// write re-reads and re-appends, so two writers can never fork the chain.
//
// The head (segment, sequence, hash) is written to status under a field manager of its own, so
// the KeyPolicy reconciler's status writes, which never include it, neither own nor drop it.
// Growth is bounded by keeping the newest AUDIT_MAX_SEGMENTS segments. Which segment the chain
// must start at follows from the head; only the hash a pruned chain starts from is taken from
// that segment itself, which is what pruning gives up.
import type { CoreV1Api, V1ConfigMap } from '@kubernetes/client-node';
import {
  API_VERSION, GROUP, KEY_POLICY, LABEL_COMPONENT, LABEL_KEY_POLICY, VERSION, type AuditHead as StatusAuditHead,
} from '../api/v1alpha1/index.js';
import { createHash } from 'node:crypto';
import { genesisHash, type AuditEvent, type AuditEventType } from '../audit/chain.js';
import {
  appendAuditEvent, parseSegment, segmentDataKey, serializeSegment, verifyAuditTrail,
  type AuditHead, type AuditSegment, type AuditVerification,
} from '../audit/segments.js';
import type { Applier } from '../kube/apply.js';
import { isConflict, isNotFound } from '../runtime/api-error.js';
import type { Logger } from '../runtime/logger.js';
import { auditSegmentConfigMapName, auditTrailId, keyPolicyLabels } from './names.js';

export const AUDIT_FIELD_MANAGER = 'lockstep-operator-audit';
/** Segments kept per trail; older ones are pruned. Verification relies on the same number. */
export const AUDIT_MAX_SEGMENTS = 16;
const MAX_SEGMENT_BYTES = 256 * 1024;
const SEGMENT_INDEX = /^segment-(\d{6})\.jsonl$/;

export interface PolicyIdentity {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export interface StoredSegment {
  readonly configMap: string;
  readonly index: number;
  readonly text: string;
  readonly resourceVersion?: string;
  readonly immutable?: boolean;
}

/** The audit ConfigMaps of a policy, in chain order (by the index in their data key). */
export async function readStoredSegments(core: CoreV1Api, namespace: string, policy: string): Promise<StoredSegment[]> {
  const list = await core.listNamespacedConfigMap({
    namespace,
    labelSelector: `${LABEL_KEY_POLICY}=${policy},${LABEL_COMPONENT}=audit`,
  });
  return segmentsOf(list.items);
}

export function segmentsOf(configMaps: readonly V1ConfigMap[]): StoredSegment[] {
  const out: StoredSegment[] = [];
  for (const cm of configMaps) {
    for (const [key, text] of Object.entries(cm.data ?? {})) {
      const match = SEGMENT_INDEX.exec(key);
      if (!match) continue;
      out.push({
        configMap: cm.metadata?.name ?? '',
        index: Number(match[1]),
        text,
        ...(cm.metadata?.resourceVersion ? { resourceVersion: cm.metadata.resourceVersion } : {}),
        ...(cm.immutable ? { immutable: true } : {}),
      });
    }
  }
  return out.sort((a, b) => a.index - b.index);
}

/**
 * The full head for verification. Status carries the newest end; the base follows from it,
 * because the operator prunes only down to AUDIT_MAX_SEGMENTS: the oldest segment that must
 * exist is head.segment - AUDIT_MAX_SEGMENTS + 1 (or 0), so removing old segments beyond that is
 * detected. Only the hash a pruned chain starts from has to be taken from that segment itself.
 */
export function verificationHead(
  trail: string,
  status: StatusAuditHead | undefined,
  oldest: AuditSegment | undefined,
  maxSegments = AUDIT_MAX_SEGMENTS,
): AuditHead | undefined {
  if (status?.hash === undefined || status.sequence === undefined || status.segment === undefined) return undefined;
  const firstSegment = Math.max(0, status.segment - maxSegments + 1);
  const base = firstSegment === 0
    ? { firstSegment: 0, firstSequence: 1, firstPrevHash: genesisHash(trail) }
    : oldest !== undefined && oldest.index === firstSegment
      ? { firstSegment, firstSequence: oldest.firstSeq, firstPrevHash: oldest.prevHash }
      // The segment the chain must start at is gone: anchor where it should be, so the gap shows.
      : { firstSegment, firstSequence: oldest?.firstSeq ?? 1, firstPrevHash: oldest?.prevHash ?? genesisHash(trail) };
  return { trail, segment: status.segment, sequence: status.sequence, hash: status.hash, ...base };
}

/** Verifies stored segments against the head in status (when there is one). */
export function verifyStoredTrail(
  namespace: string,
  policy: string,
  segments: readonly StoredSegment[],
  statusHead: StatusAuditHead | undefined,
  maxSegments = AUDIT_MAX_SEGMENTS,
): AuditVerification {
  const trail = auditTrailId(namespace, policy);
  let oldest: AuditSegment | undefined;
  try {
    oldest = segments[0] ? parseSegment(segments[0].text) : undefined;
  } catch {
    oldest = undefined;
  }
  const head = verificationHead(trail, statusHead, oldest, maxSegments);
  return verifyAuditTrail(segments.map((s) => s.text), head ? { head } : { trail });
}

/**
 * Whether the newest audit segment among `configMaps` (a policy's, typically from the informer
 * cache) already holds an entry of `type` whose `fingerprint` detail is `fingerprint`. Lets a
 * restarted operator recognise a condition it already audited instead of recording it again.
 */
export function alreadyAudited(configMaps: readonly V1ConfigMap[], namespace: string, policy: string, type: AuditEventType, fingerprint: string): boolean {
  const own = configMaps.filter((cm) => cm.metadata?.labels?.[LABEL_KEY_POLICY] === policy
    && cm.metadata?.labels?.[LABEL_COMPONENT] === 'audit' && cm.metadata?.namespace === namespace);
  const newest = segmentsOf(own).pop();
  if (!newest) return false;
  try {
    return parseSegment(newest.text).entries.some((e) => e.type === type && e.details?.['fingerprint'] === fingerprint);
  } catch {
    return false;
  }
}

/** A short, stable digest of what an audit entry is about, for `alreadyAudited`. */
export function auditFingerprint(parts: readonly (string | number)[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);
}

export interface AuditTrailOptions {
  readonly core: CoreV1Api;
  /** An Applier with AUDIT_FIELD_MANAGER, for the status head. */
  readonly statusApplier: Applier;
  readonly logger: Logger;
  /** Default AUDIT_MAX_SEGMENTS; `lockstep audit verify` assumes that value. */
  readonly maxSegments?: number;
}

export interface AuditRecorder {
  /** Appends the events (in order) to the policy's trail and moves the head in its status. */
  record(policy: PolicyIdentity, events: readonly AuditEvent[], segmentSize: number): Promise<void>;
}

export class AuditTrail implements AuditRecorder {
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #log: Logger;

  constructor(private readonly o: AuditTrailOptions) {
    this.#log = o.logger.child('audit');
  }

  record(policy: PolicyIdentity, events: readonly AuditEvent[], segmentSize: number): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    const id = `${policy.namespace}/${policy.name}`;
    const previous = this.#locks.get(id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#appendWithRetry(policy, events, segmentSize));
    this.#locks.set(id, next);
    void next.finally(() => {
      if (this.#locks.get(id) === next) this.#locks.delete(id);
    }).catch(() => undefined);
    return next;
  }

  async #appendWithRetry(policy: PolicyIdentity, events: readonly AuditEvent[], segmentSize: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#append(policy, events, segmentSize);
        return;
      } catch (err) {
        if (!isConflict(err) || attempt >= 4) throw err;
      }
    }
  }

  async #append(policy: PolicyIdentity, events: readonly AuditEvent[], segmentSize: number): Promise<void> {
    const trail = auditTrailId(policy.namespace, policy.name);
    const stored = await readStoredSegments(this.o.core, policy.namespace, policy.name);
    const parsed = stored.map((s) => ({ stored: s, segment: parseSegment(s.text) }));
    const oldest = parsed[0]?.segment;
    const newest = parsed[parsed.length - 1];
    let head: AuditHead | undefined = oldest
      ? {
        trail, segment: newest?.segment.index ?? 0, sequence: 0, hash: '',
        firstSegment: oldest.index, firstSequence: oldest.firstSeq, firstPrevHash: oldest.prevHash,
      }
      : undefined;
    let segment = newest?.segment;
    const touched = new Map<number, AuditSegment>();
    const limits = { maxEntries: segmentSize, maxBytes: MAX_SEGMENT_BYTES };
    for (const event of events) {
      const result = appendAuditEvent(trail, segment, event, { ...(head ? { head } : {}), limits });
      segment = result.segment;
      head = result.head;
      touched.set(segment.index, segment);
    }
    // Every segment but the newest is full and never changes again: sealing it (immutable) makes
    // the API server refuse edits; it can still be deleted, which verification reports.
    const newestIndex = segment?.index ?? 0;
    for (const [index, seg] of [...touched.entries()].sort((a, b) => a[0] - b[0])) {
      const existing = parsed.find((p) => p.segment.index === index)?.stored;
      await this.#writeSegment(policy, seg.index, serializeSegment(seg), existing, index < newestIndex);
    }
    for (const p of parsed) {
      if (p.segment.index < newestIndex && !touched.has(p.segment.index) && !p.stored.immutable) {
        await this.#writeSegment(policy, p.segment.index, p.stored.text, p.stored, true);
      }
    }
    if (head === undefined) return;
    const all = [...new Set([...parsed.map((p) => p.segment.index), ...touched.keys()])].sort((a, b) => a - b);
    const max = this.o.maxSegments ?? AUDIT_MAX_SEGMENTS;
    for (const index of all.slice(0, Math.max(0, all.length - max))) {
      await this.o.core.deleteNamespacedConfigMap({ namespace: policy.namespace, name: auditSegmentConfigMapName(policy.name, index) })
        .catch((err: unknown) => { if (!isNotFound(err)) throw err; });
    }
    try {
      await this.o.statusApplier.applyStatus(
        { group: GROUP, version: VERSION, plural: KEY_POLICY.plural, kind: KEY_POLICY.kind, namespace: policy.namespace, name: policy.name },
        { auditHead: { segment: head.segment, sequence: head.sequence, hash: head.hash } },
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    this.#log.debug('audit entries appended', { namespace: policy.namespace, keypolicy: policy.name, sequence: head.sequence, events: events.map((e) => e.type) });
  }

  async #writeSegment(policy: PolicyIdentity, index: number, text: string, existing: StoredSegment | undefined, immutable = false): Promise<void> {
    const name = auditSegmentConfigMapName(policy.name, index);
    const body: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name,
        namespace: policy.namespace,
        labels: keyPolicyLabels(policy.namespace, policy.name, 'audit'),
        ownerReferences: [{ apiVersion: API_VERSION, kind: KEY_POLICY.kind, name: policy.name, uid: policy.uid }],
        ...(existing?.resourceVersion ? { resourceVersion: existing.resourceVersion } : {}),
      },
      data: { [segmentDataKey(index)]: text },
      ...(immutable ? { immutable: true } : {}),
    };
    if (existing) {
      await this.o.core.replaceNamespacedConfigMap({ namespace: policy.namespace, name, body });
    } else {
      // A create that finds the segment already written by someone else is a conflict: re-read.
      await this.o.core.createNamespacedConfigMap({ namespace: policy.namespace, body });
    }
  }
}
