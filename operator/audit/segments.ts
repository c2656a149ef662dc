import {
  genesisHash,
  nextEntry,
  verifyEntries,
  type AuditEntry,
  type AuditEvent,
  type ChainPosition,
} from './chain.js';

// Storage form of the audit chain. A trail is a run of segments; each segment is one string
// (JSON Lines: a summary line, then one entry per line) sized to sit in a ConfigMap data value
// — ConfigMaps are capped at 1 MiB in total, so segments are capped well below that. A full
// segment never changes again (it can be written as an immutable ConfigMap); a new segment
// starts from the previous one's last hash, and each segment records its index, first seq,
// prevHash and last hash so the chain carries across, and so a removed segment is detected.
//
// The head (last segment, seq and hash, plus where the retained chain starts once old segments
// are archived) is anchored apart from the segments (head.ts). Without a head, verification
// proves internal consistency only: dropping the newest segment or the last entries would go
// unnoticed.

export const SEGMENT_FORMAT = 'lockstep.audit.segment.v1';
/** Hard ceiling for one serialised segment, leaving room for metadata under the 1 MiB limit. */
export const MAX_SEGMENT_BYTES = 900 * 1024;

export interface SegmentLimits {
  readonly maxEntries: number;
  readonly maxBytes: number;
}

export const DEFAULT_SEGMENT_LIMITS: SegmentLimits = { maxEntries: 500, maxBytes: 256 * 1024 };

export interface AuditSegment {
  readonly trail: string;
  /** 0 for the first segment of a trail, then +1 per segment. */
  readonly index: number;
  readonly firstSeq: number;
  /** Last hash of the previous segment, or the trail's genesis hash for segment 0. */
  readonly prevHash: string;
  readonly lastHash: string;
  readonly entries: readonly AuditEntry[];
}

/** What the KeyPolicy status records so that truncation and pruning can be checked. */
export interface AuditHead {
  readonly trail: string;
  /** Index of the newest segment. */
  readonly segment: number;
  /** seq of the newest entry. */
  readonly sequence: number;
  readonly hash: string;
  /** Oldest retained segment, its first seq and the hash it starts from (0 / 1 / genesis until pruned). */
  readonly firstSegment: number;
  readonly firstSequence: number;
  readonly firstPrevHash: string;
}

export interface AppendResult {
  /** The segment to write: the last one with the entry added, or a new one. */
  readonly segment: AuditSegment;
  /** True when `segment` is new; the previous segment is then full and unchanged. */
  readonly startedNewSegment: boolean;
  readonly entry: AuditEntry;
  readonly head: AuditHead;
}

export class AuditFormatError extends Error {
  override readonly name = 'AuditFormatError';
}

const TRAIL = /^[A-Za-z0-9._:/-]{1,253}$/;

function checkLimits(limits: SegmentLimits): void {
  if (!Number.isInteger(limits.maxEntries) || limits.maxEntries < 1) throw new RangeError('maxEntries must be >= 1');
  if (!Number.isInteger(limits.maxBytes) || limits.maxBytes < 4096 || limits.maxBytes > MAX_SEGMENT_BYTES) {
    throw new RangeError(`maxBytes must be between 4096 and ${MAX_SEGMENT_BYTES}`);
  }
}

/**
 * Appends one event. `lastSegment` is the newest stored segment (undefined for a new trail);
 * `head` carries the pruning base forward. Pure: the caller writes the returned segment first,
 * then the head — after a crash between the two the head is merely behind, which verification
 * reports as `head-behind` and the next append repairs.
 */
export function appendAuditEvent(
  trail: string,
  lastSegment: AuditSegment | undefined,
  event: AuditEvent,
  options: {
    readonly head?: AuditHead;
    readonly limits?: SegmentLimits;
    readonly sign?: (hash: string) => string;
    /** Without `lastSegment`: continue from this position in a new segment after `segment`
     * (a chain restarted from its recorded head when the segments after it were lost). */
    readonly from?: ChainPosition & { readonly segment: number };
  } = {},
): AppendResult {
  if (!TRAIL.test(trail)) throw new AuditFormatError('trail id must be a short name');
  const limits = options.limits ?? DEFAULT_SEGMENT_LIMITS;
  checkLimits(limits);
  if (lastSegment !== undefined && lastSegment.trail !== trail) {
    throw new AuditFormatError('last segment belongs to another trail');
  }
  const lastEntry = lastSegment?.entries[lastSegment.entries.length - 1];
  const previous: ChainPosition = lastEntry !== undefined
    ? { seq: lastEntry.seq, hash: lastEntry.hash }
    : options.from ? { seq: options.from.seq, hash: options.from.hash } : { seq: 0, hash: genesisHash(trail) };
  const unsigned = nextEntry(previous, event);
  const entry: AuditEntry = options.sign ? { ...unsigned, sig: options.sign(unsigned.hash) } : unsigned;

  let segment: AuditSegment | undefined;
  if (lastSegment !== undefined && lastSegment.entries.length < limits.maxEntries) {
    const grown = { ...lastSegment, lastHash: entry.hash, entries: [...lastSegment.entries, entry] };
    if (Buffer.byteLength(serializeSegment(grown)) <= limits.maxBytes) segment = grown;
  }
  const startedNewSegment = segment === undefined;
  if (segment === undefined) {
    segment = {
      trail,
      index: lastSegment !== undefined ? lastSegment.index + 1 : options.from ? options.from.segment + 1 : (options.head?.firstSegment ?? 0),
      firstSeq: entry.seq,
      prevHash: previous.hash,
      lastHash: entry.hash,
      entries: [entry],
    };
    if (Buffer.byteLength(serializeSegment(segment)) > limits.maxBytes) {
      throw new AuditFormatError('a single audit entry exceeds the segment size limit');
    }
  }
  return {
    segment,
    startedNewSegment,
    entry,
    head: {
      trail,
      segment: segment.index,
      sequence: entry.seq,
      hash: entry.hash,
      firstSegment: options.head?.firstSegment ?? 0,
      firstSequence: options.head?.firstSequence ?? 1,
      firstPrevHash: options.head?.firstPrevHash ?? genesisHash(trail),
    },
  };
}

/**
 * Drops the oldest segments so that at most `keep` remain, moving the head's base forward.
 * The caller deletes the dropped segments after writing the new head.
 */
export function pruneSegments(
  segments: readonly AuditSegment[],
  head: AuditHead,
  keep: number,
): { readonly kept: readonly AuditSegment[]; readonly dropped: readonly number[]; readonly head: AuditHead } {
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError('keep must be >= 1');
  const ordered = [...segments].sort((a, b) => a.index - b.index);
  if (ordered.length <= keep) return { kept: ordered, dropped: [], head };
  const kept = ordered.slice(ordered.length - keep);
  const first = kept[0] as AuditSegment;
  return {
    kept,
    dropped: ordered.slice(0, ordered.length - keep).map((segment) => segment.index),
    head: { ...head, firstSegment: first.index, firstSequence: first.firstSeq, firstPrevHash: first.prevHash },
  };
}

/** ConfigMap data key for a segment; zero-padded so lexical order is chain order. */
export function segmentDataKey(index: number): string {
  return `segment-${String(index).padStart(6, '0')}.jsonl`;
}

export function serializeSegment(segment: AuditSegment): string {
  const summary = {
    format: SEGMENT_FORMAT,
    trail: segment.trail,
    index: segment.index,
    firstSeq: segment.firstSeq,
    prevHash: segment.prevHash,
    lastHash: segment.lastHash,
    count: segment.entries.length,
  };
  return [summary, ...segment.entries].map((line) => JSON.stringify(line)).join('\n') + '\n';
}

/** Parses the stored form; checks shape only (verifyAuditTrail checks the hashes). */
export function parseSegment(text: string): AuditSegment {
  if (typeof text !== 'string') throw new AuditFormatError('segment is not a string');
  const lines = text.split('\n').filter((line) => line.length > 0);
  let parsed: unknown[];
  try {
    parsed = lines.map((line) => JSON.parse(line) as unknown);
  } catch {
    throw new AuditFormatError('segment is not JSON Lines');
  }
  const [summary, ...entries] = parsed;
  if (typeof summary !== 'object' || summary === null || Array.isArray(summary)) {
    throw new AuditFormatError('segment has no summary line');
  }
  const { format, trail, index, firstSeq, prevHash, lastHash, count } = summary as Record<string, unknown>;
  if (format !== SEGMENT_FORMAT) throw new AuditFormatError('unknown segment format');
  if (typeof trail !== 'string' || !TRAIL.test(trail)) throw new AuditFormatError('segment trail is missing');
  if (!Number.isSafeInteger(index) || (index as number) < 0) throw new AuditFormatError('segment index is invalid');
  if (!Number.isSafeInteger(firstSeq) || (firstSeq as number) < 1) throw new AuditFormatError('segment firstSeq is invalid');
  if (typeof prevHash !== 'string' || typeof lastHash !== 'string') throw new AuditFormatError('segment hashes are missing');
  if (count !== entries.length) throw new AuditFormatError('segment entry count does not match its summary');
  return {
    trail,
    index: index as number,
    firstSeq: firstSeq as number,
    prevHash,
    lastHash,
    entries: entries as AuditEntry[],
  };
}

export type AuditProblemKind =
  | 'malformed-segment'
  | 'wrong-trail'
  | 'missing-segment'
  | 'segment-order'
  | 'segment-link'
  | 'segment-summary'
  | 'entry-hash'
  | 'entry-link'
  | 'sequence'
  | 'entry-shape'
  | 'head-mismatch'
  | 'head-behind'
  | 'head-signature'
  | 'entry-signature'
  | 'missing-head';

export interface AuditProblem {
  readonly kind: AuditProblemKind;
  /** Position of the segment in the list given. */
  readonly segmentPosition: number;
  /** The index the segment claims, when it could be read. */
  readonly segmentIndex: number | undefined;
  /** Position of the entry in that segment, for entry problems. */
  readonly entryPosition?: number;
  readonly seq?: number;
  readonly message: string;
}

export interface AuditVerification {
  readonly ok: boolean;
  readonly problems: readonly AuditProblem[];
  readonly segments: number;
  readonly entries: number;
  /** Where the chain ends as stored (compare with the head in status). */
  readonly end: ChainPosition;
}

/**
 * Verifies segments in the order given (sort by index, e.g. by data key, before calling: the
 * order is part of what is checked). With `head`, also proves nothing was cut from either end.
 */
export function verifyAuditTrail(
  input: readonly (AuditSegment | string)[],
  options: { readonly head?: AuditHead; readonly trail?: string } = {},
): AuditVerification {
  const problems: AuditProblem[] = [];
  const segments: (AuditSegment | undefined)[] = input.map((item, position) => {
    if (typeof item !== 'string') return item;
    try {
      return parseSegment(item);
    } catch (error) {
      const reason = error instanceof AuditFormatError ? error.message : 'unreadable';
      problems.push({ kind: 'malformed-segment', segmentPosition: position, segmentIndex: undefined, message: reason });
      return undefined;
    }
  });
  const trail = options.head?.trail ?? options.trail ?? segments.find((segment) => segment !== undefined)?.trail;
  if (trail === undefined) {
    return { ok: problems.length === 0 && options.head === undefined, problems, segments: 0, entries: 0, end: { seq: 0, hash: '' } };
  }
  let expectedIndex = options.head?.firstSegment ?? 0;
  let position: ChainPosition = {
    seq: (options.head?.firstSequence ?? 1) - 1,
    hash: options.head?.firstPrevHash ?? genesisHash(trail),
  };
  let entries = 0;

  segments.forEach((segment, segmentPosition) => {
    if (segment === undefined) return;
    const at = { segmentPosition, segmentIndex: segment.index };
    if (segment.trail !== trail) {
      problems.push({ ...at, kind: 'wrong-trail', message: `segment ${segment.index} belongs to trail ${segment.trail}` });
    }
    if (segment.index > expectedIndex) {
      problems.push({
        ...at,
        kind: 'missing-segment',
        message: `segment ${expectedIndex}${segment.index - expectedIndex > 1 ? `..${segment.index - 1}` : ''} missing before segment ${segment.index}`,
      });
    } else if (segment.index < expectedIndex) {
      problems.push({ ...at, kind: 'segment-order', message: `segment ${segment.index} found where ${expectedIndex} was expected (duplicate or out of order)` });
    }
    if (segment.prevHash !== position.hash) {
      problems.push({ ...at, kind: 'segment-link', message: `segment ${segment.index} does not start where the previous segment ended` });
    }
    const firstEntry = segment.entries[0];
    const lastEntry = segment.entries[segment.entries.length - 1];
    if (firstEntry === undefined || lastEntry === undefined) {
      problems.push({ ...at, kind: 'segment-summary', message: `segment ${segment.index} has no entries` });
    } else {
      if (segment.firstSeq !== firstEntry.seq) {
        problems.push({ ...at, kind: 'segment-summary', message: `segment ${segment.index} firstSeq does not match its first entry` });
      }
      if (segment.lastHash !== lastEntry.hash) {
        problems.push({ ...at, kind: 'segment-summary', message: `segment ${segment.index} lastHash does not match its last entry` });
      }
    }
    const checked = verifyEntries(segment.entries, { seq: position.seq, hash: segment.prevHash });
    for (const problem of checked.problems) {
      problems.push({
        ...at,
        kind: problem.kind,
        entryPosition: problem.position,
        ...(problem.seq === undefined ? {} : { seq: problem.seq }),
        message: `segment ${segment.index}: ${problem.message}`,
      });
    }
    entries += segment.entries.length;
    position = { seq: checked.end.seq, hash: segment.lastHash };
    expectedIndex = segment.index + 1;
  });

  const lastSegment = [...segments].reverse().find((segment) => segment !== undefined);
  const end = position;
  if (options.head !== undefined) {
    checkHead(options.head, segments, lastSegment, end, problems, input.length);
  }
  return { ok: problems.length === 0, problems, segments: input.length, entries, end };
}

function checkHead(
  head: AuditHead,
  segments: readonly (AuditSegment | undefined)[],
  lastSegment: AuditSegment | undefined,
  end: ChainPosition,
  problems: AuditProblem[],
  count: number,
): void {
  const where = { segmentPosition: Math.max(0, count - 1), segmentIndex: lastSegment?.index };
  if (lastSegment !== undefined && lastSegment.index === head.segment && end.seq === head.sequence && end.hash === head.hash) return;
  // The head may lag the chain by entries written just before a crash (or appended by someone
  // else): it then names an entry that exists, not the last one.
  for (const segment of segments) {
    if (segment === undefined || segment.index !== head.segment) continue;
    const match = segment.entries.find((entry) => entry.seq === head.sequence && entry.hash === head.hash);
    if (match !== undefined && end.seq > head.sequence) {
      problems.push({
        ...where,
        kind: 'head-behind',
        message: `chain continues past the recorded head (seq ${head.sequence} → ${end.seq}): interrupted write, or entries appended outside the operator`,
      });
      return;
    }
  }
  problems.push({
    ...where,
    kind: 'head-mismatch',
    message: `chain ends at seq ${end.seq} in segment ${lastSegment?.index ?? 'none'}, head records seq ${head.sequence} in segment ${head.segment} (entries or segments removed or rewritten)`,
  });
}
