import { describe, expect, it } from '@jest/globals';
import { appendAuditEvent, segmentDataKey, serializeSegment, type AuditSegment } from '../audit/segments.js';
import { auditFingerprint, segmentsOf, verifyStoredTrail, type StoredSegment } from './audit-trail.js';
import { auditArchiveSegmentName, auditHeadName, auditLiveSegmentName, auditSegmentConfigMapName, auditTrailId } from './names.js';

const trail = auditTrailId('shop', 'keys');

function chain(count: number, perSegment: number): { segments: AuditSegment[]; head: { segment: number; sequence: number; hash: string } } {
  const segments: AuditSegment[] = [];
  let last: AuditSegment | undefined;
  let head = { segment: 0, sequence: 0, hash: '' };
  for (let i = 0; i < count; i++) {
    const r = appendAuditEvent(trail, last, { type: 'rotate', time: new Date(Date.UTC(2026, 10, 1, 0, i)), subject: { namespace: 'shop', name: 'keys', kid: `kek-${i}` } }, { limits: { maxEntries: perSegment, maxBytes: 64 * 1024 } });
    if (r.startedNewSegment) segments.push(r.segment);
    else segments[segments.length - 1] = r.segment;
    last = r.segment;
    head = { segment: r.head.segment, sequence: r.head.sequence, hash: r.head.hash };
  }
  return { segments, head };
}

const stored = (segments: AuditSegment[]): StoredSegment[] =>
  segments.map((s) => ({ configMap: auditSegmentConfigMapName('keys', s.index), index: s.index, text: serializeSegment(s) }));

describe('stored audit trail', () => {
  it('orders ConfigMaps by the segment index in their data key, ignoring other keys', () => {
    const { segments } = chain(5, 2);
    const cms = [...segments].reverse().map((s) => ({ metadata: { name: `cm-${s.index}`, resourceVersion: '7' }, data: { [segmentDataKey(s.index)]: serializeSegment(s), note: 'x' } }));
    expect(segmentsOf(cms).map((s) => s.index)).toEqual([0, 1, 2]);
  });

  it('verifies an intact chain across segments against the head', () => {
    const { segments, head } = chain(7, 3);
    const result = verifyStoredTrail('shop', 'keys', stored(segments), head);
    expect(result.ok).toBe(true);
    expect(result.entries).toBe(7);
  });

  it('detects a removed segment, a chain copied from another policy, and a head ahead of the chain', () => {
    const { segments, head } = chain(7, 3);
    expect(verifyStoredTrail('shop', 'keys', stored([segments[0]!, segments[2]!]), head).problems.map((p) => p.kind)).toContain('missing-segment');
    expect(verifyStoredTrail('shop', 'other', stored(segments), undefined).ok).toBe(false);
    expect(verifyStoredTrail('shop', 'keys', stored(segments.slice(0, 2)), head).problems.map((p) => p.kind)).toContain('head-mismatch');
  });

  it('after pruning, anchors verification on the oldest segment pruning keeps, and detects one removed beyond it', () => {
    const { segments, head } = chain(9, 3);
    expect(head.segment).toBe(2);
    expect(verifyStoredTrail('shop', 'keys', stored(segments.slice(1)), head, 2).ok).toBe(true);
    expect(verifyStoredTrail('shop', 'keys', stored(segments.slice(2)), head, 2).problems.map((p) => p.kind)).toContain('missing-segment');
    // Without pruning (max 16), the oldest segment must be segment 0.
    expect(verifyStoredTrail('shop', 'keys', stored(segments.slice(1)), head).ok).toBe(false);
  });
});

describe('auditFingerprint', () => {
  it('is a short stable digest that changes with any part', () => {
    const fingerprint = auditFingerprint(['uid-1', 3, 'KeyPolicyNotAllowed']);
    expect(fingerprint).toMatch(/^[0-9a-f]{32}$/);
    expect(auditFingerprint(['uid-1', 3, 'KeyPolicyNotAllowed'])).toBe(fingerprint);
    expect(auditFingerprint(['uid-1', 4, 'KeyPolicyNotAllowed'])).not.toBe(fingerprint);
  });
});

describe('audit object names in the operator namespace', () => {
  it('never collide between owners whose namespace and name join to the same text', () => {
    expect(auditHeadName('team-a', 'prod')).not.toBe(auditHeadName('team', 'a-prod'));
    expect(auditLiveSegmentName('team-a', 'prod', 0)).not.toBe(auditLiveSegmentName('team', 'a-prod', 0));
    const long = 'x'.repeat(253);
    for (const name of [auditHeadName(long, long), auditLiveSegmentName(long, long, 999_999), auditArchiveSegmentName(long, long, 999_999)]) {
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
  });
});
