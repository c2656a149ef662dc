import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';

// Hash-chained audit entries for key events.
//
// Threat model. The chain is stored in ConfigMaps in the operator's namespace, where tenants
// have no rights; its head (last seq and hash, and where the retained chain begins) is kept there
// too, signed with the operator's Ed25519 key (operator/audit/signing.ts, head.ts). Any change to
// an entry, a removed, inserted or reordered entry, or a removed segment breaks an entry hash, a
// prevHash link, the sequence, or the match with the head; the operator refuses to append to a
// chain that does not match its head. Each entry is also signed, so entries written without the
// operator key are told apart from a crash between the segment write and the head write. It does
// NOT stop an actor holding the operator's own credentials and its signing key, and it cannot
// prove an event was logged at all: export the head elsewhere (logs, a ticket) for that.
//
// Entries never carry key material or plaintext: subjects are names and kids, details are short
// scalars, and detail names that suggest a secret are refused outright.

export const AUDIT_EVENT_TYPES = [
  'create',
  'rotate',
  'rewrap',
  'retire',
  'reactivate',
  'failed-decrypt',
  'policy-violation',
  'unseal',
  /** A trail moved from the policy's namespace into the operator's (see audit-store.ts). */
  'migrate',
  /** An administrator restarted a broken chain from its recorded head; says what was lost. */
  'chain-reset',
  /** Tenant-triggered entries over the rate limit, counted instead of written one by one. */
  'suppressed',
  /** A service's certificate revoked (requested, listed on a CRL, re-keyed, completed or failed). */
  'revoke',
  /** A revoked identity's workload isolated by NetworkPolicy, or released. */
  'quarantine',
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export interface AuditSubject {
  readonly namespace?: string;
  readonly name?: string;
  /** Kind of the object concerned (KeyPolicy, EncryptedService, Secret…). */
  readonly kind?: string;
  readonly kid?: string;
}

export type AuditDetails = Readonly<Record<string, string | number | boolean>>;

export interface AuditEvent {
  readonly type: AuditEventType;
  readonly subject: AuditSubject;
  readonly details?: AuditDetails;
  readonly time: Date;
}

export interface AuditEntry {
  readonly seq: number;
  /** RFC 3339 with milliseconds. */
  readonly time: string;
  readonly type: AuditEventType;
  readonly subject: AuditSubject;
  readonly details: AuditDetails;
  readonly prevHash: string;
  /** SHA-256 (hex) of the domain tag and the canonical JSON of every other member. */
  readonly hash: string;
  /** Ed25519 signature of `hash` by the operator key (operator/audit/signing.ts); absent on
   * entries written before signing began. Not part of the hash, so it can be checked apart. */
  readonly sig?: string;
}

/** Where the chain stands: the last entry's seq and hash (seq 0 and genesis before any entry). */
export interface ChainPosition {
  readonly seq: number;
  readonly hash: string;
}

const DOMAIN = 'lockstep.audit.v1';
const SUBJECT_FIELDS = ['namespace', 'name', 'kind', 'kid'] as const;
const SUBJECT_VALUE = /^[A-Za-z0-9._:/-]{1,253}$/;
const DETAIL_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const MAX_DETAILS = 24;
const MAX_DETAIL_STRING = 512;
// Detail names a careless caller might use to pass a secret; refusing them is cheap insurance.
const FORBIDDEN_DETAIL = /^(k|d|p|q|dp|dq|qi|key|dek|kek|secret|secrets|plaintext|value|password|token|material|jwk|privatekey|private)$/i;
const HASH = /^[0-9a-f]{64}$/;

export class AuditEntryError extends Error {
  override readonly name = 'AuditEntryError';
}

/** The prevHash of a trail's first entry; binds the chain to its trail id. */
export function genesisHash(trail: string): string {
  return createHash('sha256').update(`${DOMAIN}\ngenesis\n${trail}`).digest('hex');
}

export function genesisPosition(trail: string): ChainPosition {
  return { seq: 0, hash: genesisHash(trail) };
}

export function computeEntryHash(entry: Omit<AuditEntry, 'hash'>): string {
  const body = canonicalJson({
    seq: entry.seq,
    time: entry.time,
    type: entry.type,
    subject: entry.subject,
    details: entry.details,
    prevHash: entry.prevHash,
  });
  return createHash('sha256').update(`${DOMAIN}\n`).update(body).digest('hex');
}

function checkSubject(subject: AuditSubject): AuditSubject {
  const clean: Record<string, string> = {};
  for (const field of Object.keys(subject)) {
    if (!(SUBJECT_FIELDS as readonly string[]).includes(field)) throw new AuditEntryError(`unknown subject field "${field}"`);
  }
  for (const field of SUBJECT_FIELDS) {
    const value = subject[field];
    if (value === undefined) continue;
    if (typeof value !== 'string' || !SUBJECT_VALUE.test(value)) {
      throw new AuditEntryError(`subject.${field} must be an object name or kid`);
    }
    clean[field] = value;
  }
  return clean;
}

function checkDetails(details: AuditDetails): AuditDetails {
  const names = Object.keys(details);
  if (names.length > MAX_DETAILS) throw new AuditEntryError(`at most ${MAX_DETAILS} details per entry`);
  const clean: Record<string, string | number | boolean> = {};
  for (const name of names) {
    if (!DETAIL_NAME.test(name)) throw new AuditEntryError(`detail name "${name.slice(0, 64)}" is not allowed`);
    if (FORBIDDEN_DETAIL.test(name)) throw new AuditEntryError(`detail "${name}" looks like secret material and is refused`);
    const value = details[name];
    if (typeof value === 'string') {
      if (value.length > MAX_DETAIL_STRING) throw new AuditEntryError(`detail "${name}" is longer than ${MAX_DETAIL_STRING}`);
    } else if (typeof value === 'number') {
      if (!Number.isSafeInteger(value)) throw new AuditEntryError(`detail "${name}" must be an integer`);
    } else if (typeof value !== 'boolean') {
      throw new AuditEntryError(`detail "${name}" must be a string, integer or boolean`);
    }
    clean[name] = value;
  }
  return clean;
}

/** The entry that follows `previous`. Pure: time comes from the event. */
export function nextEntry(previous: ChainPosition, event: AuditEvent): AuditEntry {
  if (!(AUDIT_EVENT_TYPES as readonly string[]).includes(event.type)) {
    throw new AuditEntryError('unknown audit event type');
  }
  if (!(event.time instanceof Date) || Number.isNaN(event.time.getTime())) {
    throw new AuditEntryError('event time must be a valid Date');
  }
  if (!Number.isSafeInteger(previous.seq) || previous.seq < 0 || !HASH.test(previous.hash)) {
    throw new AuditEntryError('previous chain position is invalid');
  }
  const body = {
    seq: previous.seq + 1,
    time: event.time.toISOString(),
    type: event.type,
    subject: checkSubject(event.subject),
    details: checkDetails(event.details ?? {}),
    prevHash: previous.hash,
  };
  return { ...body, hash: computeEntryHash(body) };
}

export type EntryProblemKind = 'entry-hash' | 'entry-link' | 'sequence' | 'entry-shape';

export interface EntryProblem {
  readonly kind: EntryProblemKind;
  /** Position of the entry in the list given. */
  readonly position: number;
  /** seq as stored in the entry (may itself be the thing that is wrong). */
  readonly seq: number | undefined;
  readonly message: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Recomputes the hash; false for anything that is not a well-formed entry. */
export function entryIntact(entry: AuditEntry): boolean {
  try {
    return HASH.test(entry.hash) && computeEntryHash(entry) === entry.hash;
  } catch {
    return false;
  }
}

/**
 * Walks `entries` from `start`. Linking continues from each entry's stored hash, so one edited
 * entry is reported once (entry-hash) rather than as a cascade; removed, inserted or reordered
 * entries show up as sequence and link breaks at the place they happened.
 */
export function verifyEntries(
  entries: readonly unknown[],
  start: ChainPosition,
): { problems: EntryProblem[]; end: ChainPosition } {
  const problems: EntryProblem[] = [];
  let position = start;
  entries.forEach((candidate, index) => {
    const seq = isRecord(candidate) && typeof candidate['seq'] === 'number' ? candidate['seq'] : undefined;
    if (
      !isRecord(candidate) ||
      seq === undefined ||
      typeof candidate['hash'] !== 'string' ||
      typeof candidate['prevHash'] !== 'string'
    ) {
      problems.push({ kind: 'entry-shape', position: index, seq, message: `entry at position ${index} is not an audit entry` });
      return;
    }
    const entry = candidate as unknown as AuditEntry;
    if (entry.seq !== position.seq + 1) {
      problems.push({
        kind: 'sequence',
        position: index,
        seq: entry.seq,
        message: `expected seq ${position.seq + 1} at position ${index}, found ${entry.seq} (entry removed, inserted or reordered)`,
      });
    }
    if (entry.prevHash !== position.hash) {
      problems.push({
        kind: 'entry-link',
        position: index,
        seq: entry.seq,
        message: `entry seq ${entry.seq} does not link to the entry before it`,
      });
    }
    if (!entryIntact(entry)) {
      problems.push({
        kind: 'entry-hash',
        position: index,
        seq: entry.seq,
        message: `entry seq ${entry.seq} was changed after it was written (hash mismatch)`,
      });
    }
    position = { seq: entry.seq, hash: entry.hash };
  });
  return { problems, end: position };
}
