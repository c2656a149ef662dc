// The secrets of an EncryptedService end to end: values sealed with the CLI become Secrets; bad
// ciphertext (another name or namespace, tampered, unknown kid) is reported with a condition, an
// Event and an audit entry while the existing Secret stays exactly as it was; envelope secrets are
// stored under a wrapped data key and restored when deleted; five rotations with retention 2 while
// secrets keep changing leave everything decryptable; and nothing secret reaches logs, Events or
// status.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import type { EncryptedService, KeyPolicy, SealedSecret, EnvelopeSecret } from '../operator/api/v1alpha1/index.js';
import type { AuditSegment } from '../operator/audit/segments.js';
import { runCli } from '../operator/cli/main.js';
import { capturedIo, type CapturedIo } from './harness/cli-io.js';
import { unwrapDataKey } from '../operator/crypto/datakey.js';
import { decryptValue } from '../operator/crypto/envelope.js';
import { createKeySet, publicJwks } from '../operator/crypto/keyset.js';
import { openSealed, sealValue } from '../operator/crypto/seal.js';
import { readEnvelopeStore } from '../operator/encryptedservice/envelope-store.js';
import { keySetsFromSecret } from '../operator/keypolicy/key-ring.js';
import { auditEntries as trailEntries } from './harness/audit.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, condition, installCrds, readService, waitForCondition } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';

const c = clients();
let ns = '';
let operator: RunningOperator;
const POLICY = 'vault';
const plaintexts = new Set<string>();

/** A value nobody else would log by accident, remembered for the leak check. */
function secretValue(label: string): string {
  const value = `${label}-${randomBytes(12).toString('hex')}`;
  plaintexts.add(value);
  return value;
}

const memoryIo = (stdin: string): CapturedIo => capturedIo(c.kc, stdin);

/** `lockstep seal --namespace ns --name name --key key --policy vault` with the value on stdin. */
async function seal(name: string, key: string, value: string, namespace = ns): Promise<string> {
  const io = memoryIo(value);
  const code = await runCli(['seal', '--namespace', namespace, '--name', name, '--key', key, '--policy', POLICY, '--policy-namespace', ns], io);
  expect(io.stderr()).toBe('');
  expect(code).toBe(0);
  return io.stdout().trim();
}

function service(name: string, secrets: { sealed?: SealedSecret[]; envelope?: EnvelopeSecret[] }): KubernetesObject {
  const es: EncryptedService = {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService',
    metadata: { name, namespace: ns },
    spec: {
      workload: { selector: { matchLabels: { app: name } }, serviceAccountName: 'app' },
      ports: [{ name: 'https', port: 8443 }],
      keyPolicyRef: { name: POLICY },
      secrets,
    },
  };
  return es as unknown as KubernetesObject;
}

const readSecret = (name: string) => c.core.readNamespacedSecret({ namespace: ns, name });
const decoded = (s: V1Secret, key: string) => Buffer.from(s.data?.[key] ?? '', 'base64').toString('utf8');
const readPolicy = async () => (await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies', namespace: ns, name: POLICY })) as KeyPolicy;

const auditEntries = (): Promise<AuditSegment['entries'][number][]> => trailEntries(c, ns, POLICY);

async function events(): Promise<k8s.EventsV1Event[]> {
  return (await c.kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns })).items;
}

async function rotate(value: string): Promise<string> {
  const before = (await readPolicy()).status?.activeKid;
  await c.custom.patchNamespacedCustomObject(
    { group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies', namespace: ns, name: POLICY, body: { metadata: { annotations: { 'lockstep.dev/rotate-now': value } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  return eventually(`rotation ${value}`, async () => {
    const kp = await readPolicy();
    return kp.status?.activeKid && kp.status.activeKid !== before ? kp.status.activeKid : undefined;
  }, 60_000);
}

beforeAll(async () => {
  installCrds();
  ns = await createTestNamespace(c, 'e2e-secrets');
  operator = startInProcess(c.kc);
  await c.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'app' } } });
  const policy: KeyPolicy = {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: POLICY, namespace: ns },
    spec: { keyWrap: { algorithm: 'RSA-OAEP-256', rsaKeySize: 2048 }, rotation: { period: '1h', retireAfter: '1h', retainDecryptOnly: 2 } },
  };
  await applyAsUser(c, policy as unknown as KubernetesObject);
  await eventually('KeyPolicy Ready', async () => (condition(await readPolicy(), 'Ready')?.status === 'True' ? true : undefined), 60_000);
});

afterAll(async () => {
  // LOCKSTEP_E2E_LOGS=<file> keeps the operator's log of this suite for debugging.
  if (process.env.LOCKSTEP_E2E_LOGS) writeFileSync(process.env.LOCKSTEP_E2E_LOGS, operator.logs());
  await deleteTestNamespace(c, ns);
  await operator?.stop();
});

describe('sealed secrets', () => {
  let username = '';
  let password = '';
  let good: SealedSecret;

  it('materialises a Secret from values sealed with the CLI', async () => {
    username = secretValue('user');
    password = secretValue('pass');
    good = {
      name: 'api-creds', type: 'kubernetes.io/basic-auth',
      encryptedData: { username: await seal('api-creds', 'username', username), password: await seal('api-creds', 'password', password) },
    };
    await applyAsUser(c, service('api', { sealed: [good] }));
    const es = await waitForCondition(c, ns, 'api', 'SecretsReady', 'True', 'SecretsEncrypted');
    const secret = await readSecret('api-creds');
    expect(secret.type).toBe('kubernetes.io/basic-auth');
    expect(decoded(secret, 'username')).toBe(username);
    expect(decoded(secret, 'password')).toBe(password);
    expect(secret.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'lockstep', 'lockstep.dev/encrypted-service': 'api' });
    expect(es.status?.keyIds?.some((k) => k.startsWith('seal-'))).toBe(true);
  });

  const otherKeys = async () => publicJwks(await createKeySet('seal', 'RSA-OAEP-256', { now: new Date(), rsaBits: 2048 }));
  const cases: [string, () => Promise<string>, string][] = [
    ['sealed for another Secret name', () => seal('other-creds', 'password', secretValue('moved')), 'WrongBinding'],
    ['sealed for another namespace', () => seal('api-creds', 'password', secretValue('elsewhere'), 'elsewhere'), 'WrongBinding'],
    ['sealed for another key of the Secret', () => seal('api-creds', 'username', secretValue('swapped')), 'WrongBinding'],
    ['tampered', async () => {
      const jwe = await seal('api-creds', 'password', secretValue('tampered'));
      const parts = jwe.split('.');
      const ct = Buffer.from(parts[3] ?? '', 'base64url');
      ct[0] = (ct[0] ?? 0) ^ 1;
      parts[3] = ct.toString('base64url');
      return parts.join('.');
    }, 'Tampered'],
    ['sealed to a key the policy does not have', async () => sealValue(await otherKeys(), secretValue('unknown'), { namespace: ns, name: 'api-creds', key: 'password' }), 'UnknownKey'],
  ];

  it.each(cases)('reports a value %s, writes nothing, and audits it', async (_what, make, reason) => {
    const before = await readSecret('api-creds');
    const bad = await make();
    await applyAsUser(c, service('api', { sealed: [{ ...good, encryptedData: { ...good.encryptedData, password: bad } }] }));
    const es = await waitForCondition(c, ns, 'api', 'SecretsReady', 'False', 'DecryptionFailed');
    const message = condition(es, 'SecretsReady')?.message ?? '';
    expect(message).toContain(`(${reason})`);
    expect(message).toContain('no Secret was written');

    const after = await readSecret('api-creds');
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(after.data).toEqual(before.data);

    await eventually(`Event for ${reason}`, async () =>
      (await events()).some((e) => e.reason === 'DecryptionFailed' && e.regarding?.name === 'api' && (e.note ?? '').includes(`(${reason})`)) ? true : undefined, 30_000);
    await eventually(`audit entry for ${reason}`, async () =>
      (await auditEntries()).some((e) => e.type === 'failed-decrypt' && e.details['reason'] === reason && e.subject.name === 'api-creds') ? true : undefined, 30_000);
  });

  it('recovers when the value is fixed', async () => {
    await applyAsUser(c, service('api', { sealed: [good] }));
    await waitForCondition(c, ns, 'api', 'SecretsReady', 'True', 'SecretsEncrypted');
    expect(decoded(await readSecret('api-creds'), 'password')).toBe(password);
  });

  it('follows the spec when a key is dropped from encryptedData', async () => {
    await applyAsUser(c, service('api', { sealed: [{ ...good, type: 'Opaque', name: 'api-token', encryptedData: { token: await seal('api-token', 'token', secretValue('tok')), extra: await seal('api-token', 'extra', secretValue('extra')) } }, good] }));
    await waitForCondition(c, ns, 'api', 'SecretsReady', 'True', 'SecretsEncrypted');
    expect(Object.keys((await readSecret('api-token')).data ?? {}).sort()).toEqual(['extra', 'token']);
    const token = (await readService(c, ns, 'api')).spec.secrets?.sealed?.find((x) => x.name === 'api-token')?.encryptedData['token'] ?? '';
    await applyAsUser(c, service('api', { sealed: [{ name: 'api-token', type: 'Opaque', encryptedData: { token } }, good] }));
    await eventually('extra removed from the Secret', async () =>
      Object.keys((await readSecret('api-token')).data ?? {}).join(',') === 'token' ? true : undefined, 30_000);
  });
});

describe('envelope secrets and rotation', () => {
  const sealedValues = new Map<string, string>();
  const sealedEntries: SealedSecret[] = [];
  let signingKey = '';

  async function apply(): Promise<void> {
    await applyAsUser(c, service('keeper', { envelope: [{ name: 'keeper-session', keys: ['signing-key'] }], sealed: sealedEntries }));
  }

  it('stores the application Secret envelope-encrypted under a wrapped data key and restores it when deleted', async () => {
    signingKey = secretValue('sign');
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'keeper-session' }, stringData: { 'signing-key': signingKey, unprotected: 'plain' } } });
    await apply();
    await waitForCondition(c, ns, 'keeper', 'SecretsReady', 'True', 'SecretsEncrypted');
    const store = await readSecret('keeper-envelope');
    const content = readEnvelopeStore(store);
    expect(content.wrappedDataKey?.split('.')).toHaveLength(5);
    expect(content.envelopes['keeper-session']?.['signing-key']).toMatch(/^lsenc1\./);
    expect(Object.keys(content.envelopes['keeper-session'] ?? {})).toEqual(['signing-key']);
    expect(store.metadata?.annotations?.['lockstep.dev/kid']).toBe((await readPolicy()).status?.activeKid);

    await c.core.deleteNamespacedSecret({ namespace: ns, name: 'keeper-session' });
    const restored = await eventually('Secret restored from its envelope', async () => {
      try {
        return await readSecret('keeper-session');
      } catch {
        return undefined;
      }
    }, 60_000);
    expect(decoded(restored, 'signing-key')).toBe(signingKey);
  });

  it('rotates five times with retention 2 while secrets are added and updated, and everything still decrypts', async () => {
    for (let round = 1; round <= 5; round++) {
      await rotate(`round-${round}`);
      const value = secretValue(`gen${round}`);
      const name = `gen-${round}`;
      sealedValues.set(name, value);
      sealedEntries.push({ name, encryptedData: { value: await seal(name, 'value', value) } });
      signingKey = secretValue(`sign${round}`);
      await c.core.patchNamespacedSecret(
        { namespace: ns, name: 'keeper-session', body: { stringData: { 'signing-key': signingKey } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      await apply();
    }
    await waitForCondition(c, ns, 'keeper', 'SecretsReady', 'True', 'SecretsEncrypted', 120_000);

    // Every data key re-wrapped under the active KEK: nothing left on older kids.
    const kp = await eventually('re-wrap complete', async () => {
      const p = await readPolicy();
      return condition(p, 'Rotating')?.status === 'False' && p.status?.observedGeneration === p.metadata.generation ? p : undefined;
    }, 60_000);
    const keks = kp.status?.keys?.filter((k) => k.kid.startsWith('kek-')) ?? [];
    expect(keks.filter((k) => k.state === 'active')).toHaveLength(1);
    expect(keks.filter((k) => k.state !== 'active').every((k) => (k.wrappedObjects ?? 0) === 0)).toBe(true);
    // retireAfter (1h) has not passed: nothing retired, so six KEKs.
    expect(keks).toHaveLength(6);

    // Decrypt everything with the stored keys, as a restore from backup would.
    const keySets = keySetsFromSecret(await readSecret(`${POLICY}-keys`));
    const store = await eventually('store under the active key', async () => {
      const s = await readSecret('keeper-envelope');
      return s.metadata?.annotations?.['lockstep.dev/kid'] === kp.status?.activeKid ? s : undefined;
    }, 30_000);
    const content = readEnvelopeStore(store);
    const dataKey = await unwrapDataKey(keySets.kek, content.wrappedDataKey ?? '', { namespace: ns, name: 'keeper' });
    const envelope = content.envelopes['keeper-session']?.['signing-key'] ?? '';
    expect(decryptValue(dataKey, envelope, { namespace: ns, name: 'keeper-session', key: 'signing-key' }).toString('utf8')).toBe(signingKey);
    expect(decoded(await readSecret('keeper-session'), 'signing-key')).toBe(signingKey);

    for (const entry of sealedEntries) {
      const expected = sealedValues.get(entry.name);
      const jwe = entry.encryptedData['value'] ?? '';
      expect((await openSealed(keySets.seal, jwe, { namespace: ns, name: entry.name, key: 'value' })).toString('utf8')).toBe(expected);
      expect(decoded(await readSecret(entry.name), 'value')).toBe(expected);
    }
    const es = await readService(c, ns, 'keeper');
    expect(es.status?.keyIds).toContain(kp.status?.activeKid);

    // Rotation and re-wrap are in the audit trail.
    const entries = await auditEntries();
    expect(entries.filter((e) => e.type === 'rotate' && e.subject.kid?.startsWith('kek-')).length).toBeGreaterThanOrEqual(5);
    expect(entries.filter((e) => e.type === 'rewrap' && e.subject.name === 'keeper').length).toBeGreaterThanOrEqual(1);
  });
});

describe('retained envelope stores', () => {
  it('keeps the store of a deleted service (deletionPolicy Retain) and re-wraps it on rotation', async () => {
    const value = secretValue('retained');
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'leaver-conf' }, stringData: { token: value } } });
    await applyAsUser(c, service('leaver', { envelope: [{ name: 'leaver-conf' }] }));
    await waitForCondition(c, ns, 'leaver', 'SecretsReady', 'True', 'SecretsEncrypted');
    await c.custom.deleteNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'encryptedservices', namespace: ns, name: 'leaver' });
    await eventually('service gone', async () => {
      try {
        await readService(c, ns, 'leaver');
        return undefined;
      } catch {
        return true;
      }
    }, 60_000);

    const kid = await rotate('after-leaver');
    const store = await eventually('retained store re-wrapped by the KeyPolicy', async () => {
      const s = await readSecret('leaver-envelope');
      return s.metadata?.annotations?.['lockstep.dev/kid'] === kid ? s : undefined;
    }, 60_000);
    const keySets = keySetsFromSecret(await readSecret(`${POLICY}-keys`));
    const content = readEnvelopeStore(store);
    const dataKey = await unwrapDataKey(keySets.kek, content.wrappedDataKey ?? '', { namespace: ns, name: 'leaver' });
    expect(decryptValue(dataKey, content.envelopes['leaver-conf']?.['token'] ?? '', { namespace: ns, name: 'leaver-conf', key: 'token' }).toString()).toBe(value);
    await eventually('re-wrap complete', async () => (condition(await readPolicy(), 'Rotating')?.status === 'False' ? true : undefined), 30_000);
  });
});

describe('no secret leaks', () => {
  it('keeps plaintexts, keys and data keys out of logs, Events and status', async () => {
    const keySecret = await readSecret(`${POLICY}-keys`);
    const keySets = keySetsFromSecret(keySecret);
    const material = new Set<string>();
    for (const key of [...keySets.kek.keys, ...keySets.seal.keys]) {
      for (const member of ['k', 'd', 'p', 'q', 'dp', 'dq', 'qi']) {
        const v = key[member];
        if (v) material.add(v);
      }
    }
    const content = readEnvelopeStore(await readSecret('keeper-envelope'));
    const dataKey = await unwrapDataKey(keySets.kek, content.wrappedDataKey ?? '', { namespace: ns, name: 'keeper' });
    const dek = dataKey.key.export();
    material.add(dek.toString('base64'));
    material.add(dek.toString('base64url'));
    material.add(dek.toString('hex'));

    const statuses = [
      JSON.stringify((await readPolicy()).status),
      ...await Promise.all(['api', 'keeper'].map(async (n) => JSON.stringify((await readService(c, ns, n)).status))),
    ];
    const haystacks = {
      logs: operator.logs(),
      events: JSON.stringify((await events()).map((e) => ({ reason: e.reason, note: e.note }))),
      status: statuses.join('\n'),
    };
    expect(haystacks.logs.length).toBeGreaterThan(0);
    const forms = (v: string) => [v, Buffer.from(v).toString('base64'), Buffer.from(v).toString('base64url')];
    for (const [where, text] of Object.entries(haystacks)) {
      for (const value of plaintexts) for (const form of forms(value)) expect({ where, leaked: text.includes(form) }).toEqual({ where, leaked: false });
      for (const value of material) expect({ where, leaked: text.includes(value) }).toEqual({ where, leaked: false });
    }
  });
});
