// Issue 11, finding 6 (b–d): a tenant with ordinary rights in its own namespace forges what the
// operator used to trust by label or header. A Secret dressed as an envelope store and a sealed
// value naming an old kid no longer keep that kid from retirement; a forged or tampered store is
// never read, decrypted or overwritten, and is reported; a replaced JWKS ConfigMap makes
// `lockstep seal` refuse instead of sealing to the tenant's key.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import type { EncryptedService, KeyPolicy } from '../operator/api/v1alpha1/index.js';
import { runCli } from '../operator/cli/main.js';
import { capturedIo, type CapturedIo } from './harness/cli-io.js';
import { generateDataKey, wrapDataKey } from '../operator/crypto/datakey.js';
import { activeKey, createKeySet, publicJwks, sealingAlgorithmFor, type KeySet } from '../operator/crypto/keyset.js';
import { rotateKeySet } from '../operator/crypto/rotation.js';
import { sealValue } from '../operator/crypto/seal.js';
import { jwkThumbprint } from '../operator/crypto/thumbprint.js';
import { keySecretData } from '../operator/keypolicy/key-ring.js';
import { keyPolicyLabels } from '../operator/keypolicy/names.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, condition, installCrds, waitForCondition } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';
import { createTenant, type Tenant } from './harness/tenant.js';

const c = clients();
let platform = '';
let tenantNs = '';
let tenant: Tenant;
let operator: RunningOperator & { operator?: { metrics: { registry: { metrics(): Promise<string> } } } };
const POLICY = 'vault';
const HOUR = 3_600_000;
/** The kids the platform's policy holds: [active, recent decrypt-only, old decrypt-only]. */
let kekKids: string[] = [];
let sealKids: string[] = [];

const readPolicy = async (namespace = platform, name = POLICY) =>
  (await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies', namespace, name })) as KeyPolicy;
const readSecret = (namespace: string, name: string) => c.core.readNamespacedSecret({ namespace, name });
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

async function events(namespace: string): Promise<k8s.EventsV1Event[]> {
  return (await c.kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace })).items;
}

/** A key set rotated twice in the past: the oldest key has been decrypt-only for two hours. */
async function agedKeySet(purpose: 'kek' | 'seal', alg: 'A256KW' | 'ECDH-ES+A256KW'): Promise<KeySet> {
  const now = Date.now();
  const keep = { retention: 10, retireAfterMs: 0, usage: {} };
  let set = await createKeySet(purpose, alg, { now: new Date(now - 3 * HOUR) });
  set = (await rotateKeySet(set, { ...keep, alg, now: new Date(now - 2 * HOUR) })).keySet;
  set = (await rotateKeySet(set, { ...keep, alg, now: new Date(now - 6 * 60_000) })).keySet;
  return set;
}

/** The tenant's own key set, with its active key renamed to `kid`: a header anyone can write. */
async function impostor(purpose: 'kek' | 'seal', alg: 'A256KW' | 'ECDH-ES+A256KW', kid: string): Promise<KeySet> {
  const own = await createKeySet(purpose, alg, { now: new Date() });
  return { ...own, keys: [{ ...activeKey(own), kid }] };
}

function es(namespace: string, name: string, secrets: EncryptedService['spec']['secrets'], policyNamespace = platform): KubernetesObject {
  return {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace },
    spec: {
      workload: { selector: { matchLabels: { app: name } }, serviceAccountName: 'app' },
      ports: [{ name: 'https', port: 8443 }],
      keyPolicyRef: { name: POLICY, namespace: policyNamespace },
      secrets,
    },
  } as unknown as KubernetesObject;
}

function secret(namespace: string, name: string, data: Record<string, string>, extra: Partial<V1Secret['metadata']> = {}): KubernetesObject {
  return { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name, namespace, ...extra }, data } as KubernetesObject;
}

const memoryIo = (stdin: string, files: Record<string, string> = {}): CapturedIo => capturedIo(c.kc, stdin, files);

function applied(result: { status: number; stderr: string }): void {
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
}

beforeAll(async () => {
  installCrds();
  platform = await createTestNamespace(c, 'e2e-keytrust');
  tenantNs = await createTestNamespace(c, 'e2e-keytrust-tenant');
  tenant = await createTenant(c, tenantNs);
  for (const namespace of [platform, tenantNs]) await c.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'app' } } });

  // The platform's keys, as an earlier operator left them: the oldest KEK and sealing key have
  // been decrypt-only for 2h, so retainDecryptOnly 1 and retireAfter 1h retire them once unused.
  const kek = await agedKeySet('kek', 'A256KW');
  const seal = await agedKeySet('seal', sealingAlgorithmFor('A256KW') as 'ECDH-ES+A256KW');
  kekKids = kek.keys.map((k) => k.kid);
  sealKids = seal.keys.map((k) => k.kid);
  await c.core.createNamespacedSecret({
    namespace: platform,
    body: { metadata: { name: `${POLICY}-keys`, labels: keyPolicyLabels(platform, POLICY, 'keys') }, type: 'Opaque', data: keySecretData({ kek, seal }) },
  });

  // Before the operator runs, the tenant plants what used to pin the oldest kids: a Secret with
  // the store labels of the platform's policy and a wrapped "data key" whose header names the
  // oldest KEK (and a made-up integrity tag), and a service whose sealed value names the oldest
  // sealing key.
  const oldKek = kekKids[2] ?? '';
  const oldSeal = sealKids[2] ?? '';
  const forgedDek = await wrapDataKey(await impostor('kek', 'A256KW', oldKek), generateDataKey(), { namespace: tenantNs, name: 'ghost' });
  applied(tenant.apply(secret(tenantNs, 'ghost-envelope', { 'dek.jwe': b64(forgedDek), 'envelopes.json': b64('{}') }, {
    labels: {
      'app.kubernetes.io/managed-by': 'lockstep', 'lockstep.dev/encrypted-service': 'ghost', 'lockstep.dev/component': 'secrets',
      'lockstep.dev/key-policy': POLICY, 'lockstep.dev/key-policy-namespace': platform,
    },
    annotations: { 'lockstep.dev/store-integrity': `v1.${'A'.repeat(43)}`, 'lockstep.dev/kid': oldKek },
  })));
  const forgedSealed = await sealValue(publicJwks(await impostor('seal', 'ECDH-ES+A256KW', oldSeal)), 'x', { namespace: tenantNs, name: 'token', key: 't' });
  applied(tenant.apply(es(tenantNs, 'forger', { sealed: [{ name: 'token', encryptedData: { t: forgedSealed } }] })));

  const policy: KeyPolicy = {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: POLICY, namespace: platform },
    spec: {
      keyWrap: { algorithm: 'A256KW' },
      rotation: { period: '1h', retireAfter: '1h', retainDecryptOnly: 1 },
      allowed: { namespaces: [platform, tenantNs] },
    },
  };
  await applyAsUser(c, policy as unknown as KubernetesObject);
  operator = startInProcess(c.kc);
}, 120_000);

afterAll(async () => {
  if (process.env.LOCKSTEP_E2E_LOGS) writeFileSync(process.env.LOCKSTEP_E2E_LOGS, operator.logs());
  await operator?.stop();
  await deleteTestNamespace(c, tenantNs);
  await deleteTestNamespace(c, platform);
});

describe('forged JWEs with an old kid (6b)', () => {
  it('retire the old KEK and sealing key anyway, and the forged store is reported, not touched', async () => {
    const before = await readSecret(tenantNs, 'ghost-envelope');
    const status = await eventually('oldest kids retired', async () => {
      const kp = await readPolicy();
      const state = (kid: string) => kp.status?.keys?.find((k) => k.kid === kid)?.state;
      return state(kekKids[2] ?? '') === 'retired' && state(sealKids[2] ?? '') === 'retired' ? kp.status : undefined;
    }, 60_000);
    // The recent decrypt-only keys stay (retention 1); the active ones are untouched.
    expect(status?.keys?.find((k) => k.kid === kekKids[1])?.state).toBe('decrypt-only');
    expect(status?.activeKid).toBe(kekKids[0]);
    expect(status?.sealingKid).toBe(sealKids[0]);

    const reported = await eventually('UntrustedStoresIgnored Event', async () =>
      (await events(platform)).find((e) => e.reason === 'UntrustedStoresIgnored' && e.note?.includes(`${tenantNs}/ghost-envelope`)), 30_000);
    expect(reported?.type).toBe('Warning');
    // Its tag did not verify; once the kid it names is retired, it names a key the policy lacks.
    expect(reported?.note).toMatch(/ghost-envelope \((IntegrityMismatch|UnknownKey)\)/);
    const metrics = await operator.operator?.metrics.registry.metrics();
    expect(metrics).toContain(`lockstep_untrusted_envelope_stores{namespace="${platform}",keypolicy="${POLICY}",reason="UnknownKey"} 1`);

    // Never re-wrapped, re-tagged or otherwise written by the operator.
    const after = await readSecret(tenantNs, 'ghost-envelope');
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(after.data).toEqual(before.data);

    // The forged sealed value does not open, and its service says so.
    const forger = await waitForCondition(c, tenantNs, 'forger', 'SecretsReady', 'False', 'DecryptionFailed');
    expect(forger.status?.keyIds ?? []).not.toContain(sealKids[2]);
  });
});

describe('forged and tampered envelope stores (6c)', () => {
  it('a Secret the tenant made at a store name is not trusted, not overwritten, and reported', async () => {
    applied(tenant.apply(secret(tenantNs, 'web-envelope', { note: b64('mine') })));
    applied(tenant.apply(secret(tenantNs, 'web-db', { password: b64('web-password-1') })));
    const before = await readSecret(tenantNs, 'web-envelope');
    applied(tenant.apply(es(tenantNs, 'web', { envelope: [{ name: 'web-db' }] })));
    const web = await waitForCondition(c, tenantNs, 'web', 'SecretsReady', 'False', 'EnvelopeStoreUntrusted');
    expect(condition(web, 'SecretsReady')?.message).toMatch(/web-envelope is not trusted \(NotOperatorWritten\).*not read or overwritten/);
    const after = await readSecret(tenantNs, 'web-envelope');
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(after.data).toEqual({ note: b64('mine') });
    await eventually('EnvelopeStoreUntrusted Event', async () =>
      (await events(tenantNs)).find((e) => e.reason === 'EnvelopeStoreUntrusted' && e.regarding?.name === 'web'), 30_000);
  });

  it('a store the tenant changed is refused with nothing lost, and trusted again once put back', async () => {
    applied(tenant.apply(secret(tenantNs, 'api-db', { password: b64('api-password-1') })));
    applied(tenant.apply(es(tenantNs, 'api', { envelope: [{ name: 'api-db' }] })));
    await waitForCondition(c, tenantNs, 'api', 'SecretsReady', 'True', 'SecretsEncrypted');
    const genuine = await readSecret(tenantNs, 'api-envelope');
    expect(genuine.metadata?.annotations?.['lockstep.dev/store-integrity']).toMatch(/^v1\./);

    // The tenant drops the envelope of api-db from the store: with a store taken on trust, the
    // operator would silently rebuild it from whatever api-db holds now.
    const patched = tenant.kubectl(['patch', 'secret', 'api-envelope', '-n', tenantNs, '--type', 'merge', '-p', JSON.stringify({ data: { 'envelopes.json': b64('{}') } })]);
    expect(patched.stderr).toBe('');
    const api = await waitForCondition(c, tenantNs, 'api', 'SecretsReady', 'False', 'EnvelopeStoreUntrusted');
    expect(condition(api, 'SecretsReady')?.message).toMatch(/IntegrityMismatch/);
    const tampered = await readSecret(tenantNs, 'api-envelope');
    expect(tampered.data?.['envelopes.json']).toBe(b64('{}'));
    expect(Buffer.from((await readSecret(tenantNs, 'api-db')).data?.['password'] ?? '', 'base64').toString()).toBe('api-password-1');
    await eventually('KeyPolicy reports the tampered store', async () =>
      (await events(platform)).find((e) => e.reason === 'UntrustedStoresIgnored' && e.note?.includes(`${tenantNs}/api-envelope (IntegrityMismatch)`)), 30_000);
    // Its data key is still the operator's: the KEK it is wrapped under stays in use.
    expect((await readPolicy()).status?.keys?.find((k) => k.kid === kekKids[0])?.wrappedObjects).toBeGreaterThanOrEqual(1);

    // Put back as it was: trusted again, and the value still opens (api-db restored from it).
    const restored = tenant.kubectl(['patch', 'secret', 'api-envelope', '-n', tenantNs, '--type', 'merge', '-p', JSON.stringify({ data: { 'envelopes.json': genuine.data?.['envelopes.json'] } })]);
    expect(restored.stderr).toBe('');
    await waitForCondition(c, tenantNs, 'api', 'SecretsReady', 'True', 'SecretsEncrypted');
    applied(tenant.kubectl(['delete', 'secret', 'api-db', '-n', tenantNs]));
    await eventually('api-db restored from its envelope', async () => {
      try {
        const s = await readSecret(tenantNs, 'api-db');
        return Buffer.from(s.data?.['password'] ?? '', 'base64').toString() === 'api-password-1' ? true : undefined;
      } catch {
        return undefined;
      }
    }, 30_000);
  });
});

describe('a stripped integrity tag (6c)', () => {
  it('does not make a store look like one from before tags: refused until the tag is back', async () => {
    const store = await readSecret(tenantNs, 'api-envelope');
    const tag = store.metadata?.annotations?.['lockstep.dev/store-integrity'] ?? '';
    applied(tenant.kubectl(['annotate', 'secret', 'api-envelope', '-n', tenantNs, 'lockstep.dev/store-integrity-']));
    const api = await waitForCondition(c, tenantNs, 'api', 'SecretsReady', 'False', 'EnvelopeStoreUntrusted');
    expect(condition(api, 'SecretsReady')?.message).toMatch(/NoIntegrityTag/);
    const stripped = await readSecret(tenantNs, 'api-envelope');
    expect(stripped.metadata?.annotations?.['lockstep.dev/store-integrity']).toBeUndefined();
    expect(stripped.data).toEqual(store.data);
    applied(tenant.kubectl(['annotate', 'secret', 'api-envelope', '-n', tenantNs, `lockstep.dev/store-integrity=${tag}`]));
    await waitForCondition(c, tenantNs, 'api', 'SecretsReady', 'True', 'SecretsEncrypted');
  });
});

describe('the JWKS ConfigMap (6d)', () => {
  const sealArgs = (extra: string[] = []) => ['seal', '-n', tenantNs, '--name', 'db', '--key', 'password', '--policy', 'team', '--policy-namespace', tenantNs, ...extra];

  it('lockstep seal refuses a key the tenant put in the ConfigMap, online and offline', async () => {
    // The tenant's own KeyPolicy: its JWKS ConfigMap sits where anyone with ConfigMap rights writes.
    applied(tenant.apply({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'team', namespace: tenantNs }, spec: {} } as KubernetesObject));
    const status = await eventually('team publishes its sealing thumbprint', async () => {
      const kp = await readPolicy(tenantNs, 'team');
      return kp.status?.sealingKeyThumbprint ? kp.status : undefined;
    }, 60_000);
    const published = JSON.parse((await c.core.readNamespacedConfigMap({ namespace: tenantNs, name: 'team-jwks' })).data?.['jwks.json'] ?? '{}');
    expect(jwkThumbprint(published.keys[0])).toBe(status?.sealingKeyThumbprint);
    expect(published.keys[0].kid).toBe(status?.sealingKid);
    const good = memoryIo('value');
    expect(await runCli(sealArgs(), good)).toBe(0);
    expect(good.stdout()).toMatch(/^ey/);

    // The operator is down (or slow): nothing puts the ConfigMap back before the next seal.
    await operator.stop();
    const attackerJwks = publicJwks(await impostor('seal', 'ECDH-ES+A256KW', status?.sealingKid ?? ''));
    const edited = tenant.kubectl(['patch', 'configmap', 'team-jwks', '-n', tenantNs, '--type', 'merge', '-p', JSON.stringify({ data: { 'jwks.json': JSON.stringify(attackerJwks) } })]);
    expect(edited.stderr).toBe('');
    const refused = memoryIo('value');
    expect(await runCli(sealArgs(), refused)).toBe(1);
    expect(refused.stdout()).toBe('');
    expect(refused.stderr()).toMatch(new RegExp(`ConfigMap ${tenantNs}/team-jwks has thumbprint .* but KeyPolicy ${tenantNs}/team status expects ${status?.sealingKeyThumbprint}: the published key is not the operator's; nothing was sealed`));

    // Offline: the copied file is checked against the thumbprint taken from the status.
    const files = { 'attacker.json': JSON.stringify(attackerJwks), 'genuine.json': JSON.stringify(published) };
    const offline = (file: string) => ['seal', '-n', tenantNs, '--name', 'db', '--key', 'password', '--jwks', file, '--fingerprint', status?.sealingKeyThumbprint ?? ''];
    const offRefused = memoryIo('value', files);
    expect(await runCli(offline('attacker.json'), offRefused)).toBe(1);
    expect(offRefused.stdout()).toBe('');
    const offGood = memoryIo('value', files);
    expect(await runCli(offline('genuine.json'), offGood)).toBe(0);
    expect(offGood.stdout()).toMatch(/^ey/);
  });
});
