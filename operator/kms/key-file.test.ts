import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { activeKey } from '../crypto/keyset.js';
import { createKeyFile, readKeyFile, rotateKeyFile } from './key-file.js';

let dir = '';
let path = '';

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lockstep-kms-keys-'));
  path = join(dir, 'kms-keys.json');
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('the KMS plugin key file', () => {
  it('is made 0600 with one active key, and never replaced by init', async () => {
    const kid = await createKeyFile(path, new Date());
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(activeKey(await readKeyFile(path)).kid).toBe(kid);
    await expect(createKeyFile(path, new Date())).rejects.toMatchObject({ code: 'EEXIST' });
    expect(activeKey(await readKeyFile(path)).kid).toBe(kid);
  });

  it('rotates one at a time: of two rotations at once one is refused, and no key is lost', async () => {
    const first = await createKeyFile(path, new Date());
    const results = await Promise.allSettled([rotateKeyFile(path, new Date()), rotateKeyFile(path, new Date())]);
    const done = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(done).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(String(refused[0]!.reason)).toContain('another rotation holds');
    const keys = await readKeyFile(path);
    expect(keys.keys.map((k) => k.kid)).toEqual([(done[0] as PromiseFulfilledResult<{ activated: string }>).value.activated, first]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(existsSync(`${path}.lock`)).toBe(false);
    // A second rotation after the first: three keys, every earlier one still there.
    await rotateKeyFile(path, new Date());
    expect((await readKeyFile(path)).keys.map((k) => k.kid)).toEqual(expect.arrayContaining(keys.keys.map((k) => k.kid)));
    expect((await readKeyFile(path)).keys).toHaveLength(3);
  });

  it('a lock left behind refuses rotation with what to do, and the file stays as it was', async () => {
    const kid = await createKeyFile(path, new Date());
    writeFileSync(`${path}.lock`, '');
    await expect(rotateKeyFile(path, new Date())).rejects.toThrow(/another rotation holds .*kms-keys\.json\.lock: wait for it/);
    expect((await readKeyFile(path)).keys.map((k) => k.kid)).toEqual([kid]);
    rmSync(`${path}.lock`);
    await rotateKeyFile(path, new Date());
    expect((await readKeyFile(path)).keys).toHaveLength(2);
  });
});
