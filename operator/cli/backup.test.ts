import { describe, expect, it } from '@jest/globals';
import { generateDataKey, wrapDataKey } from '../crypto/datakey.js';
import { encryptValue } from '../crypto/envelope.js';
import { createKeySet, publicJwks, type KeySet } from '../crypto/keyset.js';
import { sealValue } from '../crypto/seal.js';
import { keySecretData } from '../keypolicy/key-ring.js';
import { BackupError, backupFile, openPolicyState, parseBackupFile, serializeBackupFile, type PolicyKeyState } from './backup-file.js';
import { drillCoverage, drillCoverageFromStatus, drillWithKeys, formatDrillReport, type StoreUnderTest } from './drill-check.js';
import { generateRecoveryKey, parseRecoveryPrivateKey, parseRecoveryPublicKey, RecoveryKeyError } from './recovery-key.js';

const now = new Date('2026-11-30T06:00:00Z');

async function keySets(): Promise<{ kek: KeySet; seal: KeySet }> {
  return { kek: await createKeySet('kek', 'A256KW', { now }), seal: await createKeySet('seal', 'ECDH-ES+A256KW', { now }) };
}

/** Every private member of every key, as it would appear in a leak. */
function privateMembers(sets: { kek: KeySet; seal: KeySet }): string[] {
  return [...sets.kek.keys, ...sets.seal.keys].flatMap((k) => ['k', 'd'].map((m) => k[m]).filter((v): v is string => typeof v === 'string'));
}

function state(sets: { kek: KeySet; seal: KeySet }, stores: PolicyKeyState['envelopeStores'] = []): PolicyKeyState {
  return { namespace: 'shop', name: 'vault', policy: { spec: { keyWrap: { algorithm: 'A256KW' } } }, keySecret: { data: keySecretData(sets) }, envelopeStores: stores };
}

describe('recovery keys', () => {
  it('refuses a private key where the public half belongs, and a public key where the private one does', async () => {
    const { privateKey, publicKey } = await generateRecoveryKey('ECDH-ES+A256KW', now);
    expect(parseRecoveryPublicKey(JSON.stringify(publicKey)).kid).toBe(publicKey.kid);
    expect(parseRecoveryPublicKey(JSON.stringify({ keys: [publicKey] })).kid).toBe(publicKey.kid);
    expect(() => parseRecoveryPublicKey(JSON.stringify(privateKey))).toThrow(RecoveryKeyError);
    expect(() => parseRecoveryPublicKey(JSON.stringify(privateKey))).toThrow(/keep the private half offline/);
    expect(() => parseRecoveryPrivateKey(JSON.stringify(publicKey))).toThrow(/no private key/);
    expect(() => parseRecoveryPublicKey(JSON.stringify({ ...publicKey, alg: 'RSA-OAEP' }))).toThrow(/alg must be/);
    // Messages never repeat key members.
    try {
      parseRecoveryPublicKey(JSON.stringify(privateKey));
    } catch (err) {
      expect((err as Error).message).not.toContain(privateKey['d']);
    }
  });
});

describe('backup file', () => {
  it('holds keys only encrypted, and opens with the recovery key to exactly the state backed up', async () => {
    const sets = await keySets();
    const { privateKey, publicKey } = await generateRecoveryKey('ECDH-ES+A256KW', now);
    const file = await backupFile(publicKey, [state(sets)], now);
    const text = serializeBackupFile(file);
    for (const secret of [...privateMembers(sets), ...Object.values(keySecretData(sets)), privateKey['d'] ?? 'x']) expect(text).not.toContain(secret);
    expect(file.policies[0]?.kids).toEqual([sets.kek.keys[0]?.kid, sets.seal.keys[0]?.kid].sort());

    const parsed = parseBackupFile(text);
    const opened = await openPolicyState(privateKey, parsed, parsed.policies[0]!);
    expect(opened).toEqual(state(sets));
  });

  it('refuses another recovery key, a payload moved to another entry, and a file that is not a backup', async () => {
    const sets = await keySets();
    const { publicKey } = await generateRecoveryKey('ECDH-ES+A256KW', now);
    const other = await generateRecoveryKey('ECDH-ES+A256KW', now);
    const file = await backupFile(publicKey, [state(sets), { ...state(sets), name: 'other' }], now);
    await expect(openPolicyState(other.privateKey, file, file.policies[0]!)).rejects.toThrow(/made for recovery key/);
    await expect(openPolicyState({ ...other.privateKey, kid: publicKey.kid }, file, file.policies[0]!)).rejects.toThrow(/thumbprint differs/);
    const own = (await generateRecoveryKey('ECDH-ES+A256KW', now));
    const mine = await backupFile(own.publicKey, [state(sets), { ...state(sets), name: 'other' }], now);
    const swapped = { ...mine.policies[0]!, payload: mine.policies[1]!.payload };
    await expect(openPolicyState(own.privateKey, mine, swapped)).rejects.toThrow(BackupError);
    await expect(openPolicyState(own.privateKey, mine, swapped)).rejects.toThrow(/another entry/);
    expect(() => parseBackupFile('{"apiVersion":"v1"}')).toThrow(/not a Lockstep backup/);
  });
});

describe('drill checks', () => {
  it('opens every data key, envelope value and sealed value, and names each that does not, without values', async () => {
    const sets = await keySets();
    const later = await keySets();
    const dek = generateDataKey();
    const wrapped = await wrapDataKey(sets.kek, dek, { namespace: 'shop', name: 'api' });
    const value = encryptValue(dek, 'plain-value-123', { namespace: 'shop', name: 'db', key: 'password' });
    const store: StoreUnderTest = { namespace: 'shop', name: 'api-envelope', service: 'api', policy: 'shop/vault', wrapped, previousWrapped: undefined, envelopes: { db: { password: value } } };
    const newer = await wrapDataKey(later.kek, generateDataKey(), { namespace: 'shop', name: 'web' });
    const sealedGood = await sealValue(publicJwks(sets.seal), 'sealed-plain', { namespace: 'shop', name: 'creds', key: 'token' });
    const sealedNew = await sealValue(publicJwks(later.seal), 'sealed-plain', { namespace: 'shop', name: 'creds', key: 'other' });
    const sealed = [
      { namespace: 'shop', service: 'api', policy: 'shop/vault', secret: 'creds', key: 'token', jwe: sealedGood },
      { namespace: 'shop', service: 'api', policy: 'shop/vault', secret: 'creds', key: 'other', jwe: sealedNew },
      { namespace: 'shop', service: 'x', policy: 'shop/gone', secret: 'creds', key: 'token', jwe: sealedGood },
    ];
    const stores = [store, { ...store, name: 'web-envelope', service: 'web', wrapped: newer, envelopes: {} }];

    const report = await drillWithKeys(new Map([['shop/vault', sets]]), stores, sealed);
    expect(report.checked).toBe(6);
    expect(report.failures.map((f) => [f.object, f.reason])).toEqual([
      ['shop/web-envelope (data key)', 'UnknownKey'],
      ['shop/api sealed creds[other]', 'UnknownKey'],
      ['shop/x sealed creds[token]', 'PolicyNotInBackup'],
    ]);
    const text = formatDrillReport(report, 'decrypt');
    expect(text).toMatch(/^drill FAILED: 3 of 6/);
    expect(text).not.toContain('plain');

    const coverage = drillCoverage(new Map([['shop/vault', new Set([sets.kek.keys[0]!.kid, sets.seal.keys[0]!.kid])]]), stores, sealed);
    expect(coverage.failures.map((f) => f.reason)).toEqual(['KidNotInBackup', 'KidNotInBackup', 'PolicyNotInBackup']);

    const ok = await drillWithKeys(new Map([['shop/vault', sets]]), [store], [sealed[0]!]);
    expect(formatDrillReport(ok, 'decrypt')).toBe('drill OK: all 3 ciphertexts opened with the backed-up keys\n');
  });

  it('reports an envelope value that was tampered with', async () => {
    const sets = await keySets();
    const dek = generateDataKey();
    const wrapped = await wrapDataKey(sets.kek, dek, { namespace: 'shop', name: 'api' });
    const value = encryptValue(dek, 'v', { namespace: 'shop', name: 'db', key: 'password' });
    const moved = { namespace: 'shop', name: 'api-envelope', service: 'api', policy: 'shop/vault', wrapped, previousWrapped: undefined, envelopes: { other: { password: value } } };
    const report = await drillWithKeys(new Map([['shop/vault', sets]]), [moved], []);
    expect(report.failures.map((f) => f.reason)).toEqual(['Tampered']);
  });
});

describe('drill from status', () => {
  it('checks active kids and kids with objects, skips unused and retired ones', () => {
    const kids = new Map([['shop/vault', new Set(['kek-1', 'seal-1'])]]);
    const report = drillCoverageFromStatus(kids, [
      { id: 'shop/vault', keys: [
        { kid: 'kek-2', state: 'active', wrappedObjects: 0 },
        { kid: 'kek-1', state: 'decrypt-only', wrappedObjects: 3 },
        { kid: 'seal-1', state: 'active', wrappedObjects: 1 },
        { kid: 'kek-0', state: 'decrypt-only', wrappedObjects: 0 },
        { kid: 'kek-old', state: 'retired' },
      ] },
      { id: 'shop/new', keys: [{ kid: 'kek-9', state: 'active', wrappedObjects: 0 }] },
    ]);
    expect(report.checked).toBe(4);
    expect(report.failures.map((f) => [f.kid ?? f.policy, f.reason])).toEqual([['kek-2', 'KidNotInBackup'], ['shop/new', 'PolicyNotInBackup']]);
    expect(formatDrillReport(report, 'status')).toMatch(/^drill FAILED: 2 of 4 kids did not pass/);
  });
});
