// Issue 11, finding 5: the audit trail holds against a tenant. A user with `edit` and Lockstep's
// kinds in one namespace (kubectl --as) cannot read, edit or delete the trail or its head, which
// live in the operator's namespace; a trail changed behind the operator's back (here by the
// admin, standing in for anyone who gets write access there) is refused — AuditChainBroken, no
// entry appended, no key rotated — until an administrator restores it or accepts the loss; an
// old trail in the tenant's namespace is moved only after it verifies; failed uses a tenant can
// repeat at will are written a bounded number of times; and `lockstep audit verify` checks
// hashes, links and Ed25519 signatures.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EncryptedService, KeyPolicy } from '../operator/api/v1alpha1/index.js';
import { nextEntry } from '../operator/audit/chain.js';
import { appendAuditEvent, parseSegment, serializeSegment, type AuditSegment } from '../operator/audit/segments.js';
import { runCli } from '../operator/cli/main.js';
import type { CliIo } from '../operator/cli/io.js';
import {
  AUDIT_SIGNING_KEY_NAME, auditHeadName, auditLiveSegmentName, auditSegmentConfigMapName, auditTrailId,
} from '../operator/keypolicy/names.js';
import { OPERATOR_NAMESPACE, auditConfigMaps, auditEntries } from './harness/audit.js';
import { clients, eventually } from './harness/cluster.js';
import { condition, installCrds } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';
import { createTenant, type Tenant } from './harness/tenant.js';
import { encodePending, fingerprinted } from '../operator/keypolicy/audit-outbox.js';

const c = clients();
let ns = '';
let tenant: Tenant;
let operator: (RunningOperator & { operator?: { metrics: { registry: { getSingleMetricAsString(name: string): Promise<string> } } } }) | undefined;
const RATE = { windowMs: 20_000, maxPerWindow: 3 };

const kpRef = (name: string) => ({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies', namespace: ns, name });
const readPolicy = async (name: string) => (await c.custom.getNamespacedCustomObject(kpRef(name))) as KeyPolicy;
const policy = (name: string, spec: KeyPolicy['spec'] = { keyWrap: { algorithm: 'A256KW' } }, annotations?: Record<string, string>): KeyPolicy =>
  ({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) }, spec });

async function waitPolicy(name: string, check: (kp: KeyPolicy) => boolean, what: string, timeoutMs = 90_000): Promise<KeyPolicy> {
  return eventually(`KeyPolicy ${name}: ${what}`, async () => {
    const kp = await readPolicy(name);
    return check(kp) ? kp : undefined;
  }, timeoutMs);
}

async function verify(name: string): Promise<{ code: number; output: string }> {
  let out = '';
  const io: CliIo = {
    out: (t) => { out += t; }, err: (t) => { out += t; },
    readStdin: async () => Buffer.alloc(0), readFile: async () => { throw new Error('no files'); }, kubeConfig: () => c.kc,
  };
  const code = await runCli(['audit', 'verify', '--namespace', ns, '--policy', name, '--operator-namespace', OPERATOR_NAMESPACE], io);
  return { code, output: out };
}

const asTenant = (args: string[]) => tenant.kubectl(args);
const patchJson = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/** A trail as an operator before issue 11 kept it: a ConfigMap in the policy's namespace, head in status. */
function legacyTrail(name: string, count: number): { segment: AuditSegment; head: { segment: number; sequence: number; hash: string } } {
  let segment: AuditSegment | undefined;
  for (let i = 0; i < count; i++) {
    segment = appendAuditEvent(auditTrailId(ns, name), segment, {
      type: 'rotate', time: new Date(Date.UTC(2026, 9, 1, i)), subject: { namespace: ns, name, kind: 'KeyPolicy', kid: `kek-old-${i}` }, details: { trigger: 'period' },
    }).segment;
  }
  const last = segment!.entries[segment!.entries.length - 1]!;
  return { segment: segment!, head: { segment: segment!.index, sequence: last.seq, hash: last.hash } };
}

async function plantLegacy(name: string, text: string, head: { segment: number; sequence: number; hash: string }): Promise<void> {
  await c.custom.createNamespacedCustomObject({ ...kpRef(name), body: policy(name) });
  await c.custom.patchNamespacedCustomObjectStatus({ ...kpRef(name), body: { status: { auditHead: head } } }, patchJson);
  await c.core.createNamespacedConfigMap({
    namespace: ns,
    body: {
      metadata: { name: auditSegmentConfigMapName(name, 0), labels: { 'lockstep.dev/key-policy': name, 'lockstep.dev/component': 'audit', 'app.kubernetes.io/managed-by': 'lockstep' } },
      data: { 'segment-000000.jsonl': text },
    },
  });
}

beforeAll(async () => {
  installCrds();
  ns = await createTestNamespace(c, 'e2e-tenancy-audit');
  tenant = await createTenant(c, ns);
  // Trails an earlier operator version left in the tenant's namespace, planted before this one starts.
  const intact = legacyTrail('moved', 5);
  await plantLegacy('moved', serializeSegment(intact.segment), intact.head);
  const forged = legacyTrail('forged', 5);
  await plantLegacy('forged', serializeSegment(forged.segment).replace('kek-old-2', 'kek-forged'), forged.head);
  operator = startInProcess(c.kc, { auditRateLimit: RATE });
});

afterAll(async () => {
  await deleteTestNamespace(c, ns);
  await operator?.stop();
});

describe('migration of a trail from the tenant namespace', () => {
  it('moves a trail that verifies against the status head, keeping every entry, and deletes the old copy', async () => {
    await waitPolicy('moved', (p) => condition(p, 'Ready')?.status === 'True' && condition(p, 'AuditTrailReady')?.status === 'True', 'Ready');
    const entries = await eventually('migrated entries', async () => {
      const e = await auditEntries(c, ns, 'moved');
      return e.some((x) => x.type === 'create') ? e : undefined;
    });
    expect(entries.slice(0, 5).map((e) => e.subject.kid)).toEqual(['kek-old-0', 'kek-old-1', 'kek-old-2', 'kek-old-3', 'kek-old-4']);
    expect(entries[5]).toMatchObject({ type: 'migrate', seq: 6, details: { fromNamespace: ns, toNamespace: OPERATOR_NAMESPACE, entries: 5 } });
    expect(entries.slice(5).every((e) => typeof e.sig === 'string')).toBe(true);
    await expect(c.core.readNamespacedConfigMap({ namespace: ns, name: auditSegmentConfigMapName('moved', 0) })).rejects.toMatchObject({ code: 404 });
    const result = await verify('moved');
    expect(result.output).toContain('OK');
    expect(result.output).toContain('5 older entries written before signing began');
    expect(result.code).toBe(0);
  });

  it('does not move, trust or extend a trail that does not verify, and creates no keys for that policy', async () => {
    const kp = await waitPolicy('forged', (p) => condition(p, 'AuditTrailReady')?.reason === 'AuditChainBroken', 'AuditChainBroken');
    expect(condition(kp, 'AuditTrailReady')?.message).toContain('does not verify against the head in the KeyPolicy status');
    expect(condition(kp, 'Ready')).toMatchObject({ status: 'False', reason: 'AuditChainBroken' });
    expect(await auditConfigMaps(c, ns, 'forged')).toHaveLength(0);
    expect((await c.core.readNamespacedConfigMap({ namespace: ns, name: auditSegmentConfigMapName('forged', 0) })).data?.['segment-000000.jsonl']).toContain('kek-forged');
    await expect(c.core.readNamespacedSecret({ namespace: ns, name: 'forged-keys' })).rejects.toMatchObject({ code: 404 });
  });
});

describe('a tenant cannot reach the trail', () => {
  it('appends signed entries for a normal KEK rotation, which `lockstep audit verify` accepts', async () => {
    expect(tenant.apply(policy('keys')).status).toBe(0);
    const before = await waitPolicy('keys', (p) => condition(p, 'Ready')?.status === 'True', 'Ready');
    expect(tenant.apply(policy('keys', undefined, { 'lockstep.dev/rotate-now': 'one' })).status).toBe(0);
    await waitPolicy('keys', (p) => p.status?.activeKid !== before.status?.activeKid && (p.status?.auditHead?.sequence ?? 0) >= 4, 'rotated and audited');
    const entries = await auditEntries(c, ns, 'keys');
    expect(entries.map((e) => e.type)).toEqual(['create', 'create', 'rotate', 'rotate']);
    expect(entries.every((e) => typeof e.sig === 'string')).toBe(true);
    const result = await verify('keys');
    expect(result.output).toContain('signatures: 4 entries and the head verified');
    expect(result.code).toBe(0);
  });

  it('refuses the tenant every read and write of segments, head, signing key and the KeyPolicy status', async () => {
    const segment = auditLiveSegmentName(ns, 'keys', 0);
    const head = auditHeadName(ns, 'keys');
    const attempts: string[][] = [
      ['get', 'configmap', '-n', OPERATOR_NAMESPACE, segment],
      ['delete', 'configmap', '-n', OPERATOR_NAMESPACE, segment],
      ['delete', 'configmap', '-n', OPERATOR_NAMESPACE, head],
      ['patch', 'configmap', '-n', OPERATOR_NAMESPACE, head, '--type', 'merge', '-p', '{"data":{"head.json":"{}"}}'],
      ['annotate', 'configmap', '-n', OPERATOR_NAMESPACE, head, 'lockstep.dev/audit-reset=tenant'],
      ['get', 'secret', '-n', OPERATOR_NAMESPACE, AUDIT_SIGNING_KEY_NAME],
      ['patch', 'keypolicy', 'keys', '-n', ns, '--subresource', 'status', '--type', 'merge', '-p', '{"status":{"auditHead":{"sequence":0}}}'],
    ];
    for (const args of attempts) {
      const r = asTenant(args);
      expect({ args, status: r.status }).toEqual({ args, status: 1 });
      expect(r.stderr).toMatch(/forbidden/i);
    }
    // Nothing of a moved or new trail is left in the tenant's namespace for it to edit.
    const own = asTenant(['get', 'configmaps', '-n', ns, '-l', 'lockstep.dev/component=audit,lockstep.dev/key-policy in (keys,moved)', '-o', 'name']);
    expect(own.status).toBe(0);
    expect(own.stdout.trim()).toBe('');
    expect((await verify('keys')).code).toBe(0);
  });
});

describe('the key Secret outbox', () => {
  it('does not record events a tenant parks in the key Secret: reported, audited as a violation, cleared', async () => {
    const forged = encodePending([fingerprinted({ type: 'retire', time: new Date(), subject: { namespace: ns, name: 'keys', kind: 'KeyPolicy', kid: 'kek-planted' } })]);
    const r = asTenant(['annotate', 'secret', '-n', ns, 'keys-keys', `lockstep.dev/audit-pending=${forged}`, '--overwrite']);
    expect(r.status).toBe(0);
    expect(tenant.apply(policy('keys', undefined, { touched: 'outbox' })).status).toBe(0);
    const entry = await eventually('tampered outbox audited', async () =>
      (await auditEntries(c, ns, 'keys')).find((e) => e.type === 'policy-violation' && e.details['reason'] === 'AuditOutboxTampered'), 60_000);
    expect(entry.subject).toMatchObject({ kind: 'Secret', name: 'keys-keys' });
    expect((await auditEntries(c, ns, 'keys')).some((e) => e.subject.kid === 'kek-planted')).toBe(false);
    await eventually('forged annotation cleared', async () =>
      ((await c.core.readNamespacedSecret({ namespace: ns, name: 'keys-keys' })).metadata?.annotations?.['lockstep.dev/audit-pending'] === undefined ? true : undefined), 30_000);
    const events = (await c.kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns })).items;
    expect(events.some((e) => e.regarding?.name === 'keys' && e.reason === 'AuditOutboxTampered')).toBe(true);
    expect((await verify('keys')).code).toBe(0);
  });
});

describe('a trail changed behind the operator', () => {
  async function trigger(name: string, value: string): Promise<void> {
    expect(tenant.apply(policy(name, undefined, { 'lockstep.dev/rotate-now': value })).status).toBe(0);
  }

  it('refuses to append to a trail whose newest entries were cut: AuditChainBroken, no rotation, head unchanged; a reset records the loss', async () => {
    const before = await readPolicy('keys');
    const seq = before.status?.auditHead?.sequence ?? 0;
    const headBefore = (await c.core.readNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name: auditHeadName(ns, 'keys') })).data?.['head.json'];
    // Cut the last entry, fixing the segment summary so only the head can tell.
    const name = auditLiveSegmentName(ns, 'keys', 0);
    const cm = await c.core.readNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name });
    const segment = parseSegment(cm.data?.['segment-000000.jsonl'] ?? '');
    const cut = { ...segment, entries: segment.entries.slice(0, -1), lastHash: segment.entries[segment.entries.length - 2]!.hash };
    await c.core.patchNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name, body: { data: { 'segment-000000.jsonl': serializeSegment(cut) } } }, patchJson);

    await trigger('keys', 'two');
    const broken = await waitPolicy('keys', (p) => condition(p, 'AuditTrailReady')?.reason === 'AuditChainBroken', 'AuditChainBroken');
    expect(condition(broken, 'AuditTrailReady')?.message).toContain(`head records seq ${seq}`);
    expect(condition(broken, 'AuditTrailReady')?.message).toContain('lockstep.dev/audit-reset');
    expect(condition(broken, 'Degraded')).toMatchObject({ status: 'True', reason: 'AuditChainBroken' });
    const events = (await c.kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns })).items;
    expect(events.some((e) => e.regarding?.name === 'keys' && e.reason === 'AuditChainBroken')).toBe(true);
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await readPolicy('keys')).status?.activeKid).toBe(before.status?.activeKid);
    expect((await c.core.readNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name: auditHeadName(ns, 'keys') })).data?.['head.json']).toBe(headBefore);
    const cli = await verify('keys');
    expect(cli.code).toBe(1);
    expect(cli.output).toContain('head-mismatch');

    // An administrator accepts the loss: the chain continues from the signed head, saying so.
    await c.core.patchNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name: auditHeadName(ns, 'keys'), body: { metadata: { annotations: { 'lockstep.dev/audit-reset': 'e2e-cut' } } } }, patchJson);
    await trigger('keys', 'three');
    await waitPolicy('keys', (p) => condition(p, 'AuditTrailReady')?.status === 'True' && p.status?.activeKid !== before.status?.activeKid, 'recovered and rotated', 120_000);
    const live = await auditEntries(c, ns, 'keys');
    const reset = live.find((e) => e.type === 'chain-reset');
    expect(reset).toMatchObject({ seq: seq + 1, details: { reason: 'e2e-cut', fromSequence: seq } });
    expect(live.filter((e) => e.seq > seq + 1).map((e) => e.type)).toEqual(['rotate', 'rotate']);
    expect((await verify('keys')).code).toBe(0);
  });

  it('refuses entries that were not signed by the operator key, even when their hashes link', async () => {
    const before = await readPolicy('keys');
    const headSeq = before.status?.auditHead?.sequence ?? 0;
    const cms = await auditConfigMaps(c, ns, 'keys');
    const newest = cms[cms.length - 1]!;
    const [dataKey, text] = Object.entries(newest.data ?? {})[0]!;
    const segment = parseSegment(text);
    const last = segment.entries[segment.entries.length - 1]!;
    const forged = nextEntry({ seq: last.seq, hash: last.hash }, { type: 'retire', time: new Date(), subject: { namespace: ns, name: 'keys', kind: 'KeyPolicy', kid: 'kek-forged' } });
    const grown = { ...segment, entries: [...segment.entries, forged], lastHash: forged.hash };
    await c.core.patchNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name: newest.metadata?.name ?? '', body: { data: { [dataKey]: serializeSegment(grown) } } }, patchJson);
    await trigger('keys', 'four');
    const broken = await waitPolicy('keys', (p) => condition(p, 'AuditTrailReady')?.reason === 'AuditChainBroken', 'AuditChainBroken');
    expect(condition(broken, 'AuditTrailReady')?.message).toContain('chain continues past the recorded head');
    expect(broken.status?.activeKid).toBe(before.status?.activeKid);
    const cli = await verify('keys');
    expect(cli.code).toBe(1);
    expect(cli.output).toContain(`entry seq ${headSeq + 1} is unsigned after signed entries`);

    // Restored: the next reconcile appends again (the pending rotation goes ahead).
    await c.core.patchNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name: newest.metadata?.name ?? '', body: { data: { [dataKey]: text } } }, patchJson);
    await trigger('keys', 'five');
    await waitPolicy('keys', (p) => condition(p, 'AuditTrailReady')?.status === 'True' && p.status?.activeKid !== before.status?.activeKid, 'recovered', 120_000);
    expect((await verify('keys')).code).toBe(0);
  });
});

describe('policy-violation flooding', () => {
  it('writes at most the window limit of violations and counts the rest in one suppressed entry', async () => {
    expect(tenant.apply(policy('strict', { keyWrap: { algorithm: 'A256KW' }, allowed: { namespaces: ['nowhere'] } })).status).toBe(0);
    await waitPolicy('strict', (p) => condition(p, 'Ready')?.status === 'True', 'Ready');
    const flood = 12;
    const services = Array.from({ length: flood }, (_, i): EncryptedService => ({
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService',
      metadata: { name: `flood-${i}`, namespace: ns },
      spec: { workload: { selector: { matchLabels: { app: `flood-${i}` } }, serviceAccountName: 'default' }, ports: [{ name: 'https', port: 8443 }], keyPolicyRef: { name: 'strict' } },
    }));
    expect(tenant.apply(...(services as unknown as KubernetesObject[])).status).toBe(0);
    const summary = await eventually('suppressed entry', async () => {
      const entries = await auditEntries(c, ns, 'strict');
      const suppressed = entries.filter((e) => e.type === 'suppressed');
      return suppressed.length > 0 ? entries : undefined;
    }, 90_000);
    const violations = summary.filter((e) => e.type === 'policy-violation');
    const suppressed = summary.filter((e) => e.type === 'suppressed').reduce((n, e) => n + Number(e.details['count']), 0);
    expect(violations.length).toBeLessThanOrEqual(RATE.maxPerWindow);
    expect(violations.length + suppressed).toBe(flood);
    const metric = await operator?.operator?.metrics.registry.getSingleMetricAsString('lockstep_audit_events_suppressed_total');
    expect(metric).toMatch(/lockstep_audit_events_suppressed_total\{type="policy-violation"\} (\d+)/);
    expect(Number(/type="policy-violation"\} (\d+)/.exec(metric ?? '')?.[1])).toBeGreaterThanOrEqual(suppressed);
    expect((await verify('strict')).code).toBe(0);
  });
});

describe('archive before pruning', () => {
  it('moves full segments to the archive, deletes only beyond its retention, and the retained trail still verifies', async () => {
    // A second operator with small retention and no rate limit to speak of: many entries at once.
    await operator?.stop();
    operator = startInProcess(c.kc, { auditRateLimit: { windowMs: 60_000, maxPerWindow: 1_000 }, auditRetention: { liveSegments: 2, archiveSegments: 2 } });
    expect(tenant.apply(policy('archived', { keyWrap: { algorithm: 'A256KW' }, allowed: { namespaces: ['nowhere'] }, audit: { segmentSize: 16 } })).status).toBe(0);
    await waitPolicy('archived', (p) => condition(p, 'Ready')?.status === 'True', 'Ready');
    const services = Array.from({ length: 70 }, (_, i): EncryptedService => ({
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService',
      metadata: { name: `arch-${i}`, namespace: ns },
      spec: { workload: { selector: { matchLabels: { app: `arch-${i}` } }, serviceAccountName: 'default' }, ports: [{ name: 'https', port: 8443 }], keyPolicyRef: { name: 'archived' } },
    }));
    expect(tenant.apply(...(services as unknown as KubernetesObject[])).status).toBe(0);
    // 2 create entries + 70 violations = 72 entries = segments 0..4 of 16.
    await waitPolicy('archived', (p) => (p.status?.auditHead?.sequence ?? 0) >= 72, 'all entries written', 120_000);
    const live = await auditConfigMaps(c, ns, 'archived');
    const archive = await auditConfigMaps(c, ns, 'archived', 'archive');
    expect(live.map((cm) => cm.metadata?.name)).toEqual([auditLiveSegmentName(ns, 'archived', 3), auditLiveSegmentName(ns, 'archived', 4)]);
    expect(archive.map((cm) => cm.metadata?.name?.slice(-6))).toEqual(['000001', '000002']);
    expect(archive.every((cm) => cm.immutable === true && cm.binaryData !== undefined)).toBe(true);
    const entries = await auditEntries(c, ns, 'archived');
    expect(entries[0]?.seq).toBe(17);
    expect(entries[entries.length - 1]?.seq).toBe(72);
    const result = await verify('archived');
    expect(result.output).toContain('OK — 56 entries in 4 segments');
    expect(result.code).toBe(0);
    // An archived segment removed is detected like a live one.
    await c.core.deleteNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name: archive[1]?.metadata?.name ?? '' });
    const broken = await verify('archived');
    expect(broken.code).toBe(1);
    expect(broken.output).toContain('missing-segment');
  });
});
