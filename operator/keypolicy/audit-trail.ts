// Durable storage of a KeyPolicy's audit chain, in the operator's namespace (audit-store.ts):
// tenants can neither write the segments nor the signed head that anchors them. The pure chain,
// segment and head logic is operator/audit; this file reads, checks, appends and writes.
//
// Every append first checks the live segments against the recorded head (hashes, links,
// sequence, signatures). A chain that does not match is never rebuilt, rewritten or silently
// restarted: the append is refused with AuditChainBrokenError, the KeyPolicy reports
// AuditChainBroken, and key changes wait (keypolicy/reconciler.ts). Only an administrator, who
// can write the head ConfigMap, restarts it (annotation lockstep.dev/audit-reset), and that
// restart is itself an entry that says what was lost.
//
// Appends are serialised per trail inside the process and guarded across processes by
// resourceVersion on the head: a conflicting write re-reads and re-appends. Full segments move to
// the archive (gzip, immutable) once more than AUDIT_MAX_SEGMENTS are live, and archived segments
// are deleted once more than AUDIT_ARCHIVE_SEGMENTS are archived; the head records where the
// retained chain begins, so what remains still verifies from there.
import { createHash } from 'node:crypto';
import type { CoreV1Api } from '@kubernetes/client-node';
import {
  GROUP, KEY_POLICY, LABEL_COMPONENT, LABEL_KEY_POLICY, VERSION, type AuditHead as StatusAuditHead,
} from '../api/v1alpha1/index.js';
import { genesisHash, type AuditEvent, type AuditEventType } from '../audit/chain.js';
import { signHead, verifyAnchored, type AnchoredHead } from '../audit/head.js';
import { AuditRateLimiter, DEFAULT_AUDIT_RATE_LIMIT, type AuditRateLimit } from '../audit/rate-limit.js';
import {
  appendAuditEvent, parseSegment, serializeSegment, verifyAuditTrail,
  type AuditHead, type AuditProblem, type AuditSegment, type AuditVerification,
} from '../audit/segments.js';
import { signEntryHash, type AuditSigningKey } from '../audit/signing.js';
import type { Applier } from '../kube/apply.js';
import { isConflict, isNotFound } from '../runtime/api-error.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import {
  ANNOTATION_AUDIT_RESET, archiveSegment, deleteConfigMap, readHead, readSegments, segmentsOf, writeHead, writeLiveSegment,
  type StoredSegment, type TrailRef,
} from './audit-store.js';
import { loadSigningKey } from './audit-signer.js';
import { auditArchiveSegmentName, auditHeadName, auditLiveSegmentName, auditTrailId } from './names.js';

export { segmentsOf, type StoredSegment } from './audit-store.js';

export const AUDIT_FIELD_MANAGER = 'lockstep-operator-audit';
/** Live segments per trail; older ones move to the archive. */
export const AUDIT_MAX_SEGMENTS = 16;
/** Archived segments per trail (about 61,000 entries at the default segment size); older ones are deleted. */
export const AUDIT_ARCHIVE_SEGMENTS = 240;
const MAX_SEGMENT_BYTES = 256 * 1024;
/** Written even while the chain is broken? No: these are counted as dropped instead of blocking
 * the service that caused them. Every other type blocks the operation that would record it. */
const DROPPABLE_WHEN_BROKEN: readonly AuditEventType[] = ['failed-decrypt', 'policy-violation'];

export interface PolicyIdentity {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** The head the policy's status recorded before trails moved: checks a trail being migrated. */
  readonly statusHead?: StatusAuditHead | undefined;
  /** spec.audit.segmentSize; 256 when unset. */
  readonly segmentSize?: number;
}

export class AuditChainBrokenError extends Error {
  override readonly name = 'AuditChainBrokenError';
}

/** The segments of a trail as stored before issue 11: ConfigMaps in the policy's namespace. */
export async function readLegacySegments(core: CoreV1Api, namespace: string, policy: string): Promise<StoredSegment[]> {
  const list = await core.listNamespacedConfigMap({ namespace, labelSelector: `${LABEL_KEY_POLICY}=${policy},${LABEL_COMPONENT}=audit` });
  return segmentsOf(list.items);
}

/**
 * The head of a legacy trail for verification. Status carries the newest end; the base follows
 * from it, because the operator pruned only down to AUDIT_MAX_SEGMENTS: the oldest segment that
 * must exist is head.segment - AUDIT_MAX_SEGMENTS + 1 (or 0).
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

/** Verifies legacy segments against the head in status (when there is one). */
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

/** A short, stable digest of what an audit entry is about, for `audited`. */
export function auditFingerprint(parts: readonly (string | number)[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);
}

function describeProblems(problems: readonly AuditProblem[]): string {
  const shown = problems.slice(0, 3).map((p) => p.message).join('; ');
  return problems.length > 3 ? `${shown}; and ${problems.length - 3} more` : shown;
}

export interface AuditTrailOptions {
  /** Leader-guarded client: segments, head and signing key in `operatorNamespace`. */
  readonly core: CoreV1Api;
  /** An Applier with AUDIT_FIELD_MANAGER, for the head mirrored into the KeyPolicy status. */
  readonly statusApplier: Applier;
  readonly logger: Logger;
  readonly metrics: OperatorMetrics;
  readonly operatorNamespace: string;
  readonly maxSegments?: number;
  readonly archiveSegments?: number;
  readonly rateLimit?: AuditRateLimit;
  readonly now?: () => Date;
}

export interface AuditRecorder {
  /** Appends the events (in order) to the policy's trail and moves its head. Throws
   * AuditChainBrokenError when the trail does not match its head (tenant-triggered events are
   * then counted as dropped instead). */
  record(policy: PolicyIdentity, events: readonly AuditEvent[], segmentSize: number): Promise<void>;
  /** Undefined when the trail may be appended to; otherwise why not. */
  check(policy: PolicyIdentity): Promise<string | undefined>;
  /** Whether the newest live segment already holds an entry of `type` with this `fingerprint`
   * detail: a restarted operator recognises what it already recorded. */
  audited(policy: PolicyIdentity, type: AuditEventType, fingerprint: string): Promise<boolean>;
  /** The operator's audit signing key (for the key Secret's outbox, audit-outbox.ts). */
  signingKey(): Promise<AuditSigningKey>;
}

interface Loaded {
  readonly segment: AuditSegment;
  readonly stored: StoredSegment;
}

interface TrailState {
  readonly head: AnchoredHead | undefined;
  readonly headVersion: string | undefined;
  /** Live segments from the head's live base on, in index order. */
  readonly live: readonly Loaded[];
  /** Entries to write first: a migration or a requested restart. */
  readonly preamble: readonly AuditEvent[];
  /** A restart continues from the head in a new segment instead of after the last live one. */
  readonly restartFrom?: { seq: number; hash: string; segment: number };
}

export class AuditTrail implements AuditRecorder {
  readonly #locks = new Map<string, Promise<unknown>>();
  /** Per trail: the stored state (resourceVersions) last verified. */
  readonly #verified = new Map<string, string>();
  readonly #flushTimers = new Map<string, NodeJS.Timeout>();
  readonly #limiter: AuditRateLimiter;
  readonly #log: Logger;
  readonly #now: () => Date;
  #key: Promise<AuditSigningKey> | undefined;

  constructor(private readonly o: AuditTrailOptions) {
    this.#log = o.logger.child('audit');
    this.#limiter = new AuditRateLimiter(o.rateLimit ?? DEFAULT_AUDIT_RATE_LIMIT);
    this.#now = o.now ?? (() => new Date());
  }

  record(policy: PolicyIdentity, events: readonly AuditEvent[], segmentSize: number): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    return this.#serial(policy, () => this.#appendWithRetry(policy, events, segmentSize));
  }

  check(policy: PolicyIdentity): Promise<string | undefined> {
    return this.#serial(policy, async () => {
      try {
        // An append of nothing: checks the chain, and writes what a migration or restart owes it.
        await this.#appendWithRetry(policy, [], policy.segmentSize ?? 256);
        return undefined;
      } catch (err) {
        if (err instanceof AuditChainBrokenError) return err.message;
        throw err;
      }
    });
  }

  audited(policy: PolicyIdentity, type: AuditEventType, fingerprint: string): Promise<boolean> {
    return this.#serial(policy, async () => {
      const newest = (await readSegments(this.o.core, this.#ref(policy), 'segment')).pop();
      if (!newest) return false;
      try {
        return parseSegment(newest.text).entries.some((e) => e.type === type && e.details?.['fingerprint'] === fingerprint);
      } catch {
        return false;
      }
    });
  }

  #serial<T>(policy: PolicyIdentity, work: () => Promise<T>): Promise<T> {
    const id = `${policy.namespace}/${policy.name}`;
    const previous = this.#locks.get(id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(work);
    this.#locks.set(id, next);
    void next.finally(() => {
      if (this.#locks.get(id) === next) this.#locks.delete(id);
    }).catch(() => undefined);
    return next;
  }

  signingKey(): Promise<AuditSigningKey> {
    return this.#signingKey();
  }

  #signingKey(): Promise<AuditSigningKey> {
    this.#key ??= loadSigningKey(this.o.core, this.o.operatorNamespace).catch((err: unknown) => {
      this.#key = undefined;
      throw err;
    });
    return this.#key;
  }

  #ref(policy: PolicyIdentity): TrailRef {
    return { store: this.o.operatorNamespace, namespace: policy.namespace, name: policy.name };
  }

  #broken(policy: PolicyIdentity, what: string): AuditChainBrokenError {
    const head = `${this.o.operatorNamespace}/${auditHeadName(policy.namespace, policy.name)}`;
    return new AuditChainBrokenError(
      `audit trail of KeyPolicy ${policy.namespace}/${policy.name} does not match its recorded head: ${what}. ` +
      'Nothing is appended and key changes wait. Recover by restoring the missing or changed segments ' +
      `(lockstep audit verify --namespace ${policy.namespace} --policy ${policy.name} shows where), or accept the loss: ` +
      `kubectl annotate configmap -n ${head.replace('/', ' ')} ${ANNOTATION_AUDIT_RESET}=<reason> restarts the chain from the head with an entry that records it`,
    );
  }

  async #appendWithRetry(policy: PolicyIdentity, events: readonly AuditEvent[], segmentSize: number): Promise<void> {
    const key = await this.#signingKey();
    let state: TrailState;
    try {
      state = await this.#load(policy, key);
    } catch (err) {
      if (!(err instanceof AuditChainBrokenError)) throw err;
      if (events.length === 0 || events.some((e) => !DROPPABLE_WHEN_BROKEN.includes(e.type))) throw err;
      for (const e of events) this.o.metrics.auditDropped.inc({ type: e.type, reason: 'chain-broken' });
      this.#log.warn('audit events dropped: chain broken', { namespace: policy.namespace, keypolicy: policy.name, events: events.map((e) => e.type) });
      return;
    }
    const trail = auditTrailId(policy.namespace, policy.name);
    const admission = this.#limiter.admit(trail, { namespace: policy.namespace, name: policy.name, kind: KEY_POLICY.kind }, events, this.#now());
    for (const [type, count] of admission.suppressed) this.o.metrics.auditSuppressed.inc({ type }, count);
    if (admission.flushAt !== undefined) this.#scheduleFlush(policy, segmentSize, admission.flushAt);
    const toWrite = [...state.preamble, ...admission.events];
    if (toWrite.length === 0) return;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#append(policy, key, state, toWrite, segmentSize);
        return;
      } catch (err) {
        this.#verified.delete(trail);
        if (!isConflict(err) || attempt >= 4) throw err;
        state = await this.#load(policy, key);
      }
    }
  }

  /** A window with suppressed events closes even when no further event arrives. */
  #scheduleFlush(policy: PolicyIdentity, segmentSize: number, at: number): void {
    const id = `${policy.namespace}/${policy.name}`;
    if (this.#flushTimers.has(id)) return;
    const timer = setTimeout(() => {
      this.#flushTimers.delete(id);
      void this.#serial(policy, () => this.#appendWithRetry(policy, [], segmentSize)).catch((err: unknown) =>
        this.#log.warn('suppressed audit summary not written', { namespace: policy.namespace, keypolicy: policy.name, error: err instanceof Error ? err.message : String(err) }));
    }, Math.max(0, at - this.#now().getTime()) + 10);
    timer.unref();
    this.#flushTimers.set(id, timer);
  }

  async #load(policy: PolicyIdentity, key: AuditSigningKey): Promise<TrailState> {
    const ref = this.#ref(policy);
    const trail = auditTrailId(policy.namespace, policy.name);
    const stored = await readHead(this.o.core, ref);
    const segments = await readSegments(this.o.core, ref, 'segment');
    if (stored.unreadable !== undefined) throw this.#broken(policy, `the head ConfigMap cannot be read (${stored.unreadable})`);
    const head = stored.head;
    if (!head) return this.#migrate(policy, key, segments);
    if (head.trail !== trail) throw this.#broken(policy, `the head names trail ${head.trail}`);
    const live = segments.filter((s) => s.index >= head.liveSegment);
    const fingerprint = `${stored.resourceVersion ?? ''}|${live.map((s) => `${s.configMap}@${s.resourceVersion ?? ''}`).join(',')}`;
    if (this.#verified.get(trail) !== fingerprint) {
      const checked = verifyAnchored(live.map((s) => s.text), head, { base: 'live', publicKey: key.publicKey, acceptSignedTail: true });
      if (!checked.ok) {
        if (stored.reset !== undefined) return this.#restart(policy, head, stored, describeProblems(checked.problems), segments);
        throw this.#broken(policy, describeProblems(checked.problems));
      }
      this.#verified.set(trail, fingerprint);
    }
    return {
      head, headVersion: stored.resourceVersion,
      live: live.map((s) => ({ stored: s, segment: parseSegment(s.text) })), preamble: [],
    };
  }

  /**
   * An administrator accepted the loss: the chain continues from the recorded head (the last
   * position the operator vouched for) in a new segment, and its first entry says what was lost.
   * The broken segments stay where they are as evidence; verification starts after them.
   */
  #restart(policy: PolicyIdentity, head: AnchoredHead, stored: { resourceVersion?: string; reset?: string }, problems: string, segments: readonly StoredSegment[]): TrailState {
    const after = Math.max(head.segment, ...segments.map((s) => s.index));
    this.#log.warn('audit chain restarted by annotation', { namespace: policy.namespace, keypolicy: policy.name, fromSequence: head.sequence });
    return {
      head: { ...head, firstSegment: after + 1, firstSequence: head.sequence + 1, firstPrevHash: head.hash, liveSegment: after + 1, liveSequence: head.sequence + 1, livePrevHash: head.hash },
      headVersion: stored.resourceVersion,
      live: [],
      restartFrom: { seq: head.sequence, hash: head.hash, segment: after },
      preamble: [{
        type: 'chain-reset', time: this.#now(),
        subject: { namespace: policy.namespace, name: policy.name, kind: KEY_POLICY.kind },
        details: { reason: (stored.reset ?? '').slice(0, 200), fromSequence: head.sequence, lostAfterSegment: after, problems: problems.slice(0, 480) },
      }],
    };
  }

  /**
   * No head in the operator's namespace: a new trail, or one still kept in the policy's own
   * namespace by an earlier version. The latter is moved only once it verifies against the
   * head in the KeyPolicy status (which tenants cannot write); segments are copied unchanged,
   * the head is written, then the old copies are deleted.
   */
  async #migrate(policy: PolicyIdentity, key: AuditSigningKey, live: readonly StoredSegment[]): Promise<TrailState> {
    const trail = auditTrailId(policy.namespace, policy.name);
    const legacy = await readLegacySegments(this.o.core, policy.namespace, policy.name);
    const statusSeq = policy.statusHead?.sequence ?? 0;
    if (legacy.length === 0) {
      if (live.length > 0) throw this.#broken(policy, `${live.length} segments exist but the head ConfigMap ${auditHeadName(policy.namespace, policy.name)} is missing`);
      if (statusSeq > 0) throw this.#broken(policy, `the KeyPolicy status records entry ${statusSeq} but no segment exists, neither in namespace ${policy.namespace} nor in ${this.o.operatorNamespace} (deleted before the trail was moved)`);
      return { head: undefined, headVersion: undefined, live: [], preamble: [] };
    }
    if (!live.every((s) => legacy.some((l) => l.index === s.index && l.text === s.text))) {
      throw this.#broken(policy, `segments exist but the head ConfigMap ${auditHeadName(policy.namespace, policy.name)} is missing`);
    }
    if (policy.statusHead?.hash === undefined) {
      throw this.#broken(policy, `the trail in namespace ${policy.namespace} has no head in the KeyPolicy status to check it against before moving it`);
    }
    const checked = verifyStoredTrail(policy.namespace, policy.name, legacy, policy.statusHead);
    if (!checked.ok) throw this.#broken(policy, `the trail in namespace ${policy.namespace} does not verify against the head in the KeyPolicy status, so it is not moved: ${describeProblems(checked.problems)}`);
    const ref = this.#ref(policy);
    const parsed = legacy.map((s) => parseSegment(s.text));
    const newest = parsed[parsed.length - 1] as AuditSegment;
    for (const [i, s] of legacy.entries()) {
      if (live.some((l) => l.index === s.index)) continue;
      await writeLiveSegment(this.o.core, ref, s.index, s.text, undefined, i < legacy.length - 1);
    }
    const base = verificationHead(trail, policy.statusHead, parsed[0]) as AuditHead;
    const head = signHead({
      trail, segment: newest.index, sequence: checked.end.seq, hash: checked.end.hash,
      firstSegment: base.firstSegment, firstSequence: base.firstSequence, firstPrevHash: base.firstPrevHash,
      liveSegment: base.firstSegment, liveSequence: base.firstSequence, livePrevHash: base.firstPrevHash,
    }, key);
    const headVersion = await writeHead(this.o.core, ref, head, undefined);
    for (const s of legacy) await deleteConfigMap(this.o.core, policy.namespace, s.configMap);
    this.#log.info('audit trail moved into the operator namespace', { namespace: policy.namespace, keypolicy: policy.name, entries: checked.entries });
    const reread = (await readSegments(this.o.core, ref, 'segment')).filter((s) => s.index >= head.liveSegment);
    return {
      head, headVersion,
      live: reread.map((s) => ({ stored: s, segment: parseSegment(s.text) })),
      preamble: [{
        type: 'migrate', time: this.#now(),
        subject: { namespace: policy.namespace, name: policy.name, kind: KEY_POLICY.kind },
        details: { fromNamespace: policy.namespace, toNamespace: this.o.operatorNamespace, entries: checked.entries, segments: legacy.length },
      }],
    };
  }

  async #append(policy: PolicyIdentity, key: AuditSigningKey, state: TrailState, events: readonly AuditEvent[], segmentSize: number): Promise<void> {
    const ref = this.#ref(policy);
    const trail = auditTrailId(policy.namespace, policy.name);
    const genesis = genesisHash(trail);
    const base = state.head ?? {
      firstSegment: 0, firstSequence: 1, firstPrevHash: genesis, liveSegment: 0, liveSequence: 1, livePrevHash: genesis,
    };
    let segment = state.live[state.live.length - 1]?.segment;
    let head: AuditHead | undefined;
    const touched = new Map<number, AuditSegment>();
    const limits = { maxEntries: segmentSize, maxBytes: MAX_SEGMENT_BYTES };
    const sign = (hash: string): string => signEntryHash(key, hash);
    for (const event of events) {
      const result = appendAuditEvent(trail, segment, event, {
        head: { trail, segment: 0, sequence: 0, hash: genesis, firstSegment: base.liveSegment, firstSequence: base.liveSequence, firstPrevHash: base.livePrevHash },
        limits, sign, ...(segment === undefined && state.restartFrom ? { from: state.restartFrom } : {}),
      });
      segment = result.segment;
      head = result.head;
      touched.set(segment.index, segment);
    }
    if (!segment || !head) return;
    // Every segment but the newest is full and never changes again: immutable, so the API server
    // refuses edits even from the operator's own Role.
    const newestIndex = segment.index;
    const versions = new Map(state.live.map((l) => [l.segment.index, l.stored.resourceVersion ?? '']));
    for (const [index, seg] of [...touched.entries()].sort((a, b) => a[0] - b[0])) {
      const existing = state.live.find((p) => p.segment.index === index)?.stored;
      versions.set(index, await writeLiveSegment(this.o.core, ref, index, serializeSegment(seg), existing, index < newestIndex) ?? '');
    }
    for (const p of state.live) {
      if (p.segment.index < newestIndex && !touched.has(p.segment.index) && !p.stored.immutable) {
        versions.set(p.segment.index, await writeLiveSegment(this.o.core, ref, p.segment.index, p.stored.text, p.stored, true) ?? '');
      }
    }

    // Archive before pruning: the head moves its live base only after the copy exists.
    const all = new Map<number, { text: string; segment: AuditSegment }>(state.live.map((l) => [l.segment.index, { text: l.stored.text, segment: l.segment }]));
    for (const [index, seg] of touched) all.set(index, { text: serializeSegment(seg), segment: seg });
    const ordered = [...all.entries()].sort((a, b) => a[0] - b[0]);
    const toArchive = ordered.slice(0, Math.max(0, ordered.length - (this.o.maxSegments ?? AUDIT_MAX_SEGMENTS)));
    for (const [index, { text }] of toArchive) {
      if (await archiveSegment(this.o.core, ref, index, text) === 'differs') {
        throw this.#broken(policy, `archived segment ${index} exists with different content`);
      }
    }
    const liveFirst = (ordered[toArchive.length] as [number, { segment: AuditSegment }])[1].segment;
    let first = { firstSegment: base.firstSegment, firstSequence: base.firstSequence, firstPrevHash: base.firstPrevHash };
    let expired: StoredSegment[] = [];
    if (toArchive.length > 0) {
      const archived = (await readSegments(this.o.core, ref, 'archive')).filter((s) => s.index >= base.firstSegment);
      expired = archived.slice(0, Math.max(0, archived.length - (this.o.archiveSegments ?? AUDIT_ARCHIVE_SEGMENTS)));
      const oldestKept = archived[expired.length];
      const kept = oldestKept ? parseSegment(oldestKept.text) : liveFirst;
      if (expired.length > 0) first = { firstSegment: kept.index, firstSequence: kept.firstSeq, firstPrevHash: kept.prevHash };
    }
    const next = signHead({
      trail, segment: head.segment, sequence: head.sequence, hash: head.hash, ...first,
      liveSegment: liveFirst.index, liveSequence: liveFirst.firstSeq, livePrevHash: liveFirst.prevHash,
    }, key);
    const headVersion = await writeHead(this.o.core, ref, next, state.headVersion);
    for (const [index] of toArchive) await deleteConfigMap(this.o.core, ref.store, auditLiveSegmentName(ref.namespace, ref.name, index));
    for (const s of expired) await deleteConfigMap(this.o.core, ref.store, auditArchiveSegmentName(ref.namespace, ref.name, s.index));
    this.#verified.set(trail, `${headVersion ?? ''}|${ordered.slice(toArchive.length).map(([index]) => `${auditLiveSegmentName(ref.namespace, ref.name, index)}@${versions.get(index) ?? ''}`).join(',')}`);

    // Mirrored for `kubectl get`; the anchor is the signed head in the operator's namespace.
    try {
      await this.o.statusApplier.applyStatus(
        { group: GROUP, version: VERSION, plural: KEY_POLICY.plural, kind: KEY_POLICY.kind, namespace: policy.namespace, name: policy.name },
        { auditHead: { segment: next.segment, sequence: next.sequence, hash: next.hash } },
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    this.#log.debug('audit entries appended', { namespace: policy.namespace, keypolicy: policy.name, sequence: next.sequence, events: events.map((e) => e.type) });
  }
}
