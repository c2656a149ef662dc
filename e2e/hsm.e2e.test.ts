// KEKs in an HSM (KeyPolicy spec.keyStore PKCS11) on the real API server and cert-manager, with a
// real SoftHSM2 token in a temporary directory — the in-process operator loads the same module.
// Checked: the token holds every KEK and no Secret does (the key Secret holds the kid index);
// an EncryptedService's envelope secret is materialised with a data key the token wrapped; an
// on-demand rotation makes the new KEK in the token, re-wraps every data key, retires the old kid
// per retention (destroyed in the token) and the audit chain verifies; a token that goes away or
// refuses the PIN is a condition with nothing regenerated, and the policy recovers without a
// restart; a tenant's KeyPolicy may not use the HSM config without the administrator's grant.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import type { EncryptedService, KeyPolicy } from '../operator/api/v1alpha1/index.js';
import { inspectWrappedDataKey, unwrapDataKey } from '../operator/crypto/datakey.js';
import { decryptValue } from '../operator/crypto/envelope.js';
import { parseKekIndex } from '../operator/crypto/kek-index.js';
import { setProcessEnvironment } from '../operator/crypto/softhsm-test-token.js';
import { createKeySet } from '../operator/crypto/keyset.js';
import { Pin, type Pkcs11Config } from '../operator/crypto/pkcs11-config.js';
import { Pkcs11KekBackend } from '../operator/crypto/pkcs11-kek-backend.js';
import { Pkcs11Session, type Handle } from '../operator/crypto/pkcs11-session.js';
import { readEnvelopeStore } from '../operator/encryptedservice/envelope-store.js';
import { hsmKeySets, keySecretData } from '../operator/keypolicy/key-ring.js';
import { KEK_INDEX_KEY, KEK_SET_KEY, keyPolicyLabels } from '../operator/keypolicy/names.js';
import { runCli } from '../operator/cli/main.js';
import { OPERATOR_NAMESPACE, auditEntries } from './harness/audit.js';
import { capturedIo } from './harness/cli-io.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, condition, installCrds, waitForCondition, waitForSchedule } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';
import { createTenant, type Tenant } from './harness/tenant.js';

const c = clients();
const MODULE = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so'].find((p) => existsSync(p)) ?? '';
const LABEL = 'lockstep-e2e';
const POLICY = 'vault';
const SERVICE = 'ledger';
const CONFIG = `hsm-e2e-${randomBytes(3).toString('hex')}`;
const HOUR = 3_600_000;

let ns = '';
let tenantNs = '';
let tenant: Tenant;
let operator: RunningOperator;
let dir = '';
let pin = '';
let session: Pkcs11Session;
const token = `token-${randomBytes(12).toString('hex')}`;
/** The kids made before the operator started: oldest (retire at once), middle (retire at rotation), active. */
let kids: { oldest: string; middle: string; active: string };

const readSecret = (namespace: string, name: string) => c.core.readNamespacedSecret({ namespace, name });
const readPolicy = async (namespace = ns, name = POLICY) =>
  (await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies', namespace, name })) as KeyPolicy;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** KEK-labelled secret keys in the token, as the test sees them through its own session. */
function tokenKeys(label?: string): Handle[] {
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

/** The administrator's grant: the platform namespace may use the HSM (the tenant's only once added). */
const GRANT = 'lockstep.dev/hsm-allowed-namespaces';

function configSecret(overrides: Record<string, string> = {}, annotations: Record<string, string> = { [GRANT]: ns }): V1Secret {
  return {
    apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
    metadata: { name: CONFIG, namespace: OPERATOR_NAMESPACE, annotations },
    stringData: { module: MODULE, tokenLabel: LABEL, pin, ...overrides },
  };
}

const replaceConfig = async (overrides: Record<string, string> = {}, annotations: Record<string, string> = { [GRANT]: ns }) => {
  const live = await readSecret(OPERATOR_NAMESPACE, CONFIG);
  await c.core.replaceNamespacedSecret({
    namespace: OPERATOR_NAMESPACE, name: CONFIG,
    body: { ...configSecret(overrides, annotations), metadata: { ...configSecret(overrides, annotations).metadata, resourceVersion: live.metadata?.resourceVersion ?? '' } },
  });
};

/** A harmless annotation change: the KeyPolicy does not watch the HSM config Secret. */
async function poke(namespace = ns, name = POLICY): Promise<void> {
  await c.custom.patchNamespacedCustomObject(
    { group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies', namespace, name, body: [{ op: 'add', path: '/metadata/annotations', value: { 'e2e.lockstep.dev/poke': randomBytes(4).toString('hex') } }] },
  );
}

async function pokeService(): Promise<void> {
  await c.custom.patchNamespacedCustomObject(
    { group: 'lockstep.dev', version: 'v1alpha1', plural: 'encryptedservices', namespace: ns, name: SERVICE, body: [{ op: 'add', path: '/metadata/annotations', value: { 'e2e.lockstep.dev/poke': randomBytes(4).toString('hex') } }] },
  );
}

const hsmPolicy = (namespace: string): KeyPolicy => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: POLICY, namespace },
  spec: {
    keyWrap: { algorithm: 'A256KW' },
    keyStore: { type: 'PKCS11', pkcs11: { configSecretName: CONFIG } },
    rotation: { period: '1h', retireAfter: '1h', retainDecryptOnly: 1 },
  },
});

const storedIndex = async () => parseKekIndex(Buffer.from((await readSecret(ns, `${POLICY}-keys`)).data?.[KEK_INDEX_KEY] ?? '', 'base64').toString('utf8'));

beforeAll(async () => {
  if (!MODULE) throw new Error('SoftHSM2 is not installed (apt-get install -y softhsm2, or bash e2e/node/install-deps.sh)');
  installCrds();
  ns = await createTestNamespace(c, 'e2e-hsm');
  tenantNs = await createTestNamespace(c, 'e2e-hsm-tenant');
  tenant = await createTenant(c, tenantNs);

  dir = mkdtempSync(join(tmpdir(), 'lockstep-e2e-softhsm-'));
  mkdirSync(join(dir, 'tokens'));
  writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  await setProcessEnvironment('SOFTHSM2_CONF', join(dir, 'softhsm2.conf'));
  pin = randomBytes(8).toString('hex');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', LABEL, '--pin', pin, '--so-pin', randomBytes(8).toString('hex')], {
    env: { ...process.env, SOFTHSM2_CONF: join(dir, 'softhsm2.conf') }, stdio: 'ignore',
  });
  const config: Pkcs11Config = { modulePath: MODULE, tokenLabel: LABEL, pin: new Pin(pin) };
  session = await Pkcs11Session.open(config);

  // Keys an earlier operator made hours ago (retirement needs retireAfter, at least 1h, to have
  // passed): three KEKs in the token, their index and the sealing keys in the key Secret.
  const now = Date.now();
  const backend = await Pkcs11KekBackend.create(session, new Date(now - 3 * HOUR), `${ns}/${POLICY}`);
  const retention = { retention: 5, retireAfterMs: 0, usage: {} };
  await backend.rotate({ ...retention, now: new Date(now - 2.5 * HOUR) });
  await backend.rotate({ ...retention, now: new Date(now - 2 * HOUR) });
  const [active, middle, oldest] = backend.liveKids();
  kids = { active: active ?? '', middle: middle ?? '', oldest: oldest ?? '' };
  // The active KEK's period (1h) must not be over, or the operator rotates at once: it was
  // (re)activated ten minutes ago, while the decrypt-only ones date from hours ago.
  const recent = new Date(now - 10 * 60_000).toISOString();
  const index = { ...backend.index, keys: backend.index.keys.map((k) => (k.kid === active ? { ...k, activatedAt: recent } : k)) };
  const sets = await hsmKeySets(session, index, await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date(now - 3 * HOUR) }), `${ns}/${POLICY}`);
  await c.core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: `${POLICY}-keys`, labels: keyPolicyLabels(ns, POLICY, 'keys') }, type: 'Opaque', data: keySecretData(sets) },
  });
  await c.core.createNamespacedSecret({ namespace: OPERATOR_NAMESPACE, body: configSecret() });

  operator = startInProcess(c.kc);
  await applyAsUser(c, hsmPolicy(ns) as unknown as KubernetesObject);
  await c.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'app' } } });
  await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: `${SERVICE}-conf` }, stringData: { token } } });
  const es: EncryptedService = {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name: SERVICE, namespace: ns },
    spec: {
      workload: { selector: { matchLabels: { app: SERVICE } }, serviceAccountName: 'app' },
      ports: [{ name: 'https', port: 8443 }],
      keyPolicyRef: { name: POLICY },
      secrets: { envelope: [{ name: `${SERVICE}-conf`, keys: ['token'] }] },
    },
  };
  await applyAsUser(c, es as unknown as KubernetesObject);
}, 180_000);

afterAll(async () => {
  if (process.env.LOCKSTEP_E2E_LOGS) writeFileSync(process.env.LOCKSTEP_E2E_LOGS, operator.logs());
  await deleteTestNamespace(c, tenantNs);
  await deleteTestNamespace(c, ns);
  await operator?.stop();
  await c.core.deleteNamespacedSecret({ namespace: OPERATOR_NAMESPACE, name: CONFIG }).catch(() => undefined);
  session?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The data key in the envelope store, unwrapped by the test through the token, opens the stored value. */
async function expectStoreOpens(kid: string): Promise<void> {
  const store = readEnvelopeStore(await readSecret(ns, `${SERVICE}-envelope`));
  const wrapped = store.wrappedDataKey ?? '';
  expect(inspectWrappedDataKey(wrapped).kid).toBe(kid);
  expect(JSON.parse(Buffer.from(wrapped.split('.')[0] ?? '', 'base64url').toString('utf8')).alg).toBe('dir');
  const sets = await hsmKeySets(session, await storedIndex(), await createKeySet('seal', 'ECDH-ES+A256KW', { now: new Date() }), `${ns}/${POLICY}`);
  const dataKey = await unwrapDataKey(sets.kek, wrapped, { namespace: ns, name: SERVICE });
  const envelope = store.envelopes[`${SERVICE}-conf`]?.['token'] ?? '';
  expect(decryptValue(dataKey, envelope, { namespace: ns, name: `${SERVICE}-conf`, key: 'token' }).toString('utf8')).toBe(token);
  expect(Buffer.from((await readSecret(ns, `${SERVICE}-conf`)).data?.['token'] ?? '', 'base64').toString('utf8')).toBe(token);
}

describe('a KeyPolicy with keyStore PKCS11', () => {
  it('keeps its KEKs in the token only, retires the oldest per retention, and envelope secrets open through the token', async () => {
    const kp = await eventually('KeyPolicy Ready, oldest KEK retired', async () => {
      const p = await readPolicy();
      const retired = p.status?.keys?.find((k) => k.kid === kids.oldest)?.state === 'retired';
      return condition(p, 'Ready')?.status === 'True' && retired ? p : undefined;
    }, 90_000);
    expect(kp.status?.keyStore).toBe('PKCS11');
    expect(kp.status?.activeKid).toBe(kids.active);
    expect(kp.status?.keys?.filter((k) => k.kid.startsWith('kek-')).map((k) => k.algorithm)).toEqual(['A256GCM-PKCS11', 'A256GCM-PKCS11', 'A256GCM-PKCS11']);
    // Retired in the index, then destroyed in the token; the live ones are there.
    await eventually('oldest KEK destroyed in the token', async () => (tokenKeys(kids.oldest).length === 0 ? true : undefined), 30_000);
    expect(tokenKeys(kids.active)).toHaveLength(1);
    expect(tokenKeys(kids.middle)).toHaveLength(1);

    await waitForCondition(c, ns, SERVICE, 'SecretsReady', 'True', 'SecretsEncrypted', 90_000);
    await expectStoreOpens(kids.active);

    // No Secret in the namespace holds a KEK: the key Secret has the index, never a JWKS with `k`.
    const keySecret = await readSecret(ns, `${POLICY}-keys`);
    expect(keySecret.data?.[KEK_SET_KEY]).toBeUndefined();
    expect(Object.keys(keySecret.data ?? {}).sort()).toEqual([KEK_INDEX_KEY, 'seal.json']);
    for (const secret of (await c.core.listNamespacedSecret({ namespace: ns })).items) {
      for (const [key, value] of Object.entries(secret.data ?? {})) {
        const text = Buffer.from(value, 'base64').toString('utf8');
        expect(`${secret.metadata?.name}/${key}: ${/"kty"\s*:\s*"oct"/.test(text) ? 'symmetric JWK' : 'none'}`).toBe(`${secret.metadata?.name}/${key}: none`);
      }
    }
    // And the token's KEK is not extractable: asking for its value fails in the module.
    const [handle] = tokenKeys(kids.active);
    expect(() => session.run((p11, s) => p11.C_GetAttributeValue(s, handle as Handle, [{ type: session.lib.CKA_VALUE }]))).toThrow(/CKR_ATTRIBUTE_SENSITIVE|ATTRIBUTE_SENSITIVE/);
  }, 180_000);

  it('rotates in the token on demand: data keys re-wrapped, the middle kid retired and destroyed, audit chain verifies', async () => {
    await c.custom.patchNamespacedCustomObject({
      group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies', namespace: ns, name: POLICY,
      body: [{ op: 'add', path: '/metadata/annotations', value: { 'lockstep.dev/rotate-now': 'hsm-1' } }],
    });
    const kp = await eventually('new active KEK, every data key under it', async () => {
      const p = await readPolicy();
      if (!p.status?.activeKid || p.status.activeKid === kids.active || condition(p, 'Rotating')?.status !== 'False') return undefined;
      const store = await readSecret(ns, `${SERVICE}-envelope`);
      return store.metadata?.annotations?.['lockstep.dev/kid'] === p.status.activeKid ? p : undefined;
    }, 120_000);
    const fresh = kp.status?.activeKid ?? '';
    expect(tokenKeys(fresh)).toHaveLength(1);
    await expectStoreOpens(fresh);
    // Retention 1: the previous active kid stays decrypt-only; the middle one (2h decrypt-only, unused) goes.
    const state = (p: KeyPolicy, kid: string) => p.status?.keys?.find((k) => k.kid === kid)?.state;
    const after = await eventually('middle KEK retired', async () => {
      const p = await readPolicy();
      return state(p, kids.middle) === 'retired' ? p : undefined;
    }, 60_000);
    expect(state(after, kids.active)).toBe('decrypt-only');
    await eventually('middle KEK destroyed in the token', async () => (tokenKeys(kids.middle).length === 0 ? true : undefined), 30_000);
    expect(tokenKeys(kids.active)).toHaveLength(1);

    const entries = await auditEntries(c, ns, POLICY);
    expect(entries.some((e) => e.type === 'rotate' && e.subject.kid === fresh)).toBe(true);
    expect(entries.some((e) => e.type === 'retire' && e.subject.kid === kids.middle)).toBe(true);
    expect(entries.some((e) => e.type === 'retire' && e.subject.kid === kids.oldest)).toBe(true);
    const io = capturedIo(c.kc);
    const code = await runCli(['audit', 'verify', '--namespace', ns, '--policy', POLICY, '--operator-namespace', OPERATOR_NAMESPACE], io);
    expect(`${code} ${io.stdout()}${io.stderr()}`).toMatch(/^0 /);
    kids = { ...kids, active: fresh };
  }, 240_000);

  it('a token that goes away, then a refused PIN, are conditions with nothing regenerated; it recovers without a restart', async () => {
    const indexBefore = JSON.stringify(await storedIndex());
    const tokenBefore = tokenKeys().length;
    const storeBefore = (await readSecret(ns, `${SERVICE}-envelope`)).data;

    for (const [overrides, reason] of [[{ tokenLabel: 'not-plugged-in' }, 'KeyStoreUnavailable'], [{ pin: 'wrong-pin-0000' }, 'KeyStoreMisconfigured']] as const) {
      await replaceConfig(overrides);
      // Login is per process and token: the test's own session would let a wrong PIN pass as
      // "already logged in". Logging out ends it for every session, the operator's included.
      if ('pin' in overrides) session.run((p11, s) => p11.C_Logout(s));
      await poke();
      const p = await eventually(`KeysReady=False ${reason}`, async () => {
        const kp = await readPolicy();
        return condition(kp, 'KeysReady')?.reason === reason ? kp : undefined;
      }, 60_000);
      expect(condition(p, 'KeysReady')?.status).toBe('False');
      expect(condition(p, 'KeysReady')?.message).not.toContain(pin);
      expect(condition(p, 'KeysReady')?.message).not.toContain('wrong-pin-0000');
      // A service reconciled meanwhile says so and writes nothing.
      await pokeService();
      await waitForCondition(c, ns, SERVICE, 'SecretsReady', 'False', 'KeyPolicyNotReady', 60_000);
      // Several retries later: no key made in place of the unreachable one, nothing rewritten.
      await sleep(3_000);
      expect(JSON.stringify(await storedIndex())).toBe(indexBefore);
      expect((await readSecret(ns, `${SERVICE}-envelope`)).data).toEqual(storeBefore);

      await replaceConfig();
      await eventually('KeysReady again, same operator', async () => {
        const kp = await readPolicy();
        return condition(kp, 'KeysReady')?.status === 'True' && condition(kp, 'Ready')?.status === 'True' ? kp : undefined;
      }, 90_000);
      expect((await readPolicy()).status?.activeKid).toBe(kids.active);
      await pokeService();
      await waitForCondition(c, ns, SERVICE, 'SecretsReady', 'True', 'SecretsEncrypted', 60_000);
    }
    expect(JSON.stringify(await storedIndex())).toBe(indexBefore);
    expect(tokenKeys()).toHaveLength(tokenBefore);
    expect(operator.logs()).not.toContain(pin);
  }, 300_000);
});

describe('a RotationSchedule over an HSM-backed policy', () => {
  it('rotates the KEK in the token, re-wraps the data key and its verification step opens everything through the token', async () => {
    const before = (await readPolicy()).status?.activeKid ?? '';
    const tokenBefore = tokenKeys().length;
    await applyAsUser(c, {
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule',
      metadata: { name: 'keys', namespace: ns, annotations: { 'lockstep.dev/rotate-now': 'hsm-schedule-1' } },
      spec: {
        targets: { names: [SERVICE] }, rotate: ['keyEncryptionKeys', 'dataKeys'],
        strategy: { canarySteps: [100], pauseBetweenSteps: '0s', verification: { timeout: '60s' } },
      },
    } as unknown as KubernetesObject);
    const rs = await waitForSchedule(c, ns, 'keys', 'Completed', (s) => ['Completed', 'RolledBack', 'Failed'].includes(s.status?.phase ?? ''), 180_000);
    expect(`${rs.status?.phase} ${JSON.stringify(rs.status?.conditions ?? [])}`).toMatch(/^Completed /);
    const after = (await readPolicy()).status?.activeKid ?? '';
    expect(after).not.toBe(before);
    expect(rs.status?.targets?.map((t) => [t.name, t.phase, t.previousRevision, t.newRevision])).toEqual([[SERVICE, 'Succeeded', before, after]]);
    expect(tokenKeys(after)).toHaveLength(1);
    // One new KEK in the token (retention may destroy an old one in the same step).
    expect(tokenKeys().length).toBeLessThanOrEqual(tokenBefore + 1);
    await eventually('data key under the new KEK', async () =>
      ((await readSecret(ns, `${SERVICE}-envelope`)).metadata?.annotations?.['lockstep.dev/kid'] === after ? true : undefined), 60_000);
    await expectStoreOpens(after);
    kids = { ...kids, active: after };
  }, 240_000);
});

describe('a key in the token that the index does not name', () => {
  it('is reported (Degraded, OrphanKeysInToken), never used or deleted; the report clears once a person removes it', async () => {
    const indexBefore = JSON.stringify(await storedIndex());
    // What a crash between making a key and storing the index leaves behind.
    const orphan = (await Pkcs11KekBackend.create(session, new Date(), `${ns}/${POLICY}`)).activeKid();
    await poke();
    const p = await eventually('OrphanKeysInToken', async () => {
      const kp = await readPolicy();
      return condition(kp, 'Degraded')?.reason === 'OrphanKeysInToken' ? kp : undefined;
    }, 60_000);
    expect(condition(p, 'Degraded')?.message).toContain(orphan);
    expect(condition(p, 'Ready')?.status).toBe('True');
    expect(p.status?.activeKid).toBe(kids.active);
    expect(JSON.stringify(await storedIndex())).toBe(indexBefore);
    expect(tokenKeys(orphan)).toHaveLength(1);
    const [handle] = tokenKeys(orphan);
    session.run((p11, s) => p11.C_DestroyObject(s, handle as Handle));
    await poke();
    await eventually('Degraded cleared', async () => (condition(await readPolicy(), 'Degraded')?.status === 'False' ? true : undefined), 60_000);
  }, 120_000);
});

describe('backup and drill of an HSM-backed policy', () => {
  it('the backup carries the index and says the KEKs are not in it; the drill reports the data keys as not openable from it', async () => {
    const cli = async (args: string[]) => {
      const io = capturedIo(c.kc, '', 'disk');
      const code = await runCli(args, io);
      return { code, out: io.stdout(), err: io.stderr() };
    };
    const [privateKey, publicKey, backup] = ['recovery.jwk', 'recovery.pub.jwk', 'backup.json'].map((f) => join(dir, f)) as [string, string, string];
    expect((await cli(['recovery-key', '--private-out', privateKey, '--public-out', publicKey, '--algorithm', 'ECDH-ES+A256KW'])).code).toBe(0);
    const made = await cli(['backup', '--recovery-public-key', publicKey, '--out', backup, '-n', ns]);
    expect(made.err).toBe('');
    expect(made.code).toBe(0);
    expect(made.out).toContain(`${ns}/${POLICY}`);
    expect(made.out).toContain('KEKs in an HSM: only their kid index and the sealing keys are in this backup');
    expect(made.out).not.toContain(kids.active);
    const drill = await cli(['drill', '--backup', backup, '--recovery-key', privateKey, '-n', ns]);
    expect(drill.code).toBe(1);
    expect(drill.err).toContain('KeysInHsm');
    expect(drill.err).toContain(`${ns}/${SERVICE}-envelope`);
    const coverage = await cli(['drill', '--backup', backup, '-n', ns]);
    expect(coverage.code).toBe(1);
  }, 120_000);
});

describe('the tenant boundary', () => {
  it('a tenant KeyPolicy gets no key from the HSM without the administrator\'s grant, and the tenant cannot read the config', async () => {
    const tokenBefore = tokenKeys().length;
    const applied = tenant.apply(hsmPolicy(tenantNs) as unknown as KubernetesObject);
    expect(applied.stderr).toBe('');
    const p = await eventually('KeyStoreNotAllowed', async () => {
      const kp = await readPolicy(tenantNs);
      return condition(kp, 'KeysReady')?.reason === 'KeyStoreNotAllowed' ? kp : undefined;
    }, 60_000);
    expect(condition(p, 'KeysReady')?.status).toBe('False');
    expect(condition(p, 'KeysReady')?.message).toContain('lockstep.dev/hsm-allowed-namespaces');
    expect(tokenKeys()).toHaveLength(tokenBefore);
    await expect(readSecret(tenantNs, `${POLICY}-keys`)).rejects.toThrow();
    const read = tenant.kubectl(['get', 'secret', CONFIG, '-n', OPERATOR_NAMESPACE, '-o', 'yaml']);
    expect(read.status).not.toBe(0);
    expect(read.stderr).toContain('forbidden');
    // Nor can the tenant grant itself.
    const grantSelf = tenant.kubectl(['annotate', 'secret', CONFIG, '-n', OPERATOR_NAMESPACE, `lockstep.dev/hsm-allowed-namespaces=${tenantNs}`]);
    expect(grantSelf.status).not.toBe(0);

    // The administrator grants the namespace: the policy gets its first KEK in the token.
    await replaceConfig({}, { [GRANT]: `${ns},${tenantNs}` });
    await poke(tenantNs);
    const ready = await eventually('tenant policy Ready after the grant', async () => {
      const kp = await readPolicy(tenantNs);
      return condition(kp, 'Ready')?.status === 'True' ? kp : undefined;
    }, 90_000);
    expect(ready.status?.keyStore).toBe('PKCS11');
    expect(tokenKeys(ready.status?.activeKid ?? 'none')).toHaveLength(1);
    expect((await readSecret(tenantNs, `${POLICY}-keys`)).data?.[KEK_SET_KEY]).toBeUndefined();

    // The kid index is in the tenant's own Secret: naming the platform's kids there (old and
    // decrypt-only, so retention would destroy one) must find nothing in the shared token.
    const platform = (await readPolicy()).status?.keys?.filter((k) => k.kid.startsWith('kek-') && k.state !== 'retired').map((k) => k.kid) ?? [];
    expect(platform.length).toBeGreaterThanOrEqual(2);
    const own = parseKekIndex(Buffer.from((await readSecret(tenantNs, `${POLICY}-keys`)).data?.[KEK_INDEX_KEY] ?? '', 'base64').toString('utf8'));
    const old = (hours: number) => new Date(Date.now() - hours * HOUR).toISOString();
    const forged = {
      keys: [...own.keys, ...platform.map((kid, i) => ({ kid, state: 'decrypt-only', createdAt: old(10 + i), activatedAt: old(10 + i), deactivatedAt: old(5 + i) }))],
      retired: own.retired,
    };
    const patched = tenant.kubectl(['patch', 'secret', `${POLICY}-keys`, '-n', tenantNs, '--type', 'merge', '-p', JSON.stringify({ data: { [KEK_INDEX_KEY]: Buffer.from(JSON.stringify(forged)).toString('base64') } })]);
    expect(patched.stderr).toBe('');
    await poke(tenantNs);
    const refused = await eventually('tenant policy: KeyMissing', async () => {
      const kp = await readPolicy(tenantNs);
      return condition(kp, 'KeysReady')?.reason === 'KeyMissing' ? kp : undefined;
    }, 60_000);
    expect(condition(refused, 'KeysReady')?.status).toBe('False');
    await sleep(3_000);
    for (const kid of platform) expect(tokenKeys(kid)).toHaveLength(1);
    expect(condition(await readPolicy(), 'Ready')?.status).toBe('True');
  }, 180_000);

  it('keyStore cannot be changed once set (CEL)', async () => {
    const changed = { ...hsmPolicy(ns), spec: { ...hsmPolicy(ns).spec, keyStore: { type: 'Secret' as const } } };
    await expect(applyAsUser(c, changed as unknown as KubernetesObject)).rejects.toThrow(/keyStore.type cannot be changed/);
  });
});

