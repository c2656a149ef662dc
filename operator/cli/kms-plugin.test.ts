import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readKeyFile } from '../kms/key-file.js';
import { MemorySink } from '../runtime/logger.js';
import { memoryIo } from './memory-io.js';
import { kmsPluginCommand } from './kms-plugin.js';
import { runCli } from './main.js';

const io = memoryIo;

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'lockstep-kms-cli-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

describe('lockstep kms-plugin', () => {
  it('init makes a key file once; a second init refuses to replace it', async () => {
    const keys = join(dir, 'keys.json');
    const cli = io();
    expect(await runCli(['kms-plugin', 'init', '--keys', keys], cli)).toBe(0);
    const kid = (await readKeyFile(keys)).keys[0]!.kid;
    expect(cli.stdout()).toContain(kid);
    const again = io();
    expect(await runCli(['kms-plugin', 'init', '--keys', keys], again)).toBe(1);
    expect(again.stderr()).toMatch(/exists; rotate it/);
    expect((await readKeyFile(keys)).keys[0]!.kid).toBe(kid);
  });

  it('rotate adds an active key and keeps the previous one decrypt-only', async () => {
    const keys = join(dir, 'keys.json');
    const before = (await readKeyFile(keys)).keys[0]!.kid;
    const cli = io();
    expect(await runCli(['kms-plugin', 'rotate', '--keys', keys], cli)).toBe(0);
    const after = await readKeyFile(keys);
    expect(after.keys.map((k) => k.state)).toEqual(['active', 'decrypt-only']);
    expect(after.keys[1]!.kid).toBe(before);
    expect(cli.stdout()).toContain(after.keys[0]!.kid);
  });

  it('serves until told to stop; status reports health and the active key', async () => {
    const keys = join(dir, 'keys.json');
    const socket = join(dir, 'kms.sock');
    let stop!: (signal: string) => void;
    const logs = new MemorySink();
    const serving = kmsPluginCommand(['--socket', socket, '--keys', keys], io(), { stopped: () => new Promise((resolve) => { stop = resolve; }), logSink: logs });
    const cli = io();
    let code: number | undefined;
    for (let i = 0; i < 50 && code !== 0; i += 1) {
      code = await runCli(['kms-plugin', 'status', '--socket', socket], cli).catch(() => undefined);
      if (code !== 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(code).toBe(0);
    expect(cli.stdout()).toContain(`healthz ok, key ID ${(await readKeyFile(keys)).keys[0]!.kid}`);
    stop('SIGTERM');
    expect(await serving).toBe(0);
    expect(logs.records().map((r) => r['msg'])).toEqual(['key file loaded', 'KMS v2 plugin serving', 'stopping', 'KMS v2 plugin stopped']);
    const gone = io();
    expect(await runCli(['kms-plugin', 'status', '--socket', socket], gone)).toBe(1);
    expect(gone.stderr()).toMatch(/no answer from the plugin/);
  });

  it('usage errors: missing flags', async () => {
    const cli = io();
    expect(await runCli(['kms-plugin', '--socket', join(dir, 'x.sock')], cli)).toBe(2);
    expect(cli.stderr()).toMatch(/--keys is required/);
    expect(await runCli(['kms-plugin', 'rotate'], io())).toBe(2);
  });

  it('serve refuses to start without a usable key file', async () => {
    const cli = io();
    expect(await kmsPluginCommand(['--socket', join(dir, 'y.sock'), '--keys', join(dir, 'missing.json')], cli, { logSink: new MemorySink() }).catch((err: Error) => {
      cli.err(err.message);
      return 1;
    })).toBe(1);
    expect(cli.stderr()).toMatch(/cannot start the KMS plugin: key file .*missing\.json/);
  });
});
