import { generateAuditSigningKey } from '../audit/signing.js';
import { describe, expect, it } from '@jest/globals';
import type { CoreV1Api, KubernetesObject, V1Secret } from '@kubernetes/client-node';
import type { EncryptedService, KeyPolicy } from '../api/v1alpha1/index.js';
import { inspectWrappedDataKey, unwrapDataKey } from '../crypto/datakey.js';
import { DekCache } from '../crypto/dek-cache.js';
import { decryptValue, envelopeDataKeyId } from '../crypto/envelope.js';
import { createKeySet } from '../crypto/keyset.js';
import type { Applier } from '../kube/apply.js';
import { KeyRing, keySecretData } from '../keypolicy/key-ring.js';
import { createLogger, MemorySink } from '../runtime/logger.js';
import { ServiceSecrets } from './secrets.js';

// ServiceSecrets against an in-memory Secret store: a data key rotation asked for by annotation
// re-encrypts every envelope under a fresh key in one store write and keeps the replaced key; a
// restore puts the replaced key back; the application Secret never changes.
const notFound = () => Object.assign(new Error('not found'), { code: 404, body: { reason: 'NotFound', code: 404 }, headers: {} });

async function world() {
  const secrets = new Map<string, V1Secret>();
  let version = 1;
  const put = (s: V1Secret) => {
    const stored = structuredClone({ ...s, metadata: { ...s.metadata, namespace: 'shop', resourceVersion: String(version++) } });
    secrets.set(s.metadata?.name ?? '', stored);
    return structuredClone(stored);
  };
  const core = {
    async readNamespacedSecret({ name }: { name: string }) {
      const s = secrets.get(name);
      if (!s) throw notFound();
      return structuredClone(s);
    },
    async createNamespacedSecret({ body }: { body: V1Secret }) { return put(body); },
    async replaceNamespacedSecret({ body }: { body: V1Secret }) { return put(body); },
  } as unknown as CoreV1Api;
  const applier = {
    async apply(obj: KubernetesObject) {
      const s = obj as V1Secret;
      const live = secrets.get(s.metadata?.name ?? '');
      put({ ...live, ...s, data: { ...live?.data, ...s.data } });
      return { changed: true };
    },
  } as unknown as Applier;
  const now = new Date('2026-11-01T00:00:00Z');
  const sets = { kek: await createKeySet('kek', 'A256KW', { now }), seal: await createKeySet('seal', 'ECDH-ES+A256KW', { now }) };
  put({ metadata: { name: 'vault-keys' }, data: keySecretData(sets) });
  put({ metadata: { name: 'api-conf' }, data: { token: Buffer.from('s3cret').toString('base64'), other: Buffer.from('x').toString('base64') } });
  const policy = { metadata: { name: 'vault', namespace: 'shop', uid: 'p' }, spec: {} } as KeyPolicy;
  let es = {
    metadata: { name: 'api', namespace: 'shop', uid: 'e', generation: 1, annotations: {} as Record<string, string> },
    spec: { keyPolicyRef: { name: 'vault' }, secrets: { envelope: [{ name: 'api-conf', keys: ['token', 'other'] }] } },
  } as unknown as EncryptedService;
  const service = new ServiceSecrets({
    core, applier, keyRing: new KeyRing(), dekCache: new DekCache({ maxEntries: 10, ttlMs: 60_000 }),
    audit: { record: async () => undefined, check: async () => undefined, audited: async () => false, signingKey: async () => generateAuditSigningKey() }, events: { record: () => undefined },
    logger: createLogger({ sink: new MemorySink() }), now: () => now,
  });
  return {
    secrets, sets,
    annotate(annotations: Record<string, string>) { es = { ...es, metadata: { ...es.metadata, annotations: { ...es.metadata.annotations, ...annotations } } }; },
    reconcile: () => service.reconcile(es, policy),
    store: () => secrets.get('api-envelope')!,
  };
}

async function opened(w: Awaited<ReturnType<typeof world>>) {
  const store = w.store();
  const wrapped = Buffer.from(store.data?.['dek.jwe'] ?? '', 'base64').toString('utf8');
  const dataKey = await unwrapDataKey(w.sets.kek, wrapped, { namespace: 'shop', name: 'api' });
  const envelopes = JSON.parse(Buffer.from(store.data?.['envelopes.json'] ?? '', 'base64').toString('utf8')) as Record<string, Record<string, string>>;
  const values = Object.fromEntries(Object.entries(envelopes['api-conf'] ?? {}).map(([k, v]) => {
    expect(envelopeDataKeyId(v)).toBe(dataKey.id);
    return [k, decryptValue(dataKey, v, { namespace: 'shop', name: 'api-conf', key: k }).toString('utf8')];
  }));
  const previous = store.data?.['dek-previous.jwe'];
  return { id: dataKey.id, values, previousId: previous ? inspectWrappedDataKey(Buffer.from(previous, 'base64').toString('utf8')).dataKeyId : undefined };
}

describe('data key rotation in ServiceSecrets', () => {
  it('rotates once per value, re-encrypting every envelope, then restores the replaced key on request', async () => {
    const w = await world();
    const first = await w.reconcile();
    expect(first.conditions[0]).toMatchObject({ status: 'True' });
    const d1 = await opened(w);
    expect(d1.values).toEqual({ token: 's3cret', other: 'x' });
    const app = structuredClone(w.secrets.get('api-conf'));

    w.annotate({ 'lockstep.dev/rotate-data-key': 'r1' });
    await w.reconcile();
    const d2 = await opened(w);
    expect(d2.id).not.toBe(d1.id);
    expect(d2.values).toEqual(d1.values);
    expect(d2.previousId).toBe(d1.id);
    expect(w.store().metadata?.annotations).toMatchObject({ 'lockstep.dev/data-key-rotated-for': 'r1', 'lockstep.dev/data-key-id': d2.id });

    // The same value again changes nothing.
    const version = w.store().metadata?.resourceVersion;
    await w.reconcile();
    expect(w.store().metadata?.resourceVersion).toBe(version);

    w.annotate({ 'lockstep.dev/restore-data-key': 'r1' });
    await w.reconcile();
    const back = await opened(w);
    expect(back.id).toBe(d1.id);
    expect(back.values).toEqual(d1.values);
    expect(back.previousId).toBe(d2.id);
    expect(w.store().metadata?.annotations).toMatchObject({ 'lockstep.dev/data-key-restored-for': 'r1' });
    await w.reconcile();
    expect((await opened(w)).id).toBe(d1.id);
    expect(w.secrets.get('api-conf')?.data).toEqual(app?.data);
  });

  it('a restore that arrives before the rotation was made cancels it', async () => {
    const w = await world();
    await w.reconcile();
    const d1 = await opened(w);
    w.annotate({ 'lockstep.dev/rotate-data-key': 'r2', 'lockstep.dev/restore-data-key': 'r2' });
    await w.reconcile();
    expect((await opened(w)).id).toBe(d1.id);
    expect(w.store().metadata?.annotations).toMatchObject({ 'lockstep.dev/data-key-rotated-for': 'r2', 'lockstep.dev/data-key-restored-for': 'r2' });
  });
});
