// The services a fault is tried on: one KeyPolicy and N EncryptedServices in one namespace, each
// with a peer (so NetworkPolicies too) and a value sealed with the CLI (so a materialised Secret),
// and what "nothing lost" means for them: a record of every Secret (uid and a digest of its
// data), the KEK generations and the audit trail, compared before and after the fault.
import { createHash, randomBytes } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EncryptedService, KeyPolicy } from '../../operator/api/v1alpha1/index.js';
import { runCli } from '../../operator/cli/main.js';
import { KEK_SET_KEY, keySecretName } from '../../operator/keypolicy/names.js';
import { auditEntries } from '../harness/audit.js';
import { capturedIo } from '../harness/cli-io.js';
import { eventually, type Clients } from '../harness/cluster.js';
import { applyAsUser, condition } from '../harness/lockstep.js';

export const POLICY = 'faults';

export interface Fleet {
  readonly namespace: string;
  readonly names: string[];
  /** Secret name → the plaintext sealed into it (key `password`). */
  readonly sealed: Map<string, string>;
}

const serviceName = (prefix: string, i: number) => `${prefix}-${String(i).padStart(3, '0')}`;

export async function applyPolicy(c: Clients, namespace: string): Promise<void> {
  await applyAsUser(c, { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: POLICY, namespace }, spec: {} } as KeyPolicy as unknown as KubernetesObject);
}

/** Ready, so the CLI finds its sealing key. */
export async function policyReady(c: Clients, namespace: string): Promise<void> {
  await eventually(`KeyPolicy ${POLICY} Ready`, async () => {
    const kp = await c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies', namespace, name: POLICY }) as KeyPolicy;
    return condition(kp, 'Ready')?.status === 'True' ? true : undefined;
  }, 60_000);
}

async function seal(c: Clients, namespace: string, name: string, value: string): Promise<string> {
  const io = capturedIo(c.kc, value);
  const code = await runCli(['seal', '--namespace', namespace, '--name', name, '--key', 'password', '--policy', POLICY], io);
  if (code !== 0) throw new Error(`lockstep seal failed (${code}): ${io.stderr()}`);
  return io.stdout().trim();
}

/** Seals a value for each of `count` services named `prefix-NNN` (the policy must be Ready), and applies none yet. */
export async function prepareFleet(c: Clients, namespace: string, prefix: string, count: number): Promise<{ fleet: Fleet; services: KubernetesObject[] }> {
  const names = Array.from({ length: count }, (_, i) => serviceName(prefix, i));
  const sealed = new Map<string, string>();
  const services: KubernetesObject[] = [];
  for (const [i, name] of names.entries()) {
    const value = `fault-${randomBytes(12).toString('hex')}`;
    sealed.set(`${name}-creds`, value);
    services.push({
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace },
      spec: {
        workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name },
        ports: [{ name: 'https', port: 8443 }],
        keyPolicyRef: { name: POLICY },
        access: { ingress: [{ service: { name: names[(i + 1) % count] }, ports: ['https'] }] },
        secrets: { sealed: [{ name: `${name}-creds`, encryptedData: { password: await seal(c, namespace, `${name}-creds`, value) } }] },
      },
    } as EncryptedService as unknown as KubernetesObject);
  }
  return { fleet: { namespace, names, sealed }, services };
}

/** Applies services a few at a time, as `kubectl apply -f dir/` would. */
export async function applyAll(c: Clients, services: readonly KubernetesObject[]): Promise<void> {
  for (let i = 0; i < services.length; i += 10) await Promise.all(services.slice(i, i + 10).map((s) => applyAsUser(c, s)));
}

/** The services not converged yet: Ready=True and not Degraded, for their current generation. */
export async function unconverged(c: Clients, fleet: Fleet): Promise<string[]> {
  const list = await c.custom.listNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'encryptedservices', namespace: fleet.namespace }) as { items: EncryptedService[] };
  const byName = new Map(list.items.map((es) => [es.metadata.name ?? '', es]));
  return fleet.names.filter((name) => {
    const es = byName.get(name);
    return !es || es.status?.observedGeneration !== es.metadata.generation
      || condition(es, 'Ready')?.status !== 'True' || condition(es, 'Degraded')?.status === 'True';
  });
}

export interface Inventory {
  /** Secret name → `uid digest`. */
  readonly secrets: Map<string, string>;
  readonly kids: string[];
  /** `type subject` of every audit entry, in order. */
  readonly audit: string[];
}

const digest = (data: Record<string, string> | undefined) =>
  createHash('sha256').update(JSON.stringify(Object.entries(data ?? {}).sort(([a], [b]) => a.localeCompare(b)))).digest('hex').slice(0, 16);

export async function inventory(c: Clients, namespace: string): Promise<Inventory> {
  const secrets = new Map((await c.core.listNamespacedSecret({ namespace })).items
    .map((s) => [s.metadata?.name ?? '', `${s.metadata?.uid} ${digest(s.data)}`] as const));
  const keys = await c.core.readNamespacedSecret({ namespace, name: keySecretName(POLICY) });
  const kekSet = JSON.parse(Buffer.from(keys.data?.[KEK_SET_KEY] ?? '', 'base64').toString('utf8')) as { keys?: { kid?: string }[]; active?: { kid?: string } };
  const kids = [...JSON.stringify(kekSet).matchAll(/"kid":"([^"]+)"/g)].map((m) => m[1] ?? '');
  const audit = (await auditEntries(c, namespace, POLICY)).map((e) => `${e.type} ${JSON.stringify(e.subject)}`);
  return { secrets, kids: [...new Set(kids)].sort(), audit };
}

/**
 * What was lost or done twice between two records: Secrets gone, recreated (new uid) or changed;
 * KEK generations added or dropped; audit entries that repeat an earlier one. Empty when nothing.
 */
export function compare(before: Inventory, after: Inventory): string[] {
  const problems: string[] = [];
  for (const [name, was] of before.secrets) {
    const now = after.secrets.get(name);
    if (now === undefined) problems.push(`Secret ${name} lost`);
    else if (now.split(' ')[0] !== was.split(' ')[0]) problems.push(`Secret ${name} recreated`);
    else if (now !== was) problems.push(`Secret ${name} changed`);
  }
  if (JSON.stringify(before.kids) !== JSON.stringify(after.kids)) problems.push(`KEK generations ${before.kids.join(',')} became ${after.kids.join(',')}`);
  const seen = new Set<string>();
  for (const entry of after.audit) {
    if (seen.has(entry)) problems.push(`audit entry repeated: ${entry}`);
    seen.add(entry);
  }
  return problems;
}

/** Every sealed value still reads back as the plaintext sealed. */
export async function sealedValuesIntact(c: Clients, fleet: Fleet): Promise<string[]> {
  const problems: string[] = [];
  for (const [name, value] of fleet.sealed) {
    const s = await c.core.readNamespacedSecret({ namespace: fleet.namespace, name }).catch(() => undefined);
    const got = Buffer.from(s?.data?.['password'] ?? '', 'base64').toString('utf8');
    if (got !== value) problems.push(`sealed Secret ${name} ${s ? 'holds another value' : 'missing'}`);
  }
  return problems;
}
