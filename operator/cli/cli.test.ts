import { describe, expect, it } from '@jest/globals';
import { appendAuditEvent, serializeSegment } from '../audit/segments.js';
import { createKeySet, publicJwks } from '../crypto/keyset.js';
import { openSealed } from '../crypto/seal.js';
import { jwkThumbprint } from '../crypto/thumbprint.js';
import { auditTrailId } from '../keypolicy/names.js';
import { parse } from 'yaml';
import type { CliIo } from './io.js';
import { runCli } from './main.js';

function io(files: Record<string, string>, stdin = ''): CliIo & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return {
    out: (t) => { out += t; },
    err: (t) => { err += t; },
    readStdin: async () => Buffer.from(stdin),
    readFile: async (path) => {
      const text = files[path];
      if (text === undefined) throw new Error(`ENOENT: ${path}`);
      return Buffer.from(text);
    },
    kubeConfig: () => { throw new Error('no cluster in unit tests'); },
    stdout: () => out,
    stderr: () => err,
  };
}

describe('lockstep seal', () => {
  it('seals stdin to a JWKS file, bound to namespace, Secret and key', async () => {
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() });
    const cli = io({ 'jwks.json': JSON.stringify(publicJwks(seal)) }, 'hunter2-but-longer');
    const code = await runCli(['seal', '--namespace', 'shop', '--name', 'db', '--key', 'password', '--jwks', 'jwks.json'], cli);
    // An unchecked file still seals (it may come from a trusted source), with a warning.
    expect(cli.stderr()).toMatch(/was not checked; pass --fingerprint/);
    expect(code).toBe(0);
    const jwe = cli.stdout().trim();
    expect(jwe.split('.')).toHaveLength(5);
    expect((await openSealed(seal, jwe, { namespace: 'shop', name: 'db', key: 'password' })).toString()).toBe('hunter2-but-longer');
    await expect(openSealed(seal, jwe, { namespace: 'shop', name: 'other', key: 'password' })).rejects.toMatchObject({ reason: 'WrongBinding' });
  });

  it('seals to a JWKS file only when it matches --fingerprint, and prints nothing otherwise', async () => {
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() });
    const other = await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() });
    const good = jwkThumbprint(publicJwks(seal).keys[0]!);
    const matching = io({ 'jwks.json': JSON.stringify(publicJwks(seal)) }, 'v');
    expect(await runCli(['seal', '-n', 'shop', '--name', 'db', '--key', 'k', '--jwks', 'jwks.json', '--fingerprint', good], matching)).toBe(0);
    expect(matching.stdout()).toMatch(/^ey/);
    const swapped = io({ 'jwks.json': JSON.stringify(publicJwks(other)) }, 'v');
    expect(await runCli(['seal', '-n', 'shop', '--name', 'db', '--key', 'k', '--jwks', 'jwks.json', '--fingerprint', good], swapped)).toBe(1);
    expect(swapped.stdout()).toBe('');
    expect(swapped.stderr()).toMatch(/nothing was sealed/);
  });

  it('takes a --fingerprint that starts with a dash (base64url, one thumbprint in 64) as the value it is', async () => {
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() });
    const cli = io({ 'jwks.json': JSON.stringify(publicJwks(seal)) }, 'v');
    const dashed = `-${'A'.repeat(42)}`; // 43 characters like a thumbprint; not this key's
    expect(await runCli(['seal', '-n', 'shop', '--name', 'db', '--key', 'k', '--jwks', 'jwks.json', '--fingerprint', dashed], cli)).toBe(1);
    expect(cli.stderr()).toContain(`--fingerprint expects ${dashed}`);
  });

  it('prints a sealed-secret snippet with --output yaml, reading --from-file', async () => {
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() });
    const cli = io({ 'jwks.json': JSON.stringify(publicJwks(seal)), value: 'from-a-file' });
    expect(await runCli(['seal', '-n', 'shop', '--name', 'db', '--key', 'password', '--jwks', 'jwks.json', '--from-file', 'value', '-o', 'yaml'], cli)).toBe(0);
    const [first, second, third] = cli.stdout().split('\n');
    expect(first).toBe('- name: db');
    expect(second).toBe('  encryptedData:');
    const jwe = third?.replace(/^\s+password: /, '') ?? '';
    expect((await openSealed(seal, jwe, { namespace: 'shop', name: 'db', key: 'password' })).toString()).toBe('from-a-file');
  });

  it('refuses incomplete or ambiguous flags with a usage error', async () => {
    expect(await runCli(['seal', '--namespace', 'shop', '--name', 'db', '--jwks', 'x'], io({}))).toBe(2);
    expect(await runCli(['seal', '-n', 'shop', '--name', 'db', '--key', 'k', '--jwks', 'x', '--policy', 'p'], io({}))).toBe(2);
    expect(await runCli(['seal', '--bogus'], io({}))).toBe(2);
    expect(await runCli(['nope'], io({}))).toBe(2);
    expect(await runCli(['status', '--context'], io({}))).toBe(2);
    expect(await runCli(['status', '-o', 'xml'], io({}))).toBe(2);
  });

  it('seals every key of a Secret manifest on stdin into one complete sealed entry', async () => {
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() });
    const fingerprint = jwkThumbprint(publicJwks(seal).keys[0]!);
    const manifest = `apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\ndata: {user: ${Buffer.from('admin').toString('base64')}}\nstringData: {password: pw-1}\n`;
    const cli = io({ 'jwks.json': JSON.stringify(publicJwks(seal)) }, manifest);
    expect(await runCli(['seal', '--jwks', 'jwks.json', '--fingerprint', fingerprint], cli)).toBe(0);
    const [entry] = parse(cli.stdout()) as { name: string; encryptedData: Record<string, string> }[];
    expect(entry?.name).toBe('db');
    expect(Object.keys(entry?.encryptedData ?? {})).toEqual(['user', 'password']);
    expect((await openSealed(seal, entry!.encryptedData['user']!, { namespace: 'shop', name: 'db', key: 'user' })).toString()).toBe('admin');
    expect((await openSealed(seal, entry!.encryptedData['password']!, { namespace: 'shop', name: 'db', key: 'password' })).toString()).toBe('pw-1');
    expect(cli.stdout()).not.toContain('pw-1');
  });

  it('merges the sealed entry into an EncryptedService file with --merge-into', async () => {
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() });
    const files: Record<string, string> = {
      'jwks.json': JSON.stringify(publicJwks(seal)),
      'api.yaml': 'kind: EncryptedService\nmetadata: {name: api, namespace: shop}\nspec: {keyPolicyRef: {name: keys}}\n',
    };
    const cli = { ...io(files, 'kind: Secret\nmetadata: {name: db}\nstringData: {password: pw}\n'), writeFile: async (path: string, data: string) => { files[path] = data; } };
    expect(await runCli(['seal', '-n', 'shop', '--jwks', 'jwks.json', '--merge-into', 'api.yaml'], cli)).toBe(0);
    expect(cli.stdout()).toBe('sealed Secret shop/db (password) merged into api.yaml\n');
    const es = parse(files['api.yaml']!) as { spec: { secrets: { sealed: { name: string; encryptedData: Record<string, string> }[] } } };
    const jwe = es.spec.secrets.sealed[0]!.encryptedData['password']!;
    expect((await openSealed(seal, jwe, { namespace: 'shop', name: 'db', key: 'password' })).toString()).toBe('pw');
    // --merge-into takes a complete entry only, never a single key that would drop the others.
    expect(await runCli(['seal', '-n', 'shop', '--name', 'db', '--key', 'k', '--jwks', 'jwks.json', '--merge-into', 'api.yaml'], io(files, 'v'))).toBe(2);
  });

  it('refuses a JWKS that carries private material', async () => {
    const seal = await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() });
    const cli = io({ 'jwks.json': JSON.stringify({ keys: seal.keys }) }, 'value');
    expect(await runCli(['seal', '-n', 'shop', '--name', 'db', '--key', 'k', '--jwks', 'jwks.json'], cli)).toBe(1);
    expect(cli.stderr()).toContain('error:');
  });
});

describe('lockstep audit verify (from files)', () => {
  const trail = auditTrailId('shop', 'keys');
  function exported() {
    let segment;
    let head = { segment: 0, sequence: 0, hash: '' };
    for (let i = 0; i < 4; i++) {
      const r = appendAuditEvent(trail, segment, { type: 'create', time: new Date(Date.UTC(2026, 0, 1, i)), subject: { namespace: 'shop', name: 'keys', kid: `kek-${i}` } });
      segment = r.segment;
      head = { segment: r.head.segment, sequence: r.head.sequence, hash: r.head.hash };
    }
    return { text: serializeSegment(segment!), head };
  }

  it('accepts an intact export and says where a changed one breaks', async () => {
    const { text, head } = exported();
    const ok = io({ 'seg0.jsonl': text, 'head.json': JSON.stringify(head) });
    expect(await runCli(['audit', 'verify', '-n', 'shop', '--policy', 'keys', '--segments', 'seg0.jsonl', '--head', 'head.json'], ok)).toBe(0);
    expect(ok.stdout()).toContain('OK — 4 entries in 1 segments');

    const changed = text.replace('"kid":"kek-2"', '"kid":"kek-9"');
    const bad = io({ 'seg0.jsonl': changed, 'head.json': JSON.stringify(head) });
    expect(await runCli(['audit', 'verify', '-n', 'shop', '--policy', 'keys', '--segments', 'seg0.jsonl', '--head', 'head.json'], bad)).toBe(1);
    expect(bad.stderr()).toMatch(/entry-hash \(segment 0, entry 2, seq 3\)/);
  });
});
