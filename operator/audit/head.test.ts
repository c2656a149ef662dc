import { describe, expect, it } from '@jest/globals';
import { genesisHash, nextEntry, type AuditEvent } from './chain.js';
import { parseHead, serializeHead, signHead, verifyAnchored, type AnchoredHead } from './head.js';
import { appendAuditEvent, serializeSegment, type AuditSegment } from './segments.js';
import { generateAuditSigningKey, signEntryHash } from './signing.js';

const trail = 'keypolicy/shop/keys';
const key = generateAuditSigningKey();
const other = generateAuditSigningKey();
const event = (i: number): AuditEvent => ({ type: 'rotate', time: new Date(Date.UTC(2026, 0, 1, i)), subject: { namespace: 'shop', name: 'keys', kid: `kek-${i}` } });

function signedChain(count: number, perSegment = 4): { segments: AuditSegment[]; head: AnchoredHead } {
  const segments: AuditSegment[] = [];
  let last: AuditSegment | undefined;
  for (let i = 0; i < count; i++) {
    const r = appendAuditEvent(trail, last, event(i), { limits: { maxEntries: perSegment, maxBytes: 64 * 1024 }, sign: (h) => signEntryHash(key, h) });
    if (r.startedNewSegment) segments.push(r.segment);
    else segments[segments.length - 1] = r.segment;
    last = r.segment;
  }
  const end = last!.entries[last!.entries.length - 1]!;
  const g = genesisHash(trail);
  const head = signHead({ trail, segment: last!.index, sequence: end.seq, hash: end.hash, firstSegment: 0, firstSequence: 1, firstPrevHash: g, liveSegment: 0, liveSequence: 1, livePrevHash: g }, key);
  return { segments, head };
}

describe('anchored head', () => {
  it('round-trips and verifies a signed chain with its signed head', () => {
    const { segments, head } = signedChain(10);
    expect(parseHead(serializeHead(head))).toEqual(head);
    const result = verifyAnchored(segments.map(serializeSegment), head, { base: 'first', publicKey: key.publicKey });
    expect(result.problems).toEqual([]);
    expect(result.signatures).toEqual({ signed: 10, unsigned: 0 });
  });

  it('reports a head rewritten without the key, or checked with another key', () => {
    const { segments, head } = signedChain(6);
    const texts = segments.map(serializeSegment);
    expect(verifyAnchored(texts, { ...head, sequence: 5 }, { base: 'first', publicKey: key.publicKey }).problems.map((p) => p.kind)).toContain('head-signature');
    const kinds = verifyAnchored(texts, head, { base: 'first', publicKey: other.publicKey }).problems.map((p) => p.kind);
    expect(kinds).toContain('head-signature');
    expect(kinds).toContain('entry-signature');
  });

  it('accepts entries past the head only when the operator key signed them (a crash between segment and head writes)', () => {
    const { segments, head } = signedChain(6);
    const last = segments[segments.length - 1]!;
    const tail = last.entries[last.entries.length - 1]!;
    const unsigned = nextEntry({ seq: tail.seq, hash: tail.hash }, event(99));
    const withEntry = (entry: typeof unsigned) => [...segments.slice(0, -1), { ...last, entries: [...last.entries, entry], lastHash: entry.hash }].map(serializeSegment);

    const signed = verifyAnchored(withEntry({ ...unsigned, sig: signEntryHash(key, unsigned.hash) }), head, { base: 'live', publicKey: key.publicKey, acceptSignedTail: true });
    expect(signed.ok).toBe(true);
    const forged = verifyAnchored(withEntry(unsigned), head, { base: 'live', publicKey: key.publicKey, acceptSignedTail: true });
    expect(forged.ok).toBe(false);
    expect(forged.problems.map((p) => p.kind)).toEqual(expect.arrayContaining(['head-behind', 'entry-signature']));
    const foreign = verifyAnchored(withEntry({ ...unsigned, sig: signEntryHash(other, unsigned.hash) }), head, { base: 'live', publicKey: key.publicKey, acceptSignedTail: true });
    expect(foreign.ok).toBe(false);
  });

  it('detects a removed oldest live segment against the recorded live base', () => {
    const { segments, head } = signedChain(12);
    const second = segments[1]!;
    const moved = signHead({ ...head, liveSegment: second.index, liveSequence: second.firstSeq, livePrevHash: second.prevHash }, key);
    expect(verifyAnchored(segments.slice(1).map(serializeSegment), moved, { base: 'live', publicKey: key.publicKey }).ok).toBe(true);
    const kinds = verifyAnchored(segments.slice(2).map(serializeSegment), moved, { base: 'live', publicKey: key.publicKey }).problems.map((p) => p.kind);
    expect(kinds).toContain('missing-segment');
  });

  it('allows unsigned entries only before the first signed one (a migrated trail)', () => {
    let segment: AuditSegment | undefined;
    for (let i = 0; i < 3; i++) segment = appendAuditEvent(trail, segment, event(i)).segment;
    for (let i = 3; i < 5; i++) segment = appendAuditEvent(trail, segment, event(i), { sign: (h) => signEntryHash(key, h) }).segment;
    const end = segment!.entries[4]!;
    const g = genesisHash(trail);
    const head = signHead({ trail, segment: 0, sequence: 5, hash: end.hash, firstSegment: 0, firstSequence: 1, firstPrevHash: g, liveSegment: 0, liveSequence: 1, livePrevHash: g }, key);
    const ok = verifyAnchored([serializeSegment(segment!)], head, { base: 'first', publicKey: key.publicKey });
    expect(ok.ok).toBe(true);
    expect(ok.signatures).toEqual({ signed: 2, unsigned: 3 });
    const stripped = { ...segment!, entries: segment!.entries.map((e, i) => (i === 4 ? { ...e, sig: undefined } : e)) };
    const text = serializeSegment(stripped).replace(',"sig":null', '');
    expect(verifyAnchored([text], head, { base: 'first', publicKey: key.publicKey }).problems.map((p) => p.kind)).toEqual(['entry-signature']);
  });
});
