// The plugin as the API server meets it: the real gRPC server on a Unix socket in a temporary
// directory, called by a grpc-js client, over a real key file that is rotated while it runs.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { createLogger, MemorySink } from '../runtime/logger.js';
import { kmsClient, type KmsClient } from './client.js';
import { FileKeyBackend } from './file-backend.js';
import { createKeyFile, readKeyFile, rotateKeyFile } from './key-file.js';
import { startKmsPlugin, type RunningKmsPlugin } from './server.js';

let dir: string;
let keys: string;
let plugin: RunningKmsPlugin;
let client: KmsClient;
const sink = new MemorySink();

const grpcCode = async (promise: Promise<unknown>): Promise<number | undefined> => {
  try {
    await promise;
  } catch (err) {
    return (err as grpc.ServiceError).code;
  }
  return undefined;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lockstep-kms-'));
  keys = join(dir, 'keys.json');
  await createKeyFile(keys, new Date());
  const log = createLogger({ name: 'kms-plugin', level: 'debug', sink });
  plugin = await startKmsPlugin({ socket: join(dir, 'kms.sock'), backend: new FileKeyBackend(keys), log });
  client = kmsClient(join(dir, 'kms.sock'));
});

afterAll(async () => {
  client?.close();
  await plugin?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('KMS v2 plugin over gRPC', () => {
  const seed = randomBytes(32);
  let first: { ciphertext: Buffer; key_id: string };

  it('Status: healthy, v2, the key file\'s active key', async () => {
    const status = await client.status();
    const active = (await readKeyFile(keys)).keys[0]!.kid;
    expect(status).toEqual({ version: 'v2', healthz: 'ok', key_id: active });
  });

  it('Encrypt then Decrypt gives the plaintext back; the ciphertext does not contain it', async () => {
    first = await client.encrypt(seed, 'uid-1');
    expect(first.key_id).toBe((await client.status()).key_id);
    expect(first.ciphertext.includes(seed)).toBe(false);
    expect((await client.decrypt(first.ciphertext, first.key_id, 'uid-2')).equals(seed)).toBe(true);
  });

  it('rotation: Status and Encrypt move to the new key; what the old key encrypted still decrypts', async () => {
    const before = (await client.status()).key_id;
    const rotation = await rotateKeyFile(keys, new Date());
    expect(rotation.deactivated).toBe(before);
    expect((await client.status()).key_id).toBe(rotation.activated);
    const second = await client.encrypt(seed);
    expect(second.key_id).toBe(rotation.activated);
    expect((await client.decrypt(first.ciphertext, before)).equals(seed)).toBe(true);
    expect((await client.decrypt(second.ciphertext, second.key_id)).equals(seed)).toBe(true);
  });

  it('refuses a tampered ciphertext, a key ID that does not match, and a key the file no longer holds', async () => {
    const bad = Buffer.from(first.ciphertext);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0x80;
    expect(await grpcCode(client.decrypt(bad, first.key_id))).toBe(grpc.status.INVALID_ARGUMENT);
    const current = (await client.status()).key_id;
    expect(await grpcCode(client.decrypt(first.ciphertext, current))).toBe(grpc.status.INVALID_ARGUMENT);
    // A key file from elsewhere: same plugin, none of these keys.
    const other = join(dir, 'other.json');
    await createKeyFile(other, new Date());
    await writeFile(keys, await readFile(other));
    const err = await client.decrypt(first.ciphertext, first.key_id).then(() => undefined, (e: grpc.ServiceError) => e);
    expect(err?.code).toBe(grpc.status.NOT_FOUND);
    expect(err?.details).toContain(first.key_id);
  });

  it('a key file that stops parsing: Status says so, and the last good keys keep serving', async () => {
    const good = (await client.status()).key_id;
    await writeFile(keys, '{"purpose":"kek","keys":[]}');
    const status = await client.status();
    expect(status.key_id).toBe(good);
    expect(status.healthz).not.toBe('ok');
    expect(status.healthz).toContain(keys);
    const sealed = await client.encrypt(seed);
    expect(sealed.key_id).toBe(good);
  });

  it('logs key IDs and reasons, never key material or plaintext', async () => {
    const text = sink.text();
    expect(text).toContain('Tampered');
    expect(text).toContain('UnknownKey');
    const material = [...(await readKeyFile(join(dir, 'other.json'))).keys].map((k) => k['k']!);
    for (const secret of [seed.toString('base64'), seed.toString('hex'), first.ciphertext.toString('base64'), ...material]) {
      expect(text).not.toContain(secret);
    }
  });
});

describe('plugin start', () => {
  it('fails at start, not on the first request, when the key file is missing', async () => {
    const log = createLogger({ sink: new MemorySink() });
    await expect(startKmsPlugin({ socket: join(dir, 'missing.sock'), backend: new FileKeyBackend(join(dir, 'nope.json')), log })).rejects.toThrow(/nope\.json/);
  });

  it('replaces a stale socket left by a crashed plugin, and never a file that is not a socket', async () => {
    const log = createLogger({ sink: new MemorySink() });
    const backend = new FileKeyBackend(join(dir, 'other.json'));
    const socket = join(dir, 'second.sock');
    const crashed = await startKmsPlugin({ socket, backend, log });
    // A crash leaves the socket file: simulate by starting again over it without closing first.
    const again = await startKmsPlugin({ socket, backend, log });
    const probe = kmsClient(socket);
    expect((await probe.status()).healthz).toBe('ok');
    probe.close();
    await again.close();
    await crashed.close();
    const notSocket = join(dir, 'plain-file');
    await writeFile(notSocket, 'x');
    await expect(startKmsPlugin({ socket: notSocket, backend, log })).rejects.toThrow(/not a socket/);
  });
});
