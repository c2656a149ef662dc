// The backup file of `lockstep backup`: per KeyPolicy, everything needed to bring its keys back —
// the key sets, the policy's spec, and the envelope stores under its KEKs (ciphertext, but lost
// with their namespace) — encrypted as one compact JWE to the offline recovery key. What stays in
// clear is only what status already shows (namespace, name, kids, counts), so the file is safe to
// keep anywhere and a drill can check kid coverage without the private key. Pure.
import jose from 'node-jose';
import type { KeyPolicySpec } from '../api/v1alpha1/index.js';
import { CONTENT_ENCRYPTION } from '../crypto/keyset.js';
import { keptInHsm, keySetsFromSecret, sealSetFromSecret } from '../keypolicy/key-ring.js';
import { recoveryKeyThumbprint, type RecoveryPrivateKey, type RecoveryPublicKey } from './recovery-key.js';

export const BACKUP_API_VERSION = 'lockstep.dev/backup.v1';
const PAYLOAD_TYP = 'lockstep.backup.v1';
/** Protected header member binding a payload to its entry: a payload moved to another entry does not restore. */
const ENTRY_HEADER = 'lockstep.dev/backup-entry';

export interface StoredSecret {
  readonly namespace: string;
  readonly name: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
  /** As in a Secret: base64 values. */
  readonly data: Record<string, string>;
}

/** What one KeyPolicy's keys need to come back (the decrypted payload of an entry). */
export interface PolicyKeyState {
  readonly namespace: string;
  readonly name: string;
  /** Absent for keys a deleted policy left behind (deletionPolicy Retain): restored as keys only. */
  readonly policy?: { readonly labels?: Record<string, string>; readonly annotations?: Record<string, string>; readonly spec: KeyPolicySpec };
  readonly keySecret: { readonly annotations?: Record<string, string>; readonly data: Record<string, string> };
  readonly envelopeStores: readonly StoredSecret[];
}

export interface BackupEntry {
  readonly namespace: string;
  readonly name: string;
  /** Live kids (KEK and sealing) in the backed-up key sets: public, as in the policy's status. */
  readonly kids: readonly string[];
  readonly envelopeStores: number;
  /** Compact JWE of the PolicyKeyState, to the recovery key. */
  readonly payload: string;
}

export interface BackupFile {
  readonly apiVersion: typeof BACKUP_API_VERSION;
  readonly createdAt: string;
  readonly recipient: { readonly kid: string; readonly alg: string; readonly thumbprint: string };
  readonly policies: readonly BackupEntry[];
}

/** A backup that cannot be read or opened; the message names entries and kids only. */
export class BackupError extends Error {
  override readonly name = 'BackupError';
}

const entryId = (namespace: string, name: string, createdAt: string) => `${namespace}/${name}@${createdAt}`;

/** Live kids of a key Secret's data; throws KeySetError when the sets do not parse. */
export function liveKids(data: Record<string, string>): string[] {
  // KEKs in an HSM: the Secret (and so the backup) holds their index, never the keys, so their
  // kids are not listed as backed up — a drill then reports data under them as not covered.
  if (keptInHsm({ data })) return sealSetFromSecret({ data }).keys.map((k) => k.kid).sort();
  const sets = keySetsFromSecret({ data });
  return [...sets.kek.keys, ...sets.seal.keys].map((k) => k.kid).sort();
}

export async function sealPolicyState(recipient: RecoveryPublicKey, state: PolicyKeyState, createdAt: string): Promise<BackupEntry> {
  const kids = liveKids(state.keySecret.data);
  const key = await jose.JWK.asKey(recipient, 'json');
  const fields = { typ: PAYLOAD_TYP, kid: recipient.kid, alg: recipient.alg, [ENTRY_HEADER]: entryId(state.namespace, state.name, createdAt), crit: [ENTRY_HEADER] };
  const payload = Buffer.from(JSON.stringify(state), 'utf8');
  try {
    const jwe = await jose.JWE.createEncrypt({ format: 'compact', contentAlg: CONTENT_ENCRYPTION, fields }, key).update(payload).final();
    return { namespace: state.namespace, name: state.name, kids, envelopeStores: state.envelopeStores.length, payload: jwe };
  } finally {
    payload.fill(0);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Opens one entry with the offline private key; the header must name this entry of this file. */
export async function openPolicyState(privateKey: RecoveryPrivateKey, file: BackupFile, entry: BackupEntry): Promise<PolicyKeyState> {
  const where = `${entry.namespace}/${entry.name}`;
  if (privateKey.kid !== file.recipient.kid) {
    throw new BackupError(`the backup was made for recovery key ${file.recipient.kid}, not ${privateKey.kid}`);
  }
  if ((await recoveryKeyThumbprint(privateKey)) !== file.recipient.thumbprint) {
    throw new BackupError(`recovery key ${privateKey.kid} is not the key pair the backup was made for (thumbprint differs)`);
  }
  let payload: Buffer;
  let header: Record<string, unknown>;
  try {
    const key = await jose.JWK.asKey(privateKey, 'json');
    const result = await jose.JWE.createDecrypt(key, { algorithms: [privateKey.alg, CONTENT_ENCRYPTION], handlers: { [ENTRY_HEADER]: true } }).decrypt(entry.payload);
    payload = result.payload;
    header = result.header as Record<string, unknown>;
  } catch {
    throw new BackupError(`entry ${where} does not open with recovery key ${privateKey.kid} (tampered, or made for another key)`);
  }
  try {
    if (header['typ'] !== PAYLOAD_TYP || header[ENTRY_HEADER] !== entryId(entry.namespace, entry.name, file.createdAt)) {
      throw new BackupError(`entry ${where} holds the payload of another entry or backup`);
    }
    const state: unknown = JSON.parse(payload.toString('utf8'));
    if (!isRecord(state) || state['namespace'] !== entry.namespace || state['name'] !== entry.name || !isRecord(state['keySecret'])) {
      throw new BackupError(`entry ${where} does not hold a KeyPolicy's key state`);
    }
    return state as unknown as PolicyKeyState;
  } finally {
    payload.fill(0);
  }
}

export function serializeBackupFile(file: BackupFile): string {
  return `${JSON.stringify(file, null, 2)}\n`;
}

export function parseBackupFile(text: string): BackupFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BackupError('the backup file is not JSON');
  }
  if (!isRecord(value) || value['apiVersion'] !== BACKUP_API_VERSION) throw new BackupError(`not a Lockstep backup (apiVersion ${BACKUP_API_VERSION})`);
  const { createdAt, recipient, policies } = value;
  if (typeof createdAt !== 'string' || Number.isNaN(Date.parse(createdAt))) throw new BackupError('backup has no createdAt');
  if (!isRecord(recipient) || typeof recipient['kid'] !== 'string' || typeof recipient['thumbprint'] !== 'string') throw new BackupError('backup names no recipient key');
  if (!Array.isArray(policies)) throw new BackupError('backup has no policies list');
  for (const [i, p] of policies.entries()) {
    if (!isRecord(p) || typeof p['namespace'] !== 'string' || typeof p['name'] !== 'string' || typeof p['payload'] !== 'string' || !Array.isArray(p['kids'])) {
      throw new BackupError(`policies[${i}] is not a backup entry`);
    }
  }
  return value as unknown as BackupFile;
}

export async function backupFile(recipient: RecoveryPublicKey, states: readonly PolicyKeyState[], createdAt: Date): Promise<BackupFile> {
  const at = createdAt.toISOString();
  const policies: BackupEntry[] = [];
  for (const state of states) policies.push(await sealPolicyState(recipient, state, at));
  return {
    apiVersion: BACKUP_API_VERSION,
    createdAt: at,
    recipient: { kid: recipient.kid, alg: recipient.alg, thumbprint: await recoveryKeyThumbprint(recipient) },
    policies,
  };
}

