import { describe, expect, it } from '@jest/globals';
import { generateDataKey, unwrapDataKey, wrapDataKey } from './datakey.js';
import { createKeySet } from './keyset.js';
import { SecretKekBackend } from './secret-kek-backend.js';

const now = new Date('2026-12-01T10:00:00Z');
const ledger = { namespace: 'payments', name: 'ledger' };

describe('SecretKekBackend', () => {
  it('makes the same ciphertexts as datakey.ts: either side opens the other', async () => {
    const keySet = await createKeySet('kek', 'A256KW', { now });
    const backend = new SecretKekBackend(keySet);
    const dataKey = generateDataKey();
    expect((await unwrapDataKey(keySet, await backend.wrapDataKey(dataKey, ledger), ledger)).key.equals(dataKey.key)).toBe(true);
    expect((await backend.unwrapDataKey(await wrapDataKey(keySet, dataKey, ledger), ledger)).key.equals(dataKey.key)).toBe(true);
  });

  it('rotates and retires through the key set document it hands back for storing', async () => {
    const backend = new SecretKekBackend(await createKeySet('kek', 'A256KW', { now }));
    const first = backend.activeKid();
    const wrapped = await backend.wrapDataKey(generateDataKey(), ledger);
    const rotation = await backend.rotate({ retention: 0, usage: { [first]: 1 }, now: new Date(now.getTime() + 60_000) });
    expect(rotation).toEqual({ activated: backend.activeKid(), deactivated: first, retired: [] });
    expect(backend.liveKids()).toEqual([backend.activeKid(), first]);
    expect(backend.keySet.keys[1]).toMatchObject({ kid: first, state: 'decrypt-only' });
    expect((await backend.unwrapDataKey(wrapped, ledger)).id).toMatch(/^dek-/);
    expect(await backend.retire({ retention: 0, usage: { [first]: 0 }, now: new Date(now.getTime() + 120_000) })).toEqual([first]);
    expect(backend.keySet.retired[0]).toMatchObject({ kid: first, state: 'retired' });
    expect(JSON.stringify(backend.keySet.retired)).not.toContain('"k"');
    await expect(backend.unwrapDataKey(wrapped, ledger)).rejects.toMatchObject({ reason: 'RetiredKey' });
  });

  it('refuses a sealing key set', async () => {
    expect(() => new SecretKekBackend({ purpose: 'seal', keys: [], retired: [] })).toThrow(expect.objectContaining({ reason: 'WrongPurpose' }));
  });
});
