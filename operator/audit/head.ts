import type { KeyObject } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import type { AuditEntry } from './chain.js';
import {
  parseSegment, verifyAuditTrail, AuditFormatError,
  type AuditHead, type AuditProblem, type AuditSegment, type AuditVerification,
} from './segments.js';
import { entrySignatureValid, headSignatureValid, signHeadBody, type AuditSigningKey } from './signing.js';

// The anchored head: where a trail ends and where its retained part begins, signed by the
// operator and kept where tenants cannot write (operator/keypolicy/audit-store.ts). Two bases:
// `first*` is the oldest segment retained anywhere (archive included), `live*` the oldest segment
// still in the live set. The operator checks the live set before every append; `lockstep audit
// verify` checks archive and live together. Both bases are recorded rather than read from the
// oldest segment, so replacing or removing the oldest segment is detected as well.

export const HEAD_FORMAT = 'lockstep.audit.head.v1';

export interface AnchoredHead extends AuditHead {
  readonly liveSegment: number;
  readonly liveSequence: number;
  readonly livePrevHash: string;
  /** Names the operator key that signed the head (and the entries since it was introduced). */
  readonly keyId: string;
  readonly signature: string;
}

export type UnsignedHead = Omit<AnchoredHead, 'signature' | 'keyId'>;

const HASH = /^[0-9a-f]{64}$/;

function headBody(head: Omit<AnchoredHead, 'signature'>): string {
  return canonicalJson({
    format: HEAD_FORMAT, trail: head.trail, segment: head.segment, sequence: head.sequence, hash: head.hash,
    firstSegment: head.firstSegment, firstSequence: head.firstSequence, firstPrevHash: head.firstPrevHash,
    liveSegment: head.liveSegment, liveSequence: head.liveSequence, livePrevHash: head.livePrevHash, keyId: head.keyId,
  });
}

export function signHead(head: UnsignedHead, key: AuditSigningKey): AnchoredHead {
  const unsigned = { ...head, keyId: key.keyId };
  return { ...unsigned, signature: signHeadBody(key, headBody(unsigned)) };
}

export function headSignedBy(head: AnchoredHead, publicKey: KeyObject): boolean {
  return headSignatureValid(publicKey, headBody(head), head.signature);
}

export function serializeHead(head: AnchoredHead): string {
  return `${JSON.stringify({ format: HEAD_FORMAT, ...head })}\n`;
}

export function parseHead(text: string): AnchoredHead {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AuditFormatError('head is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new AuditFormatError('head is not an object');
  const h = parsed as Record<string, unknown>;
  if (h['format'] !== HEAD_FORMAT) throw new AuditFormatError('unknown head format');
  const int = (name: string, min: number): number => {
    const v = h[name];
    if (!Number.isSafeInteger(v) || (v as number) < min) throw new AuditFormatError(`head ${name} is invalid`);
    return v as number;
  };
  const hash = (name: string): string => {
    const v = h[name];
    if (typeof v !== 'string' || !HASH.test(v)) throw new AuditFormatError(`head ${name} is invalid`);
    return v;
  };
  const str = (name: string): string => {
    const v = h[name];
    if (typeof v !== 'string' || v.length === 0 || v.length > 512) throw new AuditFormatError(`head ${name} is invalid`);
    return v;
  };
  return {
    trail: str('trail'), segment: int('segment', 0), sequence: int('sequence', 0), hash: hash('hash'),
    firstSegment: int('firstSegment', 0), firstSequence: int('firstSequence', 1), firstPrevHash: hash('firstPrevHash'),
    liveSegment: int('liveSegment', 0), liveSequence: int('liveSequence', 1), livePrevHash: hash('livePrevHash'),
    keyId: str('keyId'), signature: str('signature'),
  };
}

export interface SignatureReport {
  /** Entries carrying a valid signature. */
  readonly signed: number;
  /** Entries without one: only a prefix written before signing began (a migrated trail) is allowed. */
  readonly unsigned: number;
}

export interface AnchoredVerification extends AuditVerification {
  readonly signatures: SignatureReport | undefined;
}

/**
 * Verifies segments (in index order) against the anchored head from `base` — 'first' for the
 * whole retained trail (archive and live), 'live' for the live set the operator appends to.
 * With `publicKey`, the head's signature and every entry signature are checked as well, and an
 * unsigned entry after a signed one is a problem. `acceptSignedTail`: entries past the head are
 * not a problem when each carries a valid signature — the operator wrote them and crashed before
 * it moved the head — so the append may continue from the chain's end.
 */
export function verifyAnchored(
  input: readonly (AuditSegment | string)[],
  head: AnchoredHead,
  options: { readonly base: 'first' | 'live'; readonly publicKey?: KeyObject; readonly acceptSignedTail?: boolean },
): AnchoredVerification {
  const segments = input.map((s) => {
    if (typeof s !== 'string') return s;
    try {
      return parseSegment(s);
    } catch {
      return s;
    }
  });
  const base = options.base === 'first'
    ? { firstSegment: head.firstSegment, firstSequence: head.firstSequence, firstPrevHash: head.firstPrevHash }
    : { firstSegment: head.liveSegment, firstSequence: head.liveSequence, firstPrevHash: head.livePrevHash };
  const checked = verifyAuditTrail(segments, { head: { ...head, ...base } });
  const problems: AuditProblem[] = [...checked.problems];
  let signatures: SignatureReport | undefined;
  if (options.publicKey) {
    const key = options.publicKey;
    if (!headSignedBy(head, key)) {
      problems.push({ kind: 'head-signature', segmentPosition: Math.max(0, segments.length - 1), segmentIndex: head.segment, message: `head signature does not verify with key ${head.keyId} (head rewritten, or signed by another key)` });
    }
    let signed = 0;
    let unsigned = 0;
    segments.forEach((segment, segmentPosition) => {
      if (typeof segment === 'string') return;
      segment.entries.forEach((entry: AuditEntry, entryPosition) => {
        const at = { segmentPosition, segmentIndex: segment.index, entryPosition, seq: entry.seq };
        if (typeof entry.sig !== 'string') {
          unsigned += 1;
          if (signed > 0) problems.push({ ...at, kind: 'entry-signature', message: `entry seq ${entry.seq} is unsigned after signed entries (inserted or stripped)` });
          return;
        }
        if (entrySignatureValid(key, entry.hash, entry.sig)) signed += 1;
        else problems.push({ ...at, kind: 'entry-signature', message: `entry seq ${entry.seq} signature does not verify (written without the operator key)` });
      });
    });
    signatures = { signed, unsigned };
  }
  const tail = problems.filter((p) => p.kind === 'head-behind');
  if (options.acceptSignedTail && options.publicKey && tail.length > 0 && problems.length === tail.length) {
    const past = segments.flatMap((s) => (typeof s === 'string' ? [] : s.entries)).filter((e) => e.seq > head.sequence);
    const key = options.publicKey;
    if (past.every((e) => typeof e.sig === 'string' && entrySignatureValid(key, e.hash, e.sig))) {
      return { ...checked, ok: true, problems: [], signatures };
    }
  }
  return { ...checked, ok: problems.length === 0, problems, signatures };
}
