// KeyPolicy end to end on a real API server, etcd and cert-manager: keys generated once and
// kept in a Secret the operator owns, the public JWKS published, rotation on demand that extends
// (never replaces) the stored keys, an audit trail in ConfigMaps in the operator's namespace whose
// tampering `lockstep audit verify` detects, and a managed CA whose ClusterIssuer signs the services' certificates.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import type { KubernetesObject, V1ConfigMap } from '@kubernetes/client-node';
import type { EncryptedService, KeyPolicy } from '../operator/api/v1alpha1/index.js';
import { parseSegment } from '../operator/audit/segments.js';
import { runCli } from '../operator/cli/main.js';
import { capturedIo, type CapturedIo } from './harness/cli-io.js';
import { parseKeySet } from '../operator/crypto/keyset.js';
import * as k8s from '@kubernetes/client-node';
import { fingerprinted, sealPending } from '../operator/keypolicy/audit-outbox.js';
import { signingKeyFromPem } from '../operator/audit/signing.js';
import { AUDIT_SIGNING_KEY_NAME, auditLiveSegmentName, managedCACertificateName, managedCAIssuerName, managedCASelfSignedIssuerName } from '../operator/keypolicy/names.js';
import { OPERATOR_NAMESPACE, auditConfigMaps as trailConfigMaps } from './harness/audit.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, condition, exists, installCrds, waitForCondition } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';

const c = clients();
let ns = '';
let operator: RunningOperator;

const kpRef = (name: string) => ({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies', namespace: ns, name });
const readPolicy = async (name: string) => (await c.custom.getNamespacedCustomObject(kpRef(name))) as KeyPolicy;

function policy(name: string, spec: KeyPolicy['spec'] = {}, annotations?: Record<string, string>): KeyPolicy {
  return { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) }, spec };
}

async function waitPolicy(name: string, check: (kp: KeyPolicy) => boolean, what: string, timeoutMs = 90_000): Promise<KeyPolicy> {
  return eventually(`KeyPolicy ${name}: ${what}`, async () => {
    const kp = await readPolicy(name);
    return kp.status?.observedGeneration === kp.metadata.generation && check(kp) ? kp : undefined;
  }, timeoutMs);
}

const memoryIo = (): CapturedIo => capturedIo(c.kc);

async function verify(name: string): Promise<{ code: number; output: string }> {
  const io = memoryIo();
  const code = await runCli(['audit', 'verify', '--namespace', ns, '--policy', name], io);
  return { code, output: io.stdout() + io.stderr() };
}

// Live segments of a policy's trail, in the operator's namespace.
const auditConfigMaps = (name: string): Promise<V1ConfigMap[]> => trailConfigMaps(c, ns, name);

beforeAll(async () => {
  installCrds();
  ns = await createTestNamespace(c, 'e2e-keypolicy');
  operator = startInProcess(c.kc);
});

afterAll(async () => {
  for (const name of ['ca']) await c.custom.deleteNamespacedCustomObject(kpRef(name)).catch(() => undefined);
  await eventually('managed CA cleaned up', async () =>
    (await exists(c, { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: managedCAIssuerName(ns, 'ca') } })) ? undefined : true, 60_000).catch(() => undefined);
  await deleteTestNamespace(c, ns);
  await operator?.stop();
});

describe('KeyPolicy keys', () => {
  it('generates the key sets once, publishes the public JWKS and becomes Ready', async () => {
    await applyAsUser(c, policy('keys', { keyWrap: { algorithm: 'RSA-OAEP-256', rsaKeySize: 2048 }, rotation: { period: '1h', retireAfter: '1h', retainDecryptOnly: 2 } }));
    const kp = await waitPolicy('keys', (p) => condition(p, 'Ready')?.status === 'True' && condition(p, 'KeysReady')?.status === 'True', 'Ready');
    expect(kp.status?.keySecretName).toBe('keys-keys');
    expect(kp.status?.publicJwksConfigMap).toBe('keys-jwks');
    expect(kp.status?.activeKid).toMatch(/^kek-/);
    expect(Date.parse(kp.status?.nextRotation ?? '') - Date.parse(kp.status?.lastRotation ?? '')).toBe(3_600_000);
    expect(kp.status?.keys?.map((k) => k.state).sort()).toEqual(['active', 'active']);

    const secret = await c.core.readNamespacedSecret({ namespace: ns, name: 'keys-keys' });
    expect(secret.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('lockstep');
    // No owner reference: the keys outlive the policy (e2e/key-recovery.e2e.test.ts).
    expect(secret.metadata?.ownerReferences ?? []).toEqual([]);
    expect(secret.metadata?.annotations?.['lockstep.dev/key-policy-uid']).toBe(kp.metadata.uid);
    const kek = parseKeySet(Buffer.from(secret.data?.['kek.json'] ?? '', 'base64').toString(), 'kek');
    expect(kek.keys[0]?.kid).toBe(kp.status?.activeKid);
    expect(kek.keys[0]?.alg).toBe('RSA-OAEP-256');

    const jwks = await c.core.readNamespacedConfigMap({ namespace: ns, name: 'keys-jwks' });
    const published = JSON.parse(jwks.data?.['jwks.json'] ?? '{}') as { keys: Record<string, string>[] };
    expect(published.keys).toHaveLength(1);
    expect(published.keys[0]?.kid).toMatch(/^seal-/);
    // Public members only: no private exponent or primes.
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(published.keys[0]).not.toHaveProperty(member);

    // The chain head is in status and the stored chain verifies.
    await waitPolicy('keys', (p) => (p.status?.auditHead?.sequence ?? 0) >= 2, 'audit head');
    const result = await verify('keys');
    expect(result.output).toContain('OK');
    expect(result.code).toBe(0);
  });

  it('rotates on demand: a new active key, the old one decrypt-only, the stored material extended not replaced', async () => {
    const before = await c.core.readNamespacedSecret({ namespace: ns, name: 'keys-keys' });
    const oldKek = parseKeySet(Buffer.from(before.data?.['kek.json'] ?? '', 'base64').toString(), 'kek');
    const oldKid = oldKek.keys[0]?.kid ?? '';

    await applyAsUser(c, policy('keys', { keyWrap: { algorithm: 'RSA-OAEP-256', rsaKeySize: 2048 }, rotation: { period: '1h', retireAfter: '1h', retainDecryptOnly: 2 } }, { 'lockstep.dev/rotate-now': 'first' }));
    const kp = await waitPolicy('keys', (p) => p.status?.activeKid !== oldKid, 'rotated');
    expect(kp.status?.keys?.find((k) => k.kid === oldKid)?.state).toBe('decrypt-only');

    const after = await c.core.readNamespacedSecret({ namespace: ns, name: 'keys-keys' });
    const newKek = parseKeySet(Buffer.from(after.data?.['kek.json'] ?? '', 'base64').toString(), 'kek');
    const kept = newKek.keys.find((k) => k.kid === oldKid);
    expect(kept?.state).toBe('decrypt-only');
    expect(kept?.['d']).toBe(oldKek.keys[0]?.['d']);
    expect(newKek.keys[0]?.kid).toBe(kp.status?.activeKid);

    // The same annotation value does not rotate again.
    const rv = after.metadata?.resourceVersion;
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await c.core.readNamespacedSecret({ namespace: ns, name: 'keys-keys' })).metadata?.resourceVersion).toBe(rv);

    // The rotation is in the audit trail.
    await waitPolicy('keys', (p) => (p.status?.auditHead?.sequence ?? 0) >= 4, 'rotation audited');
    const entries = (await auditConfigMaps('keys')).flatMap((cm) => Object.values(cm.data ?? {}).flatMap((t) => parseSegment(t).entries));
    expect(entries.filter((e) => e.type === 'rotate').map((e) => e.details['previousKid'])).toContain(oldKid);
  });
});

describe('audit outbox', () => {
  it('records key events left pending in the key Secret (a crash before the append) exactly once', async () => {
    await eventually('no pending audit events', async () =>
      ((await c.core.readNamespacedSecret({ namespace: ns, name: 'keys-keys' })).metadata?.annotations?.['lockstep.dev/audit-pending'] === undefined ? true : undefined), 30_000);
    const crashed = fingerprinted({ type: 'retire', time: new Date(), subject: { namespace: ns, name: 'keys', kind: 'KeyPolicy', kid: 'kek-left-pending' } });
    // What the operator itself parks in the key Secret: sealed with its audit key (read here as admin).
    const keySecret = await c.core.readNamespacedSecret({ namespace: OPERATOR_NAMESPACE, name: AUDIT_SIGNING_KEY_NAME });
    const key = signingKeyFromPem(Buffer.from(keySecret.data?.['ed25519.pem'] ?? '', 'base64').toString('utf8'));
    const leavePending = () => c.core.patchNamespacedSecret(
      { namespace: ns, name: 'keys-keys', body: { metadata: { annotations: { 'lockstep.dev/audit-pending': sealPending([crashed], key, `${ns}/keys-keys`) } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const recorded = async () => (await auditConfigMaps('keys'))
      .flatMap((cm) => Object.values(cm.data ?? {}).flatMap((t) => parseSegment(t).entries))
      .filter((e) => e.subject.kid === 'kek-left-pending');
    const cleared = () => eventually('pending events recorded and cleared', async () =>
      ((await c.core.readNamespacedSecret({ namespace: ns, name: 'keys-keys' })).metadata?.annotations?.['lockstep.dev/audit-pending'] === undefined ? true : undefined), 30_000);

    await leavePending();
    await cleared();
    expect(await recorded()).toHaveLength(1);
    // Appended, but the clear was lost: the retry finds the entry in the trail and does not repeat it.
    await leavePending();
    await cleared();
    expect(await recorded()).toHaveLength(1);
    await waitPolicy('keys', (p) => (p.status?.auditHead?.sequence ?? 0) >= 5, 'head moved');
    expect((await verify('keys')).code).toBe(0);
  });
});

describe('policy violations', () => {
  it('audits a service that references a policy it may not use', async () => {
    await applyAsUser(c, policy('strict', { keyWrap: { algorithm: 'A256KW' }, allowed: { namespaces: [ns], serviceAccounts: [`${ns}/trusted`] } }));
    await waitPolicy('strict', (p) => condition(p, 'Ready')?.status === 'True', 'Ready');
    const es: EncryptedService = {
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService',
      metadata: { name: 'intruder', namespace: ns },
      spec: { workload: { selector: { matchLabels: { app: 'intruder' } }, serviceAccountName: 'intruder' }, ports: [{ name: 'https', port: 8443 }], keyPolicyRef: { name: 'strict' } },
    };
    await applyAsUser(c, es as unknown as KubernetesObject);
    await waitForCondition(c, ns, 'intruder', 'Ready', 'False', 'KeyPolicyNotAllowed');
    const entry = await eventually('policy-violation audited', async () => {
      const entries = (await auditConfigMaps('strict')).flatMap((cm) => Object.values(cm.data ?? {}).flatMap((t) => parseSegment(t).entries));
      return entries.find((e) => e.type === 'policy-violation' && e.subject.name === 'intruder');
    }, 30_000);
    expect(entry.details['reason']).toBe('KeyPolicyNotAllowed');
    // The segment is written before the head moves in status; verify once the head caught up.
    await waitPolicy('strict', (p) => (p.status?.auditHead?.sequence ?? 0) >= entry.seq, 'audit head');
    const verified = await verify('strict');
    expect(verified.output).toContain('OK');
    expect(verified.code).toBe(0);

    // A restarted operator finds the violation already in the trail and does not record it again.
    const head = (await readPolicy('strict')).status?.auditHead;
    await operator.stop();
    operator = startInProcess(c.kc);
    await applyAsUser(c, policy('strict', { keyWrap: { algorithm: 'A256KW' }, allowed: { namespaces: [ns], serviceAccounts: [`${ns}/trusted`] } }, { touched: 'after-restart' }));
    await eventually('restarted operator running', async () => (operator.logs().includes('controllers started') ? true : undefined));
    // Give it time to reconcile both objects; a repeated violation would move the head.
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await readPolicy('strict')).status?.auditHead).toEqual(head);
  });
});

describe('audit verify on the stored chain', () => {
  async function withTampered(change: (lines: string[]) => string[], expectKind: string): Promise<void> {
    const [cm] = await auditConfigMaps('keys');
    if (!cm?.data) throw new Error('no audit segment stored');
    const [dataKey, text] = Object.entries(cm.data)[0] ?? ['', ''];
    const lines = text.split('\n').filter((l) => l.length > 0);
    const tampered = change(lines).join('\n') + '\n';
    await c.core.patchNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name: cm.metadata?.name ?? '', body: [{ op: 'replace', path: `/data/${dataKey}`, value: tampered }] },
      (await import('@kubernetes/client-node')).setHeaderOptions('Content-Type', 'application/json-patch+json'));
    try {
      const result = await verify('keys');
      expect(result.code).toBe(1);
      expect(result.output).toContain('BROKEN');
      expect(result.output).toContain(expectKind);
    } finally {
      await c.core.patchNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name: cm.metadata?.name ?? '', body: [{ op: 'replace', path: `/data/${dataKey}`, value: text }] },
        (await import('@kubernetes/client-node')).setHeaderOptions('Content-Type', 'application/json-patch+json'));
    }
    expect((await verify('keys')).code).toBe(0);
  }

  it('detects a changed entry', async () => {
    await withTampered((lines) => lines.map((l, i) => (i === 2 ? l.replace(/"purpose":"(kek|seal)"/, '"purpose":"forged"') : l)), 'entry-hash');
  });

  // A careful tamperer also fixes the segment summary; the chain still gives them away.
  const withSummaryCount = (lines: string[]): string[] => {
    const summary = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    return [JSON.stringify({ ...summary, count: lines.length - 1 }), ...lines.slice(1)];
  };

  it('detects a removed entry', async () => {
    await withTampered((lines) => withSummaryCount(lines.filter((_, i) => i !== 2)), 'sequence');
  });

  it('detects reordered entries', async () => {
    await withTampered((lines) => [lines[0] ?? '', lines[2] ?? '', lines[1] ?? '', ...lines.slice(3)], 'sequence');
  });

  it('detects the newest entries cut off (against the signed head in the operator namespace)', async () => {
    await withTampered((lines) => {
      const kept = lines.slice(0, -1);
      const summary = JSON.parse(kept[0] ?? '{}') as Record<string, unknown>;
      const last = JSON.parse(kept[kept.length - 1] ?? '{}') as { hash: string };
      return [JSON.stringify({ ...summary, count: kept.length - 1, lastHash: last.hash }), ...kept.slice(1)];
    }, 'head-mismatch');
  });
});

describe('audit segments', () => {
  it('carries the chain across segments and seals full segments against edits', async () => {
    const spec: KeyPolicy['spec'] = { keyWrap: { algorithm: 'A256KW' }, audit: { segmentSize: 16 } };
    await applyAsUser(c, policy('segmented', spec));
    await waitPolicy('segmented', (p) => condition(p, 'Ready')?.status === 'True', 'Ready');
    // Each rotation records two entries (KEK and sealing key): nine of them need a second segment.
    for (let i = 1; i <= 9; i++) {
      const before = (await readPolicy('segmented')).status?.activeKid;
      await applyAsUser(c, policy('segmented', spec, { 'lockstep.dev/rotate-now': `r${i}` }));
      await waitPolicy('segmented', (p) => p.status?.activeKid !== before, `rotation ${i}`);
    }
    const head = (await waitPolicy('segmented', (p) => (p.status?.auditHead?.sequence ?? 0) >= 20, 'head at seq 20')).status?.auditHead;
    expect(head?.segment).toBe(1);
    const cms = await auditConfigMaps('segmented');
    expect(cms.map((cm) => cm.metadata?.name)).toEqual([auditLiveSegmentName(ns, 'segmented', 0), auditLiveSegmentName(ns, 'segmented', 1)]);
    expect(cms[0]?.immutable).toBe(true);
    const first = parseSegment(Object.values(cms[0]?.data ?? {})[0] ?? '');
    const second = parseSegment(Object.values(cms[1]?.data ?? {})[0] ?? '');
    expect(first.entries).toHaveLength(16);
    expect(second.prevHash).toBe(first.lastHash);
    expect(second.firstSeq).toBe(17);

    await expect(c.core.patchNamespacedConfigMap(
      { namespace: OPERATOR_NAMESPACE, name: auditLiveSegmentName(ns, 'segmented', 0), body: { data: { 'segment-000000.jsonl': 'forged' } } },
      (await import('@kubernetes/client-node')).setHeaderOptions('Content-Type', 'application/merge-patch+json'),
    )).rejects.toMatchObject({ code: 422 });
    expect((await verify('segmented')).code).toBe(0);

    // Deleting a whole segment is still possible, and detected.
    await c.core.deleteNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name: auditLiveSegmentName(ns, 'segmented', 0) });
    const broken = await verify('segmented');
    expect(broken.code).toBe(1);
    expect(broken.output).toContain('missing-segment');
  });
});

describe('managed CA', () => {
  it('creates a CA ClusterIssuer that signs the certificates of services using the policy, and removes it with the policy', async () => {
    await applyAsUser(c, policy('ca', {
      keyWrap: { algorithm: 'A256KW' },
      certificates: { maxDuration: '48h', defaultIssuer: { managedCA: { commonName: `e2e root ${ns}`, duration: '720h' } } },
    }));
    const kp = await waitPolicy('ca', (p) => condition(p, 'Ready')?.status === 'True', 'Ready with its CA', 120_000);
    expect(kp.status?.issuer).toEqual({ kind: 'ClusterIssuer', name: managedCAIssuerName(ns, 'ca') });
    expect(kp.metadata.finalizers).toContain('lockstep.dev/cleanup');

    await c.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'web' } } }).catch(() => undefined);
    const es: EncryptedService = {
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService',
      metadata: { name: 'web', namespace: ns },
      spec: {
        workload: { selector: { matchLabels: { app: 'web' } }, serviceAccountName: 'web' },
        ports: [{ name: 'https', port: 8443 }],
        keyPolicyRef: { name: 'ca' },
      },
    };
    await applyAsUser(c, es as unknown as KubernetesObject);
    await waitForCondition(c, ns, 'web', 'TransitReady', 'True', undefined, 120_000);
    const cert = (await c.objects.read({ apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name: 'web', namespace: ns } })) as KubernetesObject & { spec: { issuerRef: Record<string, string> } };
    expect(cert.spec.issuerRef).toMatchObject({ kind: 'ClusterIssuer', name: managedCAIssuerName(ns, 'ca') });
    const tls = await c.core.readNamespacedSecret({ namespace: ns, name: 'web-tls' });
    const leaf = new X509Certificate(Buffer.from(tls.data?.['tls.crt'] ?? '', 'base64'));
    const root = new X509Certificate(Buffer.from(tls.data?.['ca.crt'] ?? '', 'base64'));
    expect(root.subject).toContain(`e2e root ${ns}`);
    expect(leaf.verify(root.publicKey)).toBe(true);

    await c.custom.deleteNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'encryptedservices', namespace: ns, name: 'web' });
    await c.custom.deleteNamespacedCustomObject(kpRef('ca'));
    await eventually('managed CA objects removed', async () => {
      const left = await Promise.all([
        exists(c, { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: managedCAIssuerName(ns, 'ca') } }),
        exists(c, { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: managedCASelfSignedIssuerName(ns, 'ca') } }),
        exists(c, { apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name: managedCACertificateName(ns, 'ca'), namespace: 'cert-manager' } }),
        exists(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: managedCACertificateName(ns, 'ca'), namespace: 'cert-manager' } }),
        exists(c, { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'ca', namespace: ns } }),
      ]);
      return left.every((x) => !x) ? true : undefined;
    }, 60_000);
  });
});

