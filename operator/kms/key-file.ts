// The plugin's key file: a KEK key set (operator/crypto/keyset.ts, A256KW-typed 256-bit keys) on
// the control-plane host, made and rotated with the same functions the KeyPolicy uses.
//
// Why a file and not a KeyPolicy's key Secret: the plugin's root key cannot live in the Secrets
// it encrypts. Once Secrets are encrypted by the plugin, reading a key Secret would need the
// plugin, which needs the key: at API server start nothing could be decrypted. So the root of
// trust sits beside the API server (a file readable only by its user, like the API server's own
// TLS keys), or later in an HSM behind the same KmsKeyBackend interface.
//
// Rotation adds a new active key and keeps every earlier key decrypt-only: the API server holds
// objects under the old key until each is rewritten, so nothing is retired here.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { activeKey, createKeySet, parseKeySet, serializeKeySet, type KeySet } from '../crypto/keyset.js';
import { rotateKeySet } from '../crypto/rotation.js';

const MODE = 0o600;

export async function readKeyFile(path: string): Promise<KeySet> {
  const keySet = parseKeySet(await readFile(path, 'utf8'), 'kek');
  for (const key of keySet.keys) {
    if (key.kty !== 'oct') throw new Error(`key file ${path}: key ${key.kid} is ${key.alg}; the KMS plugin needs 256-bit symmetric (A256KW) keys`);
  }
  return keySet;
}

/** Creates the key file with one active key; refuses to replace an existing file. */
export async function createKeyFile(path: string, now: Date): Promise<string> {
  const keySet = await createKeySet('kek', 'A256KW', { now });
  await createFile(path, serializeKeySet(keySet));
  return activeKey(keySet).kid;
}

export interface KeyFileRotation {
  readonly activated: string;
  readonly deactivated: string;
  /** Keys the file now holds (the new one and every decrypt-only one). */
  readonly keys: number;
}

/**
 * A new active key; the previous one and all earlier ones stay, decrypt-only. One rotation at a
 * time (a lock file beside the key file): two at once would each write a file without the other's
 * new key, and a key the running plugin already used would be gone with what it encrypted.
 */
export async function rotateKeyFile(path: string, now: Date): Promise<KeyFileRotation> {
  return withRotationLock(path, async () => {
    const current = await readKeyFile(path);
    // usage {} counts every kid as "unknown, keep" and retention covers them all: nothing retires.
    const { keySet, activated, deactivated } = await rotateKeySet(current, { retention: current.keys.length, usage: {}, now });
    await replaceFile(path, serializeKeySet(keySet));
    return { activated, deactivated, keys: keySet.keys.length };
  });
}

/** Runs `work` holding `<path>.lock` (created exclusively, removed after). */
export async function withRotationLock<T>(path: string, work: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  const held = await open(lock, 'wx', MODE).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') throw new Error(`another rotation holds ${lock}: wait for it (remove the file only if no rotation is running)`);
    throw err;
  });
  try {
    return await work();
  } finally {
    await held.close();
    await rm(lock, { force: true });
  }
}

/** Creates `path` with `data` (never replaces a file), flushed to disk with its directory entry. */
export async function createFile(path: string, data: string): Promise<void> {
  await writeDurably(path, data);
  await syncDirectory(dirname(path));
}

// Written beside the target, flushed to disk, and renamed over it (the directory flushed too): a
// reader (the running plugin) sees the old file or the new one, never half of one, and a crash
// leaves one of them on disk.
export async function replaceFile(path: string, data: string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeDurably(temporary, data);
    await rename(temporary, path);
    await syncDirectory(dirname(path));
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}

/** Creates `path` (never replaces it) with `data`, flushed to disk before it returns. */
async function writeDurably(path: string, data: string): Promise<void> {
  const file = await open(path, 'wx', MODE);
  try {
    await file.writeFile(data, 'utf8');
    await file.sync();
  } finally {
    await file.close();
  }
}

async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
