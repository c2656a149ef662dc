import { describe, expect, it } from '@jest/globals';
import { computeEntryHash, type AuditEntry, type AuditEvent } from './chain.js';
import {
  MAX_SEGMENT_BYTES,
  appendAuditEvent,
  parseSegment,
  pruneSegments,
  segmentDataKey,
  serializeSegment,
  verifyAuditTrail,
  type AuditHead,
  type AuditProblemKind,
  type AuditSegment,
  type SegmentLimits,
} from './segments.js';

const TRAIL = 'payments/default';
const t0 = Date.parse('2026-11-15T12:00:00Z');
const small: SegmentLimits = { maxEntries: 5, maxBytes: 64 * 1024 };

function event(i: number): AuditEvent {
  const types = ['create', 'rotate', 'rewrap', 'retire', 'failed-decrypt'] as const;
  return {
    type: types[i % types.length]!,
    subject: { namespace: 'payments', name: `svc-${i}`, kind: 'EncryptedService', kid: `kek-${i}` },
    details: { round: i },
    time: new Date(t0 + i * 1000),
  };
}

function buildTrail(count: number, limits = small): { segments: AuditSegment[]; head: AuditHead } {
  const segments: AuditSegment[] = [];
  let head: AuditHead | undefined;
  for (let i = 0; i < count; i += 1) {
    const result = appendAuditEvent(TRAIL, segments[segments.length - 1], event(i), { limits, ...(head ? { head } : {}) });
    if (result.startedNewSegment) segments.push(result.segment);
    else segments[segments.length - 1] = result.segment;
    head = result.head;
  }
  if (head === undefined) throw new Error('empty trail');
  return { segments, head };
}

/** Serialised form, as read back from ConfigMaps. */
function stored(segments: readonly AuditSegment[]): string[] {
  return segments.map(serializeSegment);
}

function kinds(result: ReturnType<typeof verifyAuditTrail>): AuditProblemKind[] {
  return [...new Set(result.problems.map((problem) => problem.kind))].sort();
}

function withEntries(segment: AuditSegment, entries: AuditEntry[]): AuditSegment {
  return { ...segment, entries };
}

describe('appending', () => {
  it('fills segments up to maxEntries and links them', () => {
    const { segments, head } = buildTrail(23);
    expect(segments.map((segment) => segment.entries.length)).toEqual([5, 5, 5, 5, 3]);
    expect(segments.map((segment) => segment.index)).toEqual([0, 1, 2, 3, 4]);
    expect(segments.map((segment) => segment.firstSeq)).toEqual([1, 6, 11, 16, 21]);
    for (let i = 1; i < segments.length; i += 1) expect(segments[i]?.prevHash).toBe(segments[i - 1]?.lastHash);
    expect(head).toMatchObject({ trail: TRAIL, segment: 4, sequence: 23, hash: segments[4]?.lastHash, firstSegment: 0, firstSequence: 1 });
  });

  it('never rewrites a full segment', () => {
    const { segments } = buildTrail(5);
    const full = serializeSegment(segments[0]!);
    const next = appendAuditEvent(TRAIL, segments[0], event(5), { limits: small });
    expect(next.startedNewSegment).toBe(true);
    expect(serializeSegment(segments[0]!)).toBe(full);
  });

  it('starts a new segment before the byte limit, keeping every segment ConfigMap-sized', () => {
    const limits = { maxEntries: 10_000, maxBytes: 8 * 1024 };
    const segments: AuditSegment[] = [];
    for (let i = 0; i < 40; i += 1) {
      const big = { ...event(i), details: { note: 'n'.repeat(500), reason: 'r'.repeat(500) } };
      const result = appendAuditEvent(TRAIL, segments[segments.length - 1], big, { limits });
      if (result.startedNewSegment) segments.push(result.segment);
      else segments[segments.length - 1] = result.segment;
    }
    expect(segments.length).toBeGreaterThan(4);
    for (const text of stored(segments)) expect(Buffer.byteLength(text)).toBeLessThanOrEqual(8 * 1024);
    expect(verifyAuditTrail(stored(segments)).ok).toBe(true);
    expect(() => appendAuditEvent(TRAIL, undefined, event(0), { limits: { maxEntries: 1, maxBytes: MAX_SEGMENT_BYTES + 1 } })).toThrow(RangeError);
  });

  it('round-trips the stored form and names data keys in chain order', () => {
    const { segments } = buildTrail(7);
    for (const segment of segments) expect(parseSegment(serializeSegment(segment))).toEqual(segment);
    expect(segmentDataKey(3)).toBe('segment-000003.jsonl');
    expect([segmentDataKey(10), segmentDataKey(9)].sort()).toEqual([segmentDataKey(9), segmentDataKey(10)]);
    expect(serializeSegment(segments[0]!).split('\n')[0]).toContain('"format":"lockstep.audit.segment.v1"');
  });
});

describe('verifyAuditTrail', () => {
  it('accepts an intact trail, as strings and as objects', () => {
    const { segments, head } = buildTrail(23);
    const result = verifyAuditTrail(stored(segments), { head });
    expect(result).toMatchObject({ ok: true, problems: [], segments: 5, entries: 23, end: { seq: 23, hash: head.hash } });
    expect(verifyAuditTrail(segments, { head }).ok).toBe(true);
  });

  it('detects a changed entry and says where', () => {
    const { segments, head } = buildTrail(23);
    const entries = [...segments[2]!.entries];
    entries[1] = { ...entries[1]!, details: { round: 999 } };
    segments[2] = withEntries(segments[2]!, entries);
    const result = verifyAuditTrail(stored(segments), { head });
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      expect.objectContaining({ kind: 'entry-hash', segmentPosition: 2, segmentIndex: 2, entryPosition: 1, seq: 12 }),
    ]);
  });

  it('detects a changed entry whose hash was recomputed, at the next link', () => {
    const { segments, head } = buildTrail(23);
    const entries = [...segments[1]!.entries];
    const forged = { ...entries[2]!, type: 'create' as const };
    entries[2] = { ...forged, hash: computeEntryHash(forged) };
    segments[1] = withEntries(segments[1]!, entries);
    const result = verifyAuditTrail(stored(segments), { head });
    expect(result.problems).toEqual([expect.objectContaining({ kind: 'entry-link', segmentIndex: 1, entryPosition: 3, seq: 9 })]);
  });

  it('detects a rewritten segment tail at the next segment', () => {
    const { segments, head } = buildTrail(23);
    const entries = [...segments[1]!.entries];
    const forged = { ...entries[4]!, details: { round: 0 } };
    entries[4] = { ...forged, hash: computeEntryHash(forged) };
    segments[1] = { ...withEntries(segments[1]!, entries), lastHash: entries[4].hash };
    expect(kinds(verifyAuditTrail(stored(segments), { head }))).toEqual(['segment-link']);
  });

  it('detects a removed entry', () => {
    const { segments, head } = buildTrail(23);
    const entries = segments[3]!.entries.filter((_, index) => index !== 2);
    segments[3] = withEntries(segments[3]!, entries);
    const result = verifyAuditTrail(stored(segments), { head });
    expect(kinds(result)).toEqual(['entry-link', 'sequence']);
    expect(result.problems[0]).toMatchObject({ segmentIndex: 3, entryPosition: 2, seq: 19 });
  });

  it('detects a removed newest entry only against the head', () => {
    const { segments, head } = buildTrail(23);
    const entries = segments[4]!.entries.slice(0, -1);
    segments[4] = { ...withEntries(segments[4]!, entries), lastHash: entries[entries.length - 1]!.hash };
    expect(verifyAuditTrail(stored(segments)).ok).toBe(true);
    expect(kinds(verifyAuditTrail(stored(segments), { head }))).toEqual(['head-mismatch']);
  });

  it('detects an inserted entry, even one with a valid hash and link', () => {
    const { segments, head } = buildTrail(23);
    const entries = [...segments[2]!.entries];
    const before = entries[1]!;
    const body = { ...before, seq: before.seq + 1, prevHash: before.hash, type: 'retire' as const };
    entries.splice(2, 0, { ...body, hash: computeEntryHash(body) });
    segments[2] = withEntries(segments[2]!, entries);
    const result = verifyAuditTrail(stored(segments), { head });
    expect(kinds(result)).toEqual(['entry-link', 'sequence']);
    expect(result.problems[0]).toMatchObject({ segmentIndex: 2, entryPosition: 3 });
  });

  it('detects reordered entries', () => {
    const { segments, head } = buildTrail(23);
    const entries = [...segments[0]!.entries];
    [entries[1], entries[2]] = [entries[2]!, entries[1]!];
    segments[0] = withEntries(segments[0]!, entries);
    const result = verifyAuditTrail(stored(segments), { head });
    expect(kinds(result)).toEqual(['entry-link', 'sequence']);
    expect(result.problems[0]).toMatchObject({ segmentIndex: 0, entryPosition: 1 });
  });

  it('detects a removed middle segment', () => {
    const { segments, head } = buildTrail(23);
    segments.splice(2, 1);
    const result = verifyAuditTrail(stored(segments), { head });
    expect(kinds(result)).toEqual(['missing-segment', 'segment-link', 'sequence']);
    expect(result.problems.find((p) => p.kind === 'missing-segment')?.message).toContain('segment 2 missing before segment 3');
  });

  it('detects a removed first segment', () => {
    const { segments, head } = buildTrail(23);
    segments.shift();
    expect(kinds(verifyAuditTrail(stored(segments), { head }))).toEqual(['missing-segment', 'segment-link', 'sequence']);
    expect(verifyAuditTrail(stored(segments)).ok).toBe(false);
  });

  it('detects a removed newest segment against the head', () => {
    const { segments, head } = buildTrail(23);
    segments.pop();
    expect(kinds(verifyAuditTrail(stored(segments), { head }))).toEqual(['head-mismatch']);
  });

  it('detects reordered segments', () => {
    const { segments, head } = buildTrail(23);
    [segments[1], segments[2]] = [segments[2]!, segments[1]!];
    const result = verifyAuditTrail(stored(segments), { head });
    expect(kinds(result)).toEqual(expect.arrayContaining(['missing-segment', 'segment-order', 'segment-link']));
  });

  it('detects a foreign or unreadable segment', () => {
    const { segments, head } = buildTrail(12);
    const other = buildTrail(12).segments.map((segment) => ({ ...segment, trail: 'other/trail' }));
    expect(kinds(verifyAuditTrail(stored([segments[0]!, other[1]!, segments[2]!]), { head }))).toContain('wrong-trail');
    const texts = stored(segments);
    texts[1] = texts[1]!.replace('"count":5', '"count":4');
    expect(kinds(verifyAuditTrail(texts, { head }))).toContain('malformed-segment');
    expect(kinds(verifyAuditTrail(['not json'], { head }))).toContain('malformed-segment');
  });

  it('reports a head that lags the chain (write interrupted before the status update)', () => {
    const { segments, head } = buildTrail(23);
    const late = appendAuditEvent(TRAIL, segments[4], event(23), { limits: small, head });
    segments[4] = late.segment;
    expect(kinds(verifyAuditTrail(stored(segments), { head }))).toEqual(['head-behind']);
    expect(verifyAuditTrail(stored(segments), { head: late.head }).ok).toBe(true);
  });

  it('keeps verifying after old segments are pruned, and still catches removals', () => {
    const { segments, head } = buildTrail(23);
    const pruned = pruneSegments(segments, head, 2);
    expect(pruned.dropped).toEqual([0, 1, 2]);
    expect(pruned.head).toMatchObject({ firstSegment: 3, firstSequence: 16, firstPrevHash: segments[3]!.prevHash });
    expect(verifyAuditTrail(stored(pruned.kept), { head: pruned.head }).ok).toBe(true);
    // Appending continues from the pruned head.
    const next = appendAuditEvent(TRAIL, pruned.kept[1], event(23), { limits: small, head: pruned.head });
    expect(next.head).toMatchObject({ firstSegment: 3, sequence: 24 });
    // Dropping one more segment without moving the head is caught.
    expect(kinds(verifyAuditTrail(stored(pruned.kept.slice(1)), { head: pruned.head }))).toContain('missing-segment');
  });
});
