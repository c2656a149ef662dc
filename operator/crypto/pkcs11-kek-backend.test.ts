import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { SHARE_ENV, Worker } from 'node:worker_threads';
import { generateDataKey, inspectWrappedDataKey, unwrapDataKey, wrapDataKey } from './datakey.js';
import { kekView } from './kek-view.js';
import { countByKid } from './rotation.js';
import { storeTag, storeTagMatches } from './store-mac.js';
import { keySecretData } from '../keypolicy/key-ring.js';
import { DecryptError } from './errors.js';
import { parseKekIndex, serializeKekIndex } from './kek-index.js';
import { KeyStoreError } from './key-store-errors.js';
import { createKeySet, keyMaterial } from './keyset.js';
import { Pin, type Pkcs11Config } from './pkcs11-config.js';
import { Pkcs11KekBackend } from './pkcs11-kek-backend.js';
import { CKR, ckrOf, loadPkcs11js, Pkcs11Session, type Handle } from './pkcs11-session.js';
import { SecretKekBackend } from './secret-kek-backend.js';

// A real SoftHSM2 token in a temporary directory (SOFTHSM2_CONF), not a mock: every claim about
// the token — the KEK is generated inside and cannot leave, GCM runs inside with the binding as
// additional data, a lost session is typed and recovers — is checked against the module itself.
// Without SoftHSM2 (Debian: apt-get install -y softhsm2; e2e/node/install-deps.sh installs it)
// these tests fail under CI and are skipped, loudly, elsewhere.

const MODULE_CANDIDATES = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so'];
const modulePath = MODULE_CANDIDATES.find((path) => existsSync(path));
const hasUtil = (() => {
  try {
    execFileSync('softhsm2-util', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const available = modulePath !== undefined && hasUtil;
const MISSING = 'SoftHSM2 is not installed (Debian: apt-get install -y softhsm2, or bash e2e/node/install-deps.sh)';

const inCi = !['', '0', 'false', undefined].includes(process.env['CI']);

if (!available && !inCi) {
  console.warn(`SKIPPED: PKCS#11 backend tests — ${MISSING}`);
}

describe('SoftHSM2 for the PKCS#11 backend tests', () => {
  it('is installed wherever CI runs', () => {
    if (!available && inCi) throw new Error(MISSING);
  });
});

/**
 * SoftHSM reads SOFTHSM2_CONF with getenv() at C_Initialize (once per process). Jest hands each
 * test file a copy of process.env, so setting it there never reaches the C environment; a worker
 * thread sharing the process environment (SHARE_ENV) does.
 */
async function setProcessEnvironment(name: string, value: string): Promise<void> {
  await new Promise((resolve, reject) => {
    const worker = new Worker('const { workerData } = require("node:worker_threads"); process.env[workerData.name] = workerData.value;', {
      eval: true,
      env: SHARE_ENV,
      workerData: { name, value },
    });
    worker.on('exit', resolve);
    worker.on('error', reject);
  });
}

const now = new Date('2026-12-01T10:00:00Z');
const later = (minutes: number) => new Date(now.getTime() + minutes * 60_000);
const ledger = { namespace: 'payments', name: 'ledger' };
const other = { namespace: 'payments', name: 'cart' };
const LABEL = 'lockstep-test';

(available ? describe : describe.skip)('PKCS#11 KEK backend on a SoftHSM2 token', () => {
  let dir: string;
  let pin: string;
  let config: Pkcs11Config;
  let session: Pkcs11Session;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lockstep-softhsm-'));
    mkdirSync(join(dir, 'tokens'));
    writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    await setProcessEnvironment('SOFTHSM2_CONF', join(dir, 'softhsm2.conf'));
    pin = randomBytes(8).toString('hex');
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', LABEL, '--pin', pin, '--so-pin', randomBytes(8).toString('hex')], {
      env: { ...process.env, SOFTHSM2_CONF: join(dir, 'softhsm2.conf') },
      stdio: 'ignore',
    });
    config = { modulePath: modulePath as string, tokenLabel: LABEL, pin: new Pin(pin) };
    session = await Pkcs11Session.open(config);
  });

  afterAll(() => {
    session?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** The test's own view of the token, through the same module (one Cryptoki per process). */
  function findKeys(label?: string): Handle[] {
    const lib = session.lib;
    return session.run((p11, s) => {
      p11.C_FindObjectsInit(s, [{ type: lib.CKA_CLASS, value: lib.CKO_SECRET_KEY }, { type: lib.CKA_TOKEN, value: true }, ...(label === undefined ? [] : [{ type: lib.CKA_LABEL, value: label }])]);
      try {
        return p11.C_FindObjects(s, 1000);
      } finally {
        p11.C_FindObjectsFinal(s);
      }
    });
  }

  function cryptokiCode(work: () => unknown): number | undefined {
    try {
      work();
    } catch (error) {
      return ckrOf(error);
    }
    return undefined;
  }

  it('runs standard AES-256-GCM in the token (same bytes as node:crypto for a key the test knows)', () => {
    // Pins the mechanism parameters (CK_GCM_PARAMS layout, IV, AAD, tag length): a wrong layout
    // would still round-trip in the token but not authenticate the additional data as specified.
    const lib = session.lib;
    const value = randomBytes(32);
    const iv = randomBytes(12);
    const aad = Buffer.from('protected-header');
    const plaintext = randomBytes(32);
    const sealed = session.run((p11, s) => {
      const key = p11.C_CreateObject(s, [
        { type: lib.CKA_CLASS, value: lib.CKO_SECRET_KEY },
        { type: lib.CKA_KEY_TYPE, value: lib.CKK_AES },
        { type: lib.CKA_TOKEN, value: false },
        { type: lib.CKA_ENCRYPT, value: true },
        { type: lib.CKA_VALUE, value },
      ]);
      p11.C_EncryptInit(s, { mechanism: lib.CKM_AES_GCM, parameter: { type: lib.CK_PARAMS_AES_GCM_v240, iv, ivBits: 96, aad, tagBits: 128 } as never }, key);
      const out = Buffer.from(p11.C_Encrypt(s, plaintext, Buffer.alloc(64)));
      p11.C_DestroyObject(s, key);
      return out;
    });
    const cipher = createCipheriv('aes-256-gcm', value, iv);
    cipher.setAAD(aad);
    const expected = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    expect(sealed.equals(expected)).toBe(true);
  });

  it('generates the KEK inside the token: AES-256, sensitive, never extractable, a token object labelled with its kid', async () => {
    const backend = await Pkcs11KekBackend.create(session, now);
    const kid = backend.activeKid();
    expect(kid).toMatch(/^kek-20261201t100000z-[0-9a-f]{8}$/);
    const [key] = findKeys(kid);
    expect(key).toBeDefined();
    const lib = session.lib;
    const attributes = session.run((p11, s) =>
      p11.C_GetAttributeValue(s, key as Handle, [{ type: lib.CKA_SENSITIVE }, { type: lib.CKA_EXTRACTABLE }, { type: lib.CKA_TOKEN }, { type: lib.CKA_LOCAL }, { type: lib.CKA_LABEL }]),
    );
    const [sensitive, extractable, token, local, label] = attributes.map((attribute) => attribute.value as Buffer);
    expect([sensitive?.[0], extractable?.[0], token?.[0], local?.[0]]).toEqual([1, 0, 1, 1]);
    expect(label?.toString()).toBe(kid);
  });

  it('cannot be extracted: reading CKA_VALUE and wrapping the KEK with another key both fail', async () => {
    const backend = await Pkcs11KekBackend.create(session, now);
    const [kek] = findKeys(backend.activeKid());
    const lib = session.lib;
    expect(cryptokiCode(() => session.run((p11, s) => p11.C_GetAttributeValue(s, kek as Handle, [{ type: lib.CKA_VALUE }])))).toBe(0x11); // CKR_ATTRIBUTE_SENSITIVE
    const code = cryptokiCode(() =>
      session.run((p11, s) => {
        const wrapping = p11.C_GenerateKey(s, { mechanism: lib.CKM_AES_KEY_GEN }, [
          { type: lib.CKA_CLASS, value: lib.CKO_SECRET_KEY },
          { type: lib.CKA_KEY_TYPE, value: lib.CKK_AES },
          { type: lib.CKA_VALUE_LEN, value: 32 },
          { type: lib.CKA_TOKEN, value: false },
          { type: lib.CKA_WRAP, value: true },
        ]);
        try {
          return p11.C_WrapKey(s, { mechanism: lib.CKM_AES_KEY_WRAP_PAD }, wrapping, kek as Handle, Buffer.alloc(256));
        } finally {
          p11.C_DestroyObject(s, wrapping);
        }
      }),
    );
    expect(code).toBe(0x6a); // CKR_KEY_UNEXTRACTABLE
    // Nor can anyone flip it to extractable or not sensitive afterwards.
    expect(() => session.run((p11, s) => p11.C_SetAttributeValue(s, kek as Handle, [{ type: lib.CKA_EXTRACTABLE, value: true }]))).toThrow();
    expect(() => session.run((p11, s) => p11.C_SetAttributeValue(s, kek as Handle, [{ type: lib.CKA_SENSITIVE, value: false }]))).toThrow();
    const flags = session.run((p11, s) => p11.C_GetAttributeValue(s, kek as Handle, [{ type: lib.CKA_EXTRACTABLE }, { type: lib.CKA_SENSITIVE }]));
    expect(flags.map((attribute) => (attribute.value as Buffer)[0])).toEqual([0, 1]);
  });

  it('wraps and unwraps data keys in the token, as a dir/A256GCM JWE naming kid, binding and data key id', async () => {
    const backend = await Pkcs11KekBackend.create(session, now);
    const dataKey = generateDataKey();
    const wrapped = await backend.wrapDataKey(dataKey, ledger);
    const parts = wrapped.split('.');
    expect(parts).toHaveLength(5);
    expect(parts[1]).toBe('');
    expect(JSON.parse(Buffer.from(parts[0] ?? '', 'base64url').toString())).toEqual({
      alg: 'dir',
      enc: 'A256GCM',
      typ: 'lockstep.dek.v1',
      kid: backend.activeKid(),
      'lockstep.dev/bind': { ns: 'payments', name: 'ledger' },
      crit: ['lockstep.dev/bind'],
      'lockstep.dev/dek': dataKey.id,
    });
    expect(wrapped).not.toContain(dataKey.key.export().toString('base64url'));
    const opened = await backend.unwrapDataKey(wrapped, ledger);
    expect(opened.id).toBe(dataKey.id);
    expect(opened.key.equals(dataKey.key)).toBe(true);
    // Random IVs: the same data key wraps differently each time.
    expect(await backend.wrapDataKey(dataKey, ledger)).not.toBe(wrapped);
  });

  it('refuses a wrapped key presented for another service, or edited anywhere', async () => {
    const backend = await Pkcs11KekBackend.create(session, now);
    const wrapped = await backend.wrapDataKey(generateDataKey(), ledger);
    const reason = async (text: string, binding = ledger) => {
      try {
        await backend.unwrapDataKey(text, binding);
      } catch (error) {
        expect(error).toBeInstanceOf(DecryptError);
        return (error as DecryptError).reason;
      }
      return 'opened';
    };
    expect(await reason(wrapped, other)).toBe('WrongBinding');
    const [header, empty, iv, ciphertext, tag] = wrapped.split('.') as [string, string, string, string, string];
    // The header says another service: the token refuses it (the header is the GCM additional data).
    const moved = JSON.parse(Buffer.from(header, 'base64url').toString()) as Record<string, unknown>;
    moved['lockstep.dev/bind'] = { ns: 'payments', name: 'cart' };
    const movedHeader = Buffer.from(JSON.stringify(moved)).toString('base64url');
    expect(await reason([movedHeader, empty, iv, ciphertext, tag].join('.'), other)).toBe('Tampered');
    const flip = (part: string) => {
      const bytes = Buffer.from(part, 'base64url');
      bytes[0] = (bytes[0] ?? 0) ^ 1;
      return bytes.toString('base64url');
    };
    expect(await reason([header, empty, iv, flip(ciphertext), tag].join('.'))).toBe('Tampered');
    expect(await reason([header, empty, iv, ciphertext, flip(tag)].join('.'))).toBe('Tampered');
    expect(await reason([header, empty, flip(iv), ciphertext, tag].join('.'))).toBe('Tampered');
    // A Secret-backend JWE is not this backend's.
    const secretBackend = new SecretKekBackend(await createKeySet('kek', 'A256KW', { now }));
    expect(await reason(await secretBackend.wrapDataKey(generateDataKey(), ledger))).toBe('WrongAlgorithm');
    // After all those failures, the session still works.
    expect((await backend.unwrapDataKey(wrapped, ledger)).id).toMatch(/^dek-/);
  });

  it('rotates: a new active kid wraps, the old kid stays decrypt-only and still unwraps, retirement destroys it', async () => {
    const backend = await Pkcs11KekBackend.create(session, now);
    const first = backend.activeKid();
    const dataKey = generateDataKey();
    const before = await backend.wrapDataKey(dataKey, ledger);
    const rotation = await backend.rotate({ retention: 0, usage: { [first]: 1 }, now: later(60) });
    expect(rotation).toEqual({ activated: backend.activeKid(), deactivated: first, retired: [] });
    expect(backend.activeKid()).not.toBe(first);
    expect(backend.liveKids()).toEqual([backend.activeKid(), first]);
    expect(backend.index.keys[1]).toMatchObject({ kid: first, state: 'decrypt-only', deactivatedAt: later(60).toISOString() });
    expect((await backend.unwrapDataKey(before, ledger)).key.equals(dataKey.key)).toBe(true);
    const after = await backend.wrapDataKey(dataKey, ledger);
    expect(JSON.parse(Buffer.from(after.split('.')[0] ?? '', 'base64url').toString()).kid).toBe(backend.activeKid());
    expect(findKeys(first)).toHaveLength(1);

    // A kid nobody counted is kept; counted as unused, it is retired and leaves the token.
    expect(await backend.retire({ retention: 0, usage: {}, now: later(120) })).toEqual([]);
    expect(findKeys(first)).toHaveLength(1);
    expect(await backend.retire({ retention: 0, usage: { [first]: 0 }, now: later(120) })).toEqual([first]);
    expect(findKeys(first)).toHaveLength(0);
    expect(backend.index.retired[0]).toMatchObject({ kid: first, state: 'retired' });
    await expect(backend.unwrapDataKey(before, ledger)).rejects.toMatchObject({ reason: 'RetiredKey' });
    expect((await backend.unwrapDataKey(after, ledger)).key.equals(dataKey.key)).toBe(true);
  });

  it('reopens from the stored index: keys are found in the token, never remade; a missing kid is KeyMissing', async () => {
    const backend = await Pkcs11KekBackend.create(session, now);
    await backend.rotate({ retention: 1, usage: {}, now: later(5) });
    const wrapped = await backend.wrapDataKey(generateDataKey(), ledger);
    const stored = serializeKekIndex(backend.index);
    const count = findKeys().length;

    const reopened = await Pkcs11KekBackend.open(session, parseKekIndex(stored));
    expect(reopened.activeKid()).toBe(backend.activeKid());
    expect((await reopened.unwrapDataKey(wrapped, ledger)).id).toMatch(/^dek-/);
    expect(findKeys().length).toBe(count);

    // A rotation whose index was never stored leaves a key the stored index does not know:
    // reported as an orphan, not deleted.
    const lost = await Pkcs11KekBackend.open(session, parseKekIndex(stored));
    const { activated } = await lost.rotate({ retention: 5, usage: {}, now: later(10) });
    const fromStored = await Pkcs11KekBackend.open(session, parseKekIndex(stored));
    expect(fromStored.orphanKids()).toContain(activated);
    expect(fromStored.orphanKids()).not.toContain(backend.activeKid());
    expect(findKeys(activated)).toHaveLength(1);

    const gone = JSON.parse(stored) as { keys: { kid: string }[] };
    (gone.keys[0] as { kid: string }).kid = 'kek-20261201t000000z-00000000';
    await expect(Pkcs11KekBackend.open(session, parseKekIndex(JSON.stringify(gone)))).rejects.toMatchObject({ name: 'KeyStoreError', reason: 'KeyMissing' });
    expect(findKeys().length).toBe(count + 1);
  });

  it('refuses a key that was imported under a kid\'s label instead of generated in the token', async () => {
    const kid = 'kek-20261201t090000z-0badc0de';
    const lib = session.lib;
    session.run((p11, s) =>
      p11.C_CreateObject(s, [
        { type: lib.CKA_CLASS, value: lib.CKO_SECRET_KEY },
        { type: lib.CKA_KEY_TYPE, value: lib.CKK_AES },
        { type: lib.CKA_TOKEN, value: true },
        { type: lib.CKA_PRIVATE, value: true },
        { type: lib.CKA_SENSITIVE, value: true },
        { type: lib.CKA_EXTRACTABLE, value: false },
        { type: lib.CKA_ENCRYPT, value: true },
        { type: lib.CKA_DECRYPT, value: true },
        { type: lib.CKA_LABEL, value: kid },
        // The impostor copies the id too (label and id are what the backend looks keys up by).
        { type: lib.CKA_ID, value: Buffer.from(kid, 'utf8') },
        { type: lib.CKA_VALUE, value: randomBytes(32) },
      ]),
    );
    const index = { keys: [{ kid, state: 'active' as const, createdAt: now.toISOString(), activatedAt: now.toISOString() }], retired: [] };
    // Its value was known outside the token (CKA_LOCAL false, never-extractable false): refused.
    await expect(Pkcs11KekBackend.open(session, index)).rejects.toMatchObject({ name: 'KeyStoreError', reason: 'Misconfigured' });
  });

  it('turns a lost session into a retryable KeyStoreError, then recovers with the same keys', async () => {
    const backend = await Pkcs11KekBackend.create(session, now);
    const dataKey = generateDataKey();
    const wrapped = await backend.wrapDataKey(dataKey, ledger);
    const kid = backend.activeKid();
    const count = findKeys().length;
    // Another user of the module closes every session on the slot (as a token reset or an HSM
    // failover does).
    const lib = await loadPkcs11js();
    const other = new lib.PKCS11();
    other.load(modulePath as string);
    expect(cryptokiCode(() => other.C_Initialize())).toBe(CKR.CRYPTOKI_ALREADY_INITIALIZED);
    other.C_CloseAllSessions(session.slot);

    const lost = await backend.unwrapDataKey(wrapped, ledger).catch((error: unknown) => error);
    expect(lost).toBeInstanceOf(KeyStoreError);
    expect(lost).toMatchObject({ reason: 'Unavailable', retryable: true, code: 'CKR_SESSION_HANDLE_INVALID' });
    expect(JSON.stringify(lost)).not.toContain(pin);

    // The next call opens a new session and logs in again: same kid, same key, nothing generated.
    expect((await backend.unwrapDataKey(wrapped, ledger)).key.equals(dataKey.key)).toBe(true);
    other.C_CloseAllSessions(session.slot);
    await expect(backend.wrapDataKey(dataKey, ledger)).rejects.toMatchObject({ reason: 'Unavailable' });
    expect(typeof (await backend.wrapDataKey(dataKey, ledger))).toBe('string');
    expect(backend.activeKid()).toBe(kid);
    expect(findKeys().length).toBe(count);
  });

  it('serves the key-set code through a material-free view: datakey.ts wraps in the token, the Secret gets the index, store tags come from the token', async () => {
    const backend = await Pkcs11KekBackend.create(session, now);
    const kid = backend.activeKid();
    const view = kekView(backend, (k) => backend.macSecret(k));
    const dataKey = generateDataKey();
    const wrapped = await wrapDataKey(view, dataKey, ledger);
    expect(inspectWrappedDataKey(wrapped)).toMatchObject({ kid, dataKeyId: dataKey.id });
    expect((await unwrapDataKey(view, wrapped, ledger)).key.equals(dataKey.key)).toBe(true);
    await expect(unwrapDataKey(view, wrapped, other)).rejects.toMatchObject({ reason: 'WrongBinding' });
    // Retention counts it (an uncounted kid could be retired while data is under it).
    expect(countByKid([wrapped], view)).toEqual({ byKid: { [kid]: 1 }, unreadable: 0 });
    // No material in the view, and nothing may use a view key as a JWK.
    expect(view.keys.every((key) => (key as unknown as Record<string, unknown>)['k'] === undefined)).toBe(true);
    expect(() => keyMaterial(view.keys[0]!)).toThrow(/held in an HSM/);
    const data = keySecretData({ kek: view, seal: await createKeySet('seal', 'ECDH-ES+A256KW', { now }) });
    expect(Object.keys(data).sort()).toEqual(['kek-index.json', 'seal.json']);
    expect(parseKekIndex(Buffer.from(data['kek-index.json'] ?? '', 'base64').toString('utf8'))).toEqual(backend.index);
    // Store tags: the same for every view of the key (the token's PRF is deterministic), bound to the data.
    const input = { namespace: 'payments', store: 'ledger-envelope', service: 'ledger', policy: { namespace: 'payments', name: 'vault' }, data: { 'dek.jwe': 'YQ' } };
    const tag = storeTag(view.keys[0]!, input);
    const reopened = await Pkcs11KekBackend.open(session, parseKekIndex(serializeKekIndex(backend.index)));
    expect(storeTagMatches(kekView(reopened, (k) => reopened.macSecret(k)).keys[0]!, input, tag)).toBe(true);
    expect(storeTagMatches(view.keys[0]!, { ...input, data: { 'dek.jwe': 'Yg' } }, tag)).toBe(false);
  });

  it('a fork changes the index but destroys nothing until destroyPending: a crash in between leaves a key, never an index naming a destroyed one', async () => {
    const backend = await Pkcs11KekBackend.create(session, now);
    const first = backend.activeKid();
    const fork = backend.fork();
    await fork.rotate({ now: later(60), retention: 1, retireAfterMs: 0, usage: {} });
    const second = fork.fork();
    const rotation = await second.rotate({ now: later(120), retention: 1, retireAfterMs: 0, usage: { [first]: 0 } });
    expect(rotation.retired).toEqual([first]);
    expect(second.index.retired.map((r) => r.kid)).toEqual([first]);
    expect(findKeys(first)).toHaveLength(1);
    expect(second.pendingDestruction()).toEqual([first]);
    // The backend the stored index came from is untouched.
    expect(backend.liveKids()).toEqual([first]);
    expect(second.destroyPending()).toEqual([first]);
    expect(findKeys(first)).toHaveLength(0);
    // Reopened from an index that retired a kid still in the token: destroyed on the next retire.
    const third = await Pkcs11KekBackend.create(session, later(180));
    const fourth = third.fork();
    await fourth.rotate({ now: later(240), retention: 1, retireAfterMs: 0, usage: {} });
    const fifth = fourth.fork();
    const retired = (await fifth.rotate({ now: later(300), retention: 1, retireAfterMs: 0, usage: { [third.activeKid()]: 0 } })).retired;
    const crashed = await Pkcs11KekBackend.open(session, fifth.index);
    expect(crashed.pendingDestruction()).toEqual(retired);
    await crashed.retire({ now: later(301), retention: 1, retireAfterMs: 0, usage: {} });
    expect(findKeys(retired[0])).toHaveLength(0);
  });

  it('finds a policy\'s keys only under its owner: another policy naming the kid in its index gets KeyMissing and destroys nothing', async () => {
    const mine = await Pkcs11KekBackend.create(session, later(400), 'payments/vault');
    const kid = mine.activeKid();
    const index = parseKekIndex(serializeKekIndex(mine.index));
    expect((await Pkcs11KekBackend.open(session, index, 'payments/vault')).activeKid()).toBe(kid);
    await expect(Pkcs11KekBackend.open(session, index, 'tenant/vault')).rejects.toMatchObject({ reason: 'KeyMissing' });
    await expect(Pkcs11KekBackend.open(session, index)).rejects.toMatchObject({ reason: 'KeyMissing' });
    // A foreign index that lists the kid as old and decrypt-only, so retention would retire it.
    const other = await Pkcs11KekBackend.create(session, later(401), 'tenant/vault');
    const forged = { keys: [...other.index.keys, { kid, state: 'decrypt-only' as const, createdAt: later(0).toISOString(), activatedAt: later(0).toISOString(), deactivatedAt: later(1).toISOString() }], retired: [] };
    await expect(Pkcs11KekBackend.open(session, forged, 'tenant/vault')).rejects.toMatchObject({ reason: 'KeyMissing' });
    expect(findKeys(kid)).toHaveLength(1);
  });

  // Last: it logs the application out, which every session shares.
  it('reports a refused PIN as Misconfigured without the PIN anywhere, and the right PIN logs in again', async () => {
    const backend = await Pkcs11KekBackend.create(session, now);
    const wrapped = await backend.wrapDataKey(generateDataKey(), ledger);
    session.run((p11, s) => p11.C_Logout(s));
    const wrong = `${pin}x`;
    const error = await Pkcs11Session.open({ ...config, pin: new Pin(wrong) }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ name: 'KeyStoreError', reason: 'Misconfigured', code: 'CKR_PIN_INCORRECT' });
    const shown = [String(error), JSON.stringify(error), inspect(error), inspect({ ...config, pin: new Pin(wrong) }), JSON.stringify(config)].join('\n');
    expect(shown).not.toContain(wrong);
    expect(shown).not.toContain(pin);
    await expect(Pkcs11Session.open({ ...config, tokenLabel: 'no-such-token' })).rejects.toMatchObject({ reason: 'Unavailable' });
    await expect(Pkcs11Session.open({ ...config, modulePath: '/nonexistent/libpkcs11.so' })).rejects.toMatchObject({ reason: 'Misconfigured' });
    // The logged-out session reads as lost (CKR_USER_NOT_LOGGED_IN) once, then logs in again.
    await expect(backend.unwrapDataKey(wrapped, ledger)).rejects.toMatchObject({ reason: 'Unavailable' });
    expect((await backend.unwrapDataKey(wrapped, ledger)).id).toMatch(/^dek-/);
  });
});
