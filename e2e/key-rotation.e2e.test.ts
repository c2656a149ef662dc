// Key rotation through a RotationSchedule on the real API server: the KeyPolicy's KEK rotates
// canary first (one rotation for the policy all targets share), every target's data key is
// re-wrapped and verified to open what it held before, and a verification that fails puts the
// previous KEK back — with nothing left undecryptable and no application Secret changed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import {
  PUBLIC_JWKS_KEY, publicJwksConfigMapName,
  type EncryptedService, type KeyPolicy, type RotationSchedule, type RotationScheduleSpec,
} from '../operator/api/v1alpha1/index.js';
import { inspectWrappedDataKey, unwrapDataKey } from '../operator/crypto/datakey.js';
import { decryptValue } from '../operator/crypto/envelope.js';
import { openSealed, sealValue } from '../operator/crypto/seal.js';
import { readEnvelopeStore } from '../operator/encryptedservice/envelope-store.js';
import { keySetsFromSecret } from '../operator/keypolicy/key-ring.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, condition, installCrds, waitForCondition, readSchedule as readScheduleIn, waitForSchedule } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';

const c = clients();
let ns = '';
let operator: RunningOperator;
const POLICY = 'vault';
const SERVICES = ['alpha', 'beta'];
/** Per service: the envelope-protected value and the sealed value, as the application knows them. */
const values = new Map<string, { token: string; sealed: string }>();

const readSecret = (name: string) => c.core.readNamespacedSecret({ namespace: ns, name });
const decoded = (s: V1Secret, key: string) => Buffer.from(s.data?.[key] ?? '', 'base64').toString('utf8');
const readPolicy = async () => (await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies', namespace: ns, name: POLICY })) as KeyPolicy;
const readSchedule = (name: string) => readScheduleIn(c, ns, name);

const waitSchedule = (name: string, what: string, check: (rs: RotationSchedule) => boolean, timeoutMs = 120_000) =>
  waitForSchedule(c, ns, name, what, check, timeoutMs);

/** The KeyPolicy as the user keeps it in Git: with a rotate-now value of their own (acted on at creation). */
const userPolicy = (): KubernetesObject => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy',
  metadata: { name: POLICY, namespace: ns, annotations: { 'lockstep.dev/rotate-now': 'user-initial', 'example.com/owner': 'platform' } },
  spec: { keyWrap: { algorithm: 'A256KW' }, rotation: { period: '24h', retireAfter: '24h', retainDecryptOnly: 3 } },
} satisfies KeyPolicy as unknown as KubernetesObject);

function schedule(name: string, spec: Partial<RotationScheduleSpec>, rotateNow: string): KubernetesObject {
  return {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule',
    metadata: { name, namespace: ns, annotations: { 'lockstep.dev/rotate-now': rotateNow } },
    spec: { targets: { names: SERVICES }, rotate: ['keyEncryptionKeys'], ...spec },
  } as unknown as KubernetesObject;
}

/** Everything each service holds opens with the keys as stored, and equals what the application wrote. */
async function expectEverythingOpens(activeKid: string): Promise<void> {
  const keySets = keySetsFromSecret(await readSecret(`${POLICY}-keys`));
  for (const name of SERVICES) {
    const expected = values.get(name)!;
    const store = readEnvelopeStore(await readSecret(`${name}-envelope`));
    expect(inspectWrappedDataKey(store.wrappedDataKey ?? '').kid).toBe(activeKid);
    const dataKey = await unwrapDataKey(keySets.kek, store.wrappedDataKey ?? '', { namespace: ns, name });
    const envelope = store.envelopes[`${name}-conf`]?.['token'] ?? '';
    expect(decryptValue(dataKey, envelope, { namespace: ns, name: `${name}-conf`, key: 'token' }).toString('utf8')).toBe(expected.token);
    expect(decoded(await readSecret(`${name}-conf`), 'token')).toBe(expected.token);
    const es = (await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'encryptedservices', namespace: ns, name })) as EncryptedService;
    const jwe = es.spec.secrets?.sealed?.[0]?.encryptedData['value'] ?? '';
    expect((await openSealed(keySets.seal, jwe, { namespace: ns, name: `${name}-sealed`, key: 'value' })).toString('utf8')).toBe(expected.sealed);
    expect(decoded(await readSecret(`${name}-sealed`), 'value')).toBe(expected.sealed);
  }
}

/** The policy's KEK is `kid`, and every data key is wrapped under it again. */
async function rewrappedUnder(kid: string): Promise<void> {
  await eventually(`every data key re-wrapped under ${kid}`, async () => {
    const p = await readPolicy();
    if (p.status?.activeKid !== kid || condition(p, 'Rotating')?.status !== 'False') return undefined;
    for (const name of SERVICES) {
      if ((await readSecret(`${name}-envelope`)).metadata?.annotations?.['lockstep.dev/kid'] !== kid) return undefined;
    }
    return true;
  }, 90_000);
}

async function dataKeyIds(): Promise<Record<string, string>> {
  return Object.fromEntries(await Promise.all(SERVICES.map(async (n) => [n, inspectWrappedDataKey(readEnvelopeStore(await readSecret(`${n}-envelope`)).wrappedDataKey ?? '').dataKeyId] as const)));
}

/** Field managers owning annotation `key` of `obj`. */
function ownersOf(obj: KubernetesObject, key: string): string[] {
  return (obj.metadata?.managedFields ?? [])
    .filter((f) => (f.fieldsV1 as { 'f:metadata'?: { 'f:annotations'?: Record<string, unknown> } } | undefined)?.['f:metadata']?.['f:annotations']?.[`f:${key}`] !== undefined)
    .map((f) => f.manager ?? '');
}

const kekKids = async () => new Set(((await readPolicy()).status?.keys ?? []).map((k) => k.kid).filter((k) => k.startsWith('kek-')));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function appSecrets(): Promise<Record<string, Record<string, string> | undefined>> {
  const names = SERVICES.flatMap((n) => [`${n}-conf`, `${n}-sealed`]);
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, (await readSecret(n)).data] as const)));
}

beforeAll(async () => {
  installCrds();
  ns = await createTestNamespace(c, 'e2e-keyrot');
  operator = startInProcess(c.kc);
  await c.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'app' } } });
  await applyAsUser(c, userPolicy());
  await eventually('KeyPolicy Ready', async () => (condition(await readPolicy(), 'Ready')?.status === 'True' ? true : undefined), 60_000);
  const jwks = await eventually('public JWKS published', async () =>
    (await c.core.readNamespacedConfigMap({ namespace: ns, name: publicJwksConfigMapName(POLICY) })).data?.[PUBLIC_JWKS_KEY], 30_000);

  for (const name of SERVICES) {
    const v = { token: `token-${randomBytes(12).toString('hex')}`, sealed: `sealed-${randomBytes(12).toString('hex')}` };
    values.set(name, v);
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: `${name}-conf` }, stringData: { token: v.token } } });
    const es: EncryptedService = {
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace: ns },
      spec: {
        workload: { selector: { matchLabels: { app: name } }, serviceAccountName: 'app' },
        ports: [{ name: 'https', port: 8443 }],
        keyPolicyRef: { name: POLICY },
        secrets: {
          envelope: [{ name: `${name}-conf`, keys: ['token'] }],
          sealed: [{ name: `${name}-sealed`, encryptedData: { value: await sealValue(jwks, v.sealed, { namespace: ns, name: `${name}-sealed`, key: 'value' }) } }],
        },
      },
    };
    await applyAsUser(c, es as unknown as KubernetesObject);
  }
  for (const name of SERVICES) await waitForCondition(c, ns, name, 'SecretsReady', 'True', 'SecretsEncrypted', 60_000);
}, 180_000);

afterAll(async () => {
  if (process.env.LOCKSTEP_E2E_LOGS) writeFileSync(process.env.LOCKSTEP_E2E_LOGS, operator.logs());
  await deleteTestNamespace(c, ns);
  await operator?.stop();
});

describe('key rotation through a RotationSchedule', () => {
  it('rotates the shared KeyPolicy once, canary first, verifies every target, and completes with everything still opening', async () => {
    const before = (await readPolicy()).status?.activeKid ?? '';
    expect(before).toMatch(/^kek-/);
    const secretsBefore = await appSecrets();
    const dataKeysBefore = await dataKeyIds();
    await applyAsUser(c, schedule('keys', { rotate: ['keyEncryptionKeys', 'dataKeys'], strategy: { canarySteps: [50, 100], pauseBetweenSteps: '0s', verification: { timeout: '60s' } } }, 'k1'));
    const rs = await waitSchedule('keys', 'Completed', (s) => s.status?.phase === 'Completed' || s.status?.phase === 'RolledBack' || s.status?.phase === 'Failed');
    expect(rs.status?.phase).toBe('Completed');

    const after = (await readPolicy()).status?.activeKid ?? '';
    expect(after).toMatch(/^kek-/);
    expect(after).not.toBe(before);
    expect(rs.status?.targets?.map((t) => [t.name, t.phase, t.step, t.previousRevision, t.newRevision])).toEqual([
      ['alpha', 'Succeeded', 0, before, after],
      ['beta', 'Succeeded', 1, before, after],
    ]);
    expect(rs.status?.history?.[0]).toMatchObject({ outcome: 'Completed', rotated: ['keyEncryptionKeys', 'dataKeys'], targets: 2 });
    expect(condition(rs, 'Degraded')).toMatchObject({ status: 'False' });
    // One rotation for the policy both targets share: the old KEK and the new one, nothing more.
    const keks = (await readPolicy()).status?.keys?.filter((k) => k.kid.startsWith('kek-')) ?? [];
    expect(keks.map((k) => k.kid).sort()).toEqual([before, after].sort());

    await rewrappedUnder(after);
    await expectEverythingOpens(after);
    expect(await appSecrets()).toEqual(secretsBefore);

    // The schedule asked through its own annotation, under its own field manager: the user's
    // annotations are as they applied them, and still theirs alone.
    const asked = await readPolicy();
    expect(asked.metadata.annotations).toMatchObject({
      'lockstep.dev/rotate-now': 'user-initial', 'example.com/owner': 'platform',
      'lockstep.dev/rotation-request': `rotationschedule-${rs.status?.rotationId ?? ''}`,
    });
    expect(ownersOf(asked as unknown as KubernetesObject, 'lockstep.dev/rotate-now')).toEqual(['lockstep-e2e-user']);
    expect(ownersOf(asked as unknown as KubernetesObject, 'lockstep.dev/rotation-request')).toEqual(['lockstep-rotationschedule-rotation-request']);
    const alpha = await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'encryptedservices', namespace: ns, name: 'alpha' }) as KubernetesObject;
    expect(ownersOf(alpha, 'lockstep.dev/rotate-data-key')).toEqual(['lockstep-rotationschedule-rotate-data-key']);
    // A GitOps sync re-applies the policy as committed: nothing to revert, nothing rotates again.
    await applyAsUser(c, userPolicy());
    await sleep(5_000);
    expect((await readPolicy()).status?.activeKid).toBe(after);
    expect([...await kekKids()].sort()).toEqual([before, after].sort());
    expect((await readPolicy()).metadata.annotations?.['lockstep.dev/rotation-request']).toBe(`rotationschedule-${rs.status?.rotationId ?? ''}`);
    // A fresh data key per service; the replaced one is kept (wrapped) for a rollback.
    const dataKeysAfter = await dataKeyIds();
    for (const name of SERVICES) {
      expect(dataKeysAfter[name]).toMatch(/^dek-/);
      expect(dataKeysAfter[name]).not.toBe(dataKeysBefore[name]);
      const previous = (await readSecret(`${name}-envelope`)).data?.['dek-previous.jwe'] ?? '';
      expect(inspectWrappedDataKey(Buffer.from(previous, 'base64').toString('utf8')).dataKeyId).toBe(dataKeysBefore[name]);
    }
  });

  it('a target whose data no longer opens under the new key fails verification; the previous KEK becomes active again and nothing is left undecryptable', async () => {
    const before = (await readPolicy()).status?.activeKid ?? '';
    const secretsBefore = await appSecrets();
    await applyAsUser(c, schedule('keys-broken', { strategy: { canarySteps: [50, 100], pauseBetweenSteps: '15s', verification: { timeout: '10s' } } }, 'b1'));
    // The canary (alpha) is verified; beta's step waits out the pause.
    await waitSchedule('keys-broken', 'canary verified', (s) => s.status?.currentStep === 1 && s.status.targets?.[0]?.phase === 'Succeeded' && s.status.targets[1]?.phase === 'Pending');
    const rotated = (await readPolicy()).status?.activeKid ?? '';
    expect(rotated).not.toBe(before);
    await rewrappedUnder(rotated);

    // Between the steps, beta's stored envelope is damaged (one ciphertext byte flipped).
    const store = await readSecret('beta-envelope');
    const content = readEnvelopeStore(store);
    const good = content.envelopes['beta-conf']?.['token'] ?? '';
    const flipped = good.slice(0, -2) + (good.at(-2) === 'A' ? 'B' : 'A') + good.slice(-1);
    const damaged = { ...content.envelopes, 'beta-conf': { token: flipped } };
    await c.core.patchNamespacedSecret(
      { namespace: ns, name: 'beta-envelope', body: { data: { 'envelopes.json': Buffer.from(JSON.stringify(damaged)).toString('base64') } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );

    const rs = await waitSchedule('keys-broken', 'RolledBack', (s) => s.status?.phase === 'RolledBack' || s.status?.phase === 'Completed' || s.status?.phase === 'Failed');
    expect(rs.status?.phase).toBe('RolledBack');
    expect(rs.status?.failure).toMatchObject({ reason: 'VerificationFailed', target: `${ns}/beta` });
    expect(rs.status?.failure?.message).toContain('beta-conf[token] does not open');
    expect(rs.status?.targets?.map((t) => [t.name, t.phase])).toEqual([['alpha', 'Succeeded'], ['beta', 'RolledBack']]);
    expect(rs.status?.targets?.[1]?.message).toContain(`KEK ${before} of KeyPolicy ${ns}/${POLICY} made active again`);
    expect(condition(rs, 'Ready')).toMatchObject({ status: 'False', reason: 'RolledBack' });

    // The previous KEK is active again; the rotated one stays decrypt-only.
    await eventually(`${before} active again`, async () => ((await readPolicy()).status?.activeKid === before ? true : undefined), 60_000);
    const keys = (await readPolicy()).status?.keys ?? [];
    expect(keys.find((k) => k.kid === rotated)?.state).toBe('decrypt-only');

    // The damage is repaired from the copy the operator wrote; everything re-wraps under the old KEK and opens.
    await c.core.patchNamespacedSecret(
      { namespace: ns, name: 'beta-envelope', body: { data: { 'envelopes.json': store.data?.['envelopes.json'] ?? '' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await rewrappedUnder(before);
    await expectEverythingOpens(before);
    expect(await appSecrets()).toEqual(secretsBefore);
  });

  it('KEK and data keys: when data keys cannot be re-wrapped the canary fails, its new data key is replaced by the previous one and the previous KEK is active again', async () => {
    const before = (await readPolicy()).status?.activeKid ?? '';
    const dataKeysBefore = await dataKeyIds();
    const secretsBefore = await appSecrets();
    // beta's store is damaged before the rotation: its data key cannot be re-wrapped under a new KEK.
    const store = await readSecret('beta-envelope');
    const content = readEnvelopeStore(store);
    const good = content.envelopes['beta-conf']?.['token'] ?? '';
    const damaged = { ...content.envelopes, 'beta-conf': { token: good.slice(0, -2) + (good.at(-2) === 'A' ? 'B' : 'A') + good.slice(-1) } };
    await c.core.patchNamespacedSecret(
      { namespace: ns, name: 'beta-envelope', body: { data: { 'envelopes.json': Buffer.from(JSON.stringify(damaged)).toString('base64') } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await applyAsUser(c, schedule('keys-blocked', { rotate: ['keyEncryptionKeys', 'dataKeys'], strategy: { canarySteps: [50, 100], pauseBetweenSteps: '0s', verification: { timeout: '10s' } } }, 'd1'));
    // The canary got its fresh data key (alpha's store is fine) before the rotation gave up.
    const value = await eventually('alpha data key rotated', async () => {
      const rs = await readSchedule('keys-blocked');
      const v = `rotationschedule-${rs.status?.rotationId ?? ''}`;
      return (await readSecret('alpha-envelope')).metadata?.annotations?.['lockstep.dev/data-key-rotated-for'] === v ? v : undefined;
    }, 60_000);
    const rotatedDataKey = (await dataKeyIds())['alpha'];
    expect(rotatedDataKey).not.toBe(dataKeysBefore['alpha']);

    const rs = await waitSchedule('keys-blocked', 'RolledBack', (x) => x.status?.phase === 'RolledBack' || x.status?.phase === 'Completed' || x.status?.phase === 'Failed');
    expect(rs.status?.phase).toBe('RolledBack');
    expect(rs.status?.failure).toMatchObject({ reason: 'KeyRotationTimeout', target: `${ns}/alpha` });
    expect(rs.status?.failure?.message).toContain('data keys not re-wrapped');
    expect(rs.status?.targets?.map((t) => [t.name, t.phase])).toEqual([['alpha', 'RolledBack'], ['beta', 'Pending']]);
    expect(rs.status?.targets?.[0]?.message).toContain('data key rotation undone');

    // alpha's previous data key is current again, the rotated one kept; the previous KEK is active.
    await eventually('alpha data key restored', async () => {
      const s = await readSecret('alpha-envelope');
      return s.metadata?.annotations?.['lockstep.dev/data-key-restored-for'] === value && s.metadata.annotations['lockstep.dev/data-key-id'] === dataKeysBefore['alpha'] ? true : undefined;
    }, 60_000);
    const previous = (await readSecret('alpha-envelope')).data?.['dek-previous.jwe'] ?? '';
    expect(inspectWrappedDataKey(Buffer.from(previous, 'base64').toString('utf8')).dataKeyId).toBe(rotatedDataKey);
    await eventually(`${before} active again`, async () => ((await readPolicy()).status?.activeKid === before ? true : undefined), 60_000);

    await c.core.patchNamespacedSecret(
      { namespace: ns, name: 'beta-envelope', body: { data: { 'envelopes.json': store.data?.['envelopes.json'] ?? '' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await rewrappedUnder(before);
    await expectEverythingOpens(before);
    expect(await dataKeyIds()).toEqual(dataKeysBefore);
    expect(await appSecrets()).toEqual(secretsBefore);
  });

  it("a user's own rotate-now on the KeyPolicy still rotates it, once, after the schedules' rotations", async () => {
    const before = (await readPolicy()).status?.activeKid ?? '';
    const kidsBefore = await kekKids();
    // As `kubectl annotate keypolicy vault lockstep.dev/rotate-now=user-2 --overwrite` does.
    await c.custom.patchNamespacedCustomObject(
      { group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies', namespace: ns, name: POLICY, body: { metadata: { annotations: { 'lockstep.dev/rotate-now': 'user-2' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const after = await eventually('KEK rotated for user-2', async () => {
      const kid = (await readPolicy()).status?.activeKid;
      return kid !== undefined && kid !== before ? kid : undefined;
    }, 60_000);
    await rewrappedUnder(after);
    expect((await readSecret(`${POLICY}-keys`)).metadata?.annotations?.['lockstep.dev/rotated-for']).toBe('user-2');
    // Once: a later reconcile (another annotation changed) makes no second key.
    await c.custom.patchNamespacedCustomObject(
      { group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies', namespace: ns, name: POLICY, body: { metadata: { annotations: { 'example.com/touched': 'yes' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await sleep(5_000);
    const policy = await readPolicy();
    expect(policy.status?.activeKid).toBe(after);
    expect([...await kekKids()].filter((k) => !kidsBefore.has(k))).toEqual([after]);
    expect(policy.metadata.annotations?.['lockstep.dev/rotate-now']).toBe('user-2');
    await expectEverythingOpens(after);
  });
});

describe('no secret leaks', () => {
  it('keeps plaintexts, keys and data keys out of the operator log, Events and RotationSchedule status', async () => {
    const keySets = keySetsFromSecret(await readSecret(`${POLICY}-keys`));
    const material = new Set<string>();
    for (const key of [...keySets.kek.keys, ...keySets.seal.keys]) {
      for (const member of ['k', 'd']) {
        const v = key[member];
        if (v) material.add(v);
      }
    }
    for (const name of SERVICES) {
      const s = await readSecret(`${name}-envelope`);
      for (const field of ['dek.jwe', 'dek-previous.jwe']) {
        const wrapped = s.data?.[field];
        if (!wrapped) continue;
        const dek = (await unwrapDataKey(keySets.kek, Buffer.from(wrapped, 'base64').toString('utf8'), { namespace: ns, name })).key.export();
        for (const form of ['base64', 'base64url', 'hex'] as const) material.add(dek.toString(form));
      }
      const v = values.get(name)!;
      for (const plain of [v.token, v.sealed]) for (const form of [plain, Buffer.from(plain).toString('base64')]) material.add(form);
    }
    const events = (await c.kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns })).items;
    const schedules = await Promise.all(['keys', 'keys-broken', 'keys-blocked'].map(readSchedule));
    const haystacks = {
      logs: operator.logs(),
      events: JSON.stringify(events.map((e) => ({ reason: e.reason, note: e.note }))),
      status: JSON.stringify(schedules.map((x) => x.status)),
    };
    expect(haystacks.logs.length).toBeGreaterThan(0);
    expect(events.some((e) => e.reason === 'RolledBack' && (e.note ?? '').includes('made active again'))).toBe(true);
    for (const [where, text] of Object.entries(haystacks)) {
      for (const value of material) expect({ where, leaked: text.includes(value) }).toEqual({ where, leaked: false });
    }
  });
});
