// What a recovery drill proves: every ciphertext stored in the cluster — each envelope store's
// data key and every value under it, each sealed value of an EncryptedService — opens with the
// keys of a backup. With the private recovery key the check decrypts, in memory, on the machine
// that holds the key; without it, it checks only that every kid in use is in the backup (kid
// coverage: cheap, needs no secret, fit for a scheduled job). Reports name objects, kids and
// reasons, never values. Pure apart from the decryption itself.
import { unwrapDataKey, inspectWrappedDataKey, type DataKey } from '../crypto/datakey.js';
import { decryptValue, envelopeDataKeyId } from '../crypto/envelope.js';
import { isDecryptError, isKeySetError } from '../crypto/errors.js';
import { inspectSealedValue, openSealed } from '../crypto/seal.js';
import type { Envelopes } from '../encryptedservice/envelope-store.js';
import type { KeyStatus } from '../api/v1alpha1/index.js';
import type { KeySets } from '../keypolicy/key-plan.js';

export interface StoreUnderTest {
  readonly namespace: string;
  /** The envelope store Secret. */
  readonly name: string;
  /** The EncryptedService the data key is bound to. */
  readonly service: string;
  /** namespace/name of the KeyPolicy whose KEK wraps it. */
  readonly policy: string;
  readonly wrapped: string | undefined;
  readonly previousWrapped: string | undefined;
  readonly envelopes: Envelopes;
}

export interface SealedUnderTest {
  readonly namespace: string;
  readonly service: string;
  readonly policy: string;
  /** Target Secret and key the value is bound to. */
  readonly secret: string;
  readonly key: string;
  readonly jwe: string;
}

export interface DrillFailure {
  readonly object: string;
  readonly policy: string;
  readonly kid?: string;
  readonly reason: string;
  readonly message: string;
}

export interface DrillReport {
  /** Ciphertexts checked (data keys, envelope values, sealed values). */
  readonly checked: number;
  readonly failures: readonly DrillFailure[];
}

const kidOf = (inspect: (t: string) => { kid: string }, text: string): string | undefined => {
  try {
    return inspect(text).kid;
  } catch {
    return undefined;
  }
};

function failureOf(err: unknown, object: string, policy: string): DrillFailure {
  if (isDecryptError(err)) return { object, policy, ...(err.kid ? { kid: err.kid } : {}), reason: err.reason, message: err.message };
  if (isKeySetError(err)) return { object, policy, reason: err.reason, message: err.message };
  throw err;
}

const notInBackup = (object: string, policy: string): DrillFailure => ({
  object, policy, reason: 'PolicyNotInBackup', message: `KeyPolicy ${policy} is not in the backup`,
});

/** Kid coverage: every ciphertext's kid is among the backup's kids of its policy. */
export function drillCoverage(kids: ReadonlyMap<string, ReadonlySet<string>>, stores: readonly StoreUnderTest[], sealed: readonly SealedUnderTest[]): DrillReport {
  const failures: DrillFailure[] = [];
  let checked = 0;
  const check = (object: string, policy: string, kid: string | undefined) => {
    checked += 1;
    const known = kids.get(policy);
    if (!known) failures.push(notInBackup(object, policy));
    else if (kid === undefined) failures.push({ object, policy, reason: 'Malformed', message: 'names no kid' });
    else if (!known.has(kid)) failures.push({ object, policy, kid, reason: 'KidNotInBackup', message: `key ${kid} is newer than the backup (or not this policy's): take a new backup` });
  };
  for (const s of stores) {
    for (const wrapped of [s.wrapped, s.previousWrapped]) {
      if (wrapped !== undefined) check(`${s.namespace}/${s.name}`, s.policy, kidOf(inspectWrappedDataKey, wrapped));
    }
  }
  for (const v of sealed) check(`${v.namespace}/${v.service} sealed ${v.secret}[${v.key}]`, v.policy, kidOf(inspectSealedValue, v.jwe));
  return { checked, failures };
}

/**
 * Kid coverage from the policies' status alone (status.keys counts what is under each kid), for a
 * scheduled check that may read KeyPolicies but no Secret: every kid holding data, and every
 * active kid (new data goes there next), must be in the backup.
 */
export function drillCoverageFromStatus(kids: ReadonlyMap<string, ReadonlySet<string>>, policies: readonly { id: string; keys: readonly KeyStatus[] }[]): DrillReport {
  const failures: DrillFailure[] = [];
  let checked = 0;
  for (const policy of policies) {
    const known = kids.get(policy.id);
    for (const key of policy.keys) {
      if (key.state === 'retired' || (key.state !== 'active' && (key.wrappedObjects ?? 0) === 0)) continue;
      checked += 1;
      const object = `KeyPolicy ${policy.id} key ${key.kid} (${key.wrappedObjects ?? 0} objects)`;
      if (!known) failures.push(notInBackup(object, policy.id));
      else if (!known.has(key.kid)) failures.push({ object, policy: policy.id, kid: key.kid, reason: 'KidNotInBackup', message: `key ${key.kid} is newer than the backup: take a new backup` });
    }
  }
  return { checked, failures };
}

/** Full proof: decrypts every data key, every envelope value under it and every sealed value. */
export async function drillWithKeys(sets: ReadonlyMap<string, KeySets>, stores: readonly StoreUnderTest[], sealed: readonly SealedUnderTest[]): Promise<DrillReport> {
  const failures: DrillFailure[] = [];
  let checked = 0;
  for (const s of stores) {
    const object = `${s.namespace}/${s.name}`;
    const keys = sets.get(s.policy);
    if (!keys) {
      failures.push(notInBackup(object, s.policy));
      continue;
    }
    const binding = { namespace: s.namespace, name: s.service };
    const dataKeys: DataKey[] = [];
    for (const wrapped of [s.wrapped, s.previousWrapped]) {
      if (wrapped === undefined) continue;
      checked += 1;
      try {
        dataKeys.push(await unwrapDataKey(keys.kek, wrapped, binding));
      } catch (err) {
        failures.push(failureOf(err, `${object} (data key)`, s.policy));
      }
    }
    for (const [secret, values] of Object.entries(s.envelopes)) {
      for (const [key, value] of Object.entries(values)) {
        checked += 1;
        const where = `${object} envelope ${secret}[${key}]`;
        try {
          const id = envelopeDataKeyId(value);
          const dataKey = dataKeys.find((k) => k.id === id);
          if (!dataKey) {
            failures.push({ object: where, policy: s.policy, reason: 'DataKeyMissing', message: `encrypted with data key ${id}, which the store does not hold or which did not open` });
            continue;
          }
          decryptValue(dataKey, value, { namespace: s.namespace, name: secret, key }).fill(0);
        } catch (err) {
          failures.push(failureOf(err, where, s.policy));
        }
      }
    }
  }
  for (const v of sealed) {
    const object = `${v.namespace}/${v.service} sealed ${v.secret}[${v.key}]`;
    checked += 1;
    const keys = sets.get(v.policy);
    if (!keys) {
      failures.push(notInBackup(object, v.policy));
      continue;
    }
    try {
      (await openSealed(keys.seal, v.jwe, { namespace: v.namespace, name: v.secret, key: v.key })).fill(0);
    } catch (err) {
      failures.push(failureOf(err, object, v.policy));
    }
  }
  return { checked, failures };
}

export function formatDrillReport(report: DrillReport, mode: 'decrypt' | 'coverage' | 'status'): string {
  const what = mode === 'decrypt' ? 'opened with the backed-up keys'
    : mode === 'coverage' ? 'are under kids the backup holds (coverage only: no decryption without the recovery key)'
      : 'kids in use (from the KeyPolicies\' status) are in the backup';
  const head = report.failures.length === 0
    ? `drill OK: all ${report.checked} ${mode === 'status' ? '' : 'ciphertexts '}${what}`
    : `drill FAILED: ${report.failures.length} of ${report.checked} ${mode === 'status' ? 'kids' : 'ciphertexts'} did not pass`;
  const lines = report.failures.map((f) => `  ${f.object} (policy ${f.policy}${f.kid ? `, kid ${f.kid}` : ''}): ${f.reason}: ${f.message}`);
  return `${[head, ...lines].join('\n')}\n`;
}
