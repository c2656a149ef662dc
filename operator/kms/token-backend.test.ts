import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { memoryIo } from '../cli/memory-io.js';
import { kmsPluginCommand } from '../cli/kms-plugin.js';
import { runCli } from '../cli/main.js';
import { parseKekIndex, serializeKekIndex } from '../crypto/kek-index.js';
import { openTestToken, softhsmAvailable, SOFTHSM_MISSING, type TestToken } from '../crypto/softhsm-test-token.js';
import { MemorySink } from '../runtime/logger.js';
import { KmsError } from './backend.js';
import { kmsClient } from './client.js';
import { TokenKeyBackend } from './token-backend.js';

// The KMS v2 plugin with its root keys in a real SoftHSM2 token (not a mock), through the CLI a
// control-plane host runs and the gRPC server the API server calls.

const inCi = !['', '0', 'false', undefined].includes(process.env['CI']);
if (!softhsmAvailable && !inCi) console.warn(`SKIPPED: KMS plugin token tests — ${SOFTHSM_MISSING}`);

const io = memoryIo;

describe('SoftHSM2 for the KMS plugin token tests', () => {
  it('is installed wherever CI runs', () => {
    if (!softhsmAvailable && inCi) throw new Error(SOFTHSM_MISSING);
  });
});

(softhsmAvailable ? describe : describe.skip)('lockstep kms-plugin --pkcs11 (root keys in a token)', () => {
  let token: TestToken;
  let config: string;
  let index: string;

  beforeAll(async () => {
    token = await openTestToken('lockstep-kms');
    config = join(token.dir, 'pkcs11.json');
    writeFileSync(config, JSON.stringify({ module: token.config.modulePath, tokenLabel: token.config.tokenLabel, pin: token.config.pin.reveal() }), { mode: 0o600 });
    index = join(token.dir, 'kms-index.json');
  });

  afterAll(async () => {
    await token?.close();
  });

  it('init makes the first key in the token; the index on the host names it and holds no key material', async () => {
    const cli = io();
    expect(await runCli(['kms-plugin', 'init', '--keys', index, '--pkcs11', config], cli)).toBe(0);
    const stored = parseKekIndex(readFileSync(index, 'utf8'));
    const kid = stored.keys[0]!.kid;
    expect(cli.stdout()).toContain(`active key ${kid}, made in token "lockstep-kms"`);
    expect(statSync(index).mode & 0o777).toBe(0o600);
    expect(Object.keys(JSON.parse(readFileSync(index, 'utf8')).keys[0]).sort()).toEqual(['activatedAt', 'createdAt', 'kid', 'state']);
    expect(cli.stdout() + cli.stderr()).not.toContain(token.config.pin.reveal());
    const again = io();
    expect(await runCli(['kms-plugin', 'init', '--keys', index, '--pkcs11', config], again)).toBe(1);
    expect(again.stderr()).toMatch(/exists; rotate it/);
    expect(parseKekIndex(readFileSync(index, 'utf8')).keys.map((k) => k.kid)).toEqual([kid]);
  });

  it('wraps the data key in the token: round trip, the key ID is the kid, a changed byte or another key ID is refused', async () => {
    const backend = new TokenKeyBackend(index, token.session);
    const kid = (await backend.status()).keyId;
    const dek = randomBytes(32);
    const { keyId, ciphertext } = await backend.encrypt(dek);
    expect(keyId).toBe(kid);
    expect(ciphertext.includes(dek)).toBe(false);
    expect((await backend.decrypt(keyId, ciphertext)).equals(dek)).toBe(true);
    expect((await backend.decrypt('', ciphertext)).equals(dek)).toBe(true);

    const text = ciphertext.toString('utf8');
    const last = text.lastIndexOf('.');
    const flipped = Buffer.from(`${text.slice(0, last + 1)}${text[last + 1] === 'A' ? 'B' : 'A'}${text.slice(last + 2)}`, 'utf8');
    await expect(backend.decrypt(keyId, flipped)).rejects.toMatchObject({ reason: 'Tampered' });
    await expect(backend.decrypt('kek-other', ciphertext)).rejects.toMatchObject({ reason: 'KeyIdMismatch' });
    await expect(backend.decrypt(keyId, Buffer.from('not a wrapped key'))).rejects.toMatchObject({ reason: 'Malformed' });
    await expect(backend.encrypt(randomBytes(16))).rejects.toBeInstanceOf(KmsError);
  });

  it('rotate makes a new key in the token; a running backend reports it without a restart and still opens what the old key wrapped', async () => {
    const backend = new TokenKeyBackend(index, token.session);
    const before = await backend.encrypt(randomBytes(32));
    const cli = io();
    expect(await runCli(['kms-plugin', 'rotate', '--keys', index, '--pkcs11', config], cli)).toBe(0);
    const stored = parseKekIndex(readFileSync(index, 'utf8'));
    expect(stored.keys.map((k) => k.state)).toEqual(['active', 'decrypt-only']);
    expect(stored.keys[1]!.kid).toBe(before.keyId);
    expect((await backend.status()).keyId).toBe(stored.keys[0]!.kid);
    const after = await backend.encrypt(randomBytes(32));
    expect(after.keyId).toBe(stored.keys[0]!.kid);
    expect((await backend.decrypt(before.keyId, before.ciphertext)).length).toBe(32);
  });

  it('an index naming a key the token does not hold: the last good index stays in service and Status says why; nothing is made', async () => {
    const backend = new TokenKeyBackend(index, token.session);
    const good = await backend.status();
    const saved = readFileSync(index, 'utf8');
    const forged = parseKekIndex(saved);
    const at = new Date().toISOString();
    writeFileSync(index, serializeKekIndex({ ...forged, keys: [{ kid: 'kek-20261201t000000z-00000000', state: 'active', createdAt: at, activatedAt: at }, ...forged.keys.map((k) => ({ ...k, state: 'decrypt-only' as const, deactivatedAt: k.deactivatedAt ?? at }))] }), { mode: 0o600 });
    try {
      const status = await backend.status();
      expect(status.keyId).toBe(good.keyId);
      expect(status.problem).toMatch(/kek-20261201t000000z-00000000/);
      await expect(new TokenKeyBackend(index, token.session).status()).rejects.toMatchObject({ reason: 'NoKeys' });
    } finally {
      writeFileSync(index, saved, { mode: 0o600 });
    }
  });

  it('serves the API server\'s calls over the socket; refuses a PIN file others can read', async () => {
    const socket = join(token.dir, 'kms.sock');
    let stop!: (signal: string) => void;
    const logs = new MemorySink();
    const serving = kmsPluginCommand(['--socket', socket, '--keys', index, '--pkcs11', config], io(), { stopped: () => new Promise((resolve) => { stop = resolve; }), logSink: logs });
    const client = kmsClient(socket);
    try {
      let status;
      for (let i = 0; i < 50 && status === undefined; i += 1) {
        status = await client.status().catch(() => undefined);
        if (status === undefined) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toMatchObject({ healthz: 'ok', key_id: parseKekIndex(readFileSync(index, 'utf8')).keys[0]!.kid });
      const dek = randomBytes(32);
      const sealed = await client.encrypt(dek);
      expect((await client.decrypt(sealed.ciphertext, sealed.key_id)).equals(dek)).toBe(true);
    } finally {
      client.close();
      stop('SIGTERM');
    }
    expect(await serving).toBe(0);
    expect(JSON.stringify(logs.records())).not.toContain(token.config.pin.reveal());

    chmodSync(config, 0o644);
    const cli = io();
    expect(await runCli(['kms-plugin', 'rotate', '--keys', index, '--pkcs11', config], cli)).toBe(1);
    expect(cli.stderr()).toMatch(/holds the token's PIN: make it readable by its owner only/);
    chmodSync(config, 0o600);
  });
});
