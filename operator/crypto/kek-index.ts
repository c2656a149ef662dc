import { KeySetError } from './errors.js';
import { orderKeys, type KeySet, type ManagedKey } from './keyset.js';
import { applyRotation, retireUnusedKeys, type RetentionOptions } from './rotation.js';

// The lifecycle of KEKs whose material lives elsewhere (an HSM token): which kid is active, which
// are decrypt-only since when, which were retired. It holds no key material, so it can be stored
// anywhere (a Secret's annotation, status); the key store holds the keys, labelled by kid.
// Rotation and retirement reuse rotation.ts's rule through a material-free view of the records,
// so both backends retire keys on exactly the same terms.

export interface KekRecord {
  readonly kid: string;
  readonly state: 'active' | 'decrypt-only';
  readonly createdAt: string;
  readonly activatedAt: string;
  readonly deactivatedAt?: string;
}

export interface RetiredKekRecord {
  readonly kid: string;
  readonly state: 'retired';
  readonly createdAt: string;
  readonly retiredAt: string;
}

export interface KekIndex {
  /** Exactly one `active` record, first; then decrypt-only ones, most recently deactivated first. */
  readonly keys: readonly KekRecord[];
  readonly retired: readonly RetiredKekRecord[];
}

export interface IndexChange {
  readonly index: KekIndex;
  readonly retired: readonly string[];
}

export interface IndexRotation extends IndexChange {
  readonly activated: string;
  readonly deactivated: string;
}

const KID_SHAPE = /^kek-[A-Za-z0-9._:-]{1,124}$/;

export function newKekIndex(kid: string, now: Date): KekIndex {
  checkKid(kid);
  const at = now.toISOString();
  return { keys: [{ kid, state: 'active', createdAt: at, activatedAt: at }], retired: [] };
}

export function activeRecord(index: KekIndex): KekRecord {
  const active = index.keys.filter((key) => key.state === 'active');
  if (active.length !== 1 || active[0] === undefined) {
    throw new KeySetError('NoActiveKey', `KEK index has ${active.length} active keys, expected 1`);
  }
  return active[0];
}

/** `newKid` (already made in the key store) becomes active; then retention applies. */
export function rotateIndex(index: KekIndex, newKid: string, options: RetentionOptions): IndexRotation {
  checkKid(newKid);
  const at = options.now.toISOString();
  const result = applyRotation(asKeySet(index), asManagedKey({ kid: newKid, state: 'active', createdAt: at, activatedAt: at }), options);
  return { index: fromKeySet(result.keySet), retired: result.retired, activated: result.activated, deactivated: result.deactivated };
}

export function retireInIndex(index: KekIndex, options: RetentionOptions): IndexChange {
  const result = retireUnusedKeys(asKeySet(index), options);
  return { index: fromKeySet(result.keySet), retired: result.retired };
}

export function serializeKekIndex(index: KekIndex): string {
  return JSON.stringify({ keys: index.keys, retired: index.retired });
}

export function parseKekIndex(input: string): KekIndex {
  let value: unknown;
  try {
    value = JSON.parse(input);
  } catch {
    throw invalid('KEK index is not JSON');
  }
  if (!isRecord(value) || !Array.isArray(value['keys']) || !Array.isArray(value['retired'] ?? [])) {
    throw invalid('KEK index must be an object with "keys" and "retired" arrays');
  }
  const keys = (value['keys'] as unknown[]).map((entry, position): KekRecord => {
    const where = `keys[${position}]`;
    if (!isRecord(entry)) throw invalid(`${where} is not an object`);
    const { kid, state, createdAt, activatedAt, deactivatedAt } = entry;
    if (typeof kid !== 'string' || !KID_SHAPE.test(kid)) throw invalid(`${where}: kid missing or malformed`);
    if (state !== 'active' && state !== 'decrypt-only') throw invalid(`${where} (${kid}): bad state`);
    if (!isTimestamp(createdAt) || !isTimestamp(activatedAt)) throw invalid(`${where} (${kid}): bad timestamps`);
    if (state === 'decrypt-only' && !isTimestamp(deactivatedAt)) throw invalid(`${where} (${kid}): a decrypt-only key needs deactivatedAt`);
    return { kid, state, createdAt, activatedAt, ...(isTimestamp(deactivatedAt) ? { deactivatedAt } : {}) };
  });
  const retired = ((value['retired'] ?? []) as unknown[]).map((entry, position): RetiredKekRecord => {
    const where = `retired[${position}]`;
    if (!isRecord(entry)) throw invalid(`${where} is not an object`);
    const { kid, state, createdAt, retiredAt } = entry;
    if (typeof kid !== 'string' || !KID_SHAPE.test(kid) || state !== 'retired') throw invalid(`${where}: not a retired KEK record`);
    if (!isTimestamp(createdAt) || !isTimestamp(retiredAt)) throw invalid(`${where} (${kid}): bad timestamps`);
    return { kid, state, createdAt, retiredAt };
  });
  const kids = new Set<string>();
  for (const { kid } of [...keys, ...retired]) {
    if (kids.has(kid)) throw invalid(`kid ${kid} appears twice`);
    kids.add(kid);
  }
  const index = fromKeySet(asKeySet({ keys, retired }));
  activeRecord(index);
  return index;
}

// Retention reads kid, state and times only; the view fills the JWK members it does not read.
function asManagedKey(record: KekRecord): ManagedKey {
  return { ...record, kty: 'oct', use: 'enc', alg: 'A256KW' } as ManagedKey;
}

function asKeySet(index: KekIndex): KeySet {
  return {
    purpose: 'kek',
    keys: index.keys.map(asManagedKey),
    retired: index.retired.map((record) => ({ ...record, alg: 'A256KW' as const })),
  };
}

function fromKeySet(keySet: KeySet): KekIndex {
  return {
    keys: orderKeys(keySet.keys).map(({ kid, state, createdAt, activatedAt, deactivatedAt }) => ({
        kid,
        state,
        createdAt,
        activatedAt,
        ...(deactivatedAt === undefined ? {} : { deactivatedAt }),
      })),
    retired: keySet.retired.map(({ kid, createdAt, retiredAt }) => ({ kid, state: 'retired' as const, createdAt, retiredAt })),
  };
}

function checkKid(kid: string): void {
  if (!KID_SHAPE.test(kid)) throw new KeySetError('InvalidTransition', 'a KEK kid must look like kek-<time>-<random>');
}

function invalid(message: string): KeySetError {
  return new KeySetError('InvalidKeySet', message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTimestamp(value: unknown): value is string {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value));
}
