// Keys that cannot be lost, on a real API server with the garbage collector running: a KeyPolicy's
// keys outlive it (and a re-created policy picks them up), a tenant cannot delete a policy whose
// keys are still in use, and `lockstep backup` / `restore` / `drill` bring every sealed value and
// envelope store back after the namespace and the CRDs are gone.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import type { EncryptedService, KeyPolicy } from '../operator/api/v1alpha1/index.js';
import { runCli } from '../operator/cli/main.js';
import { processIo, type CliIo } from '../operator/cli/io.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, condition, deleteNamespaceAndFinalize, installCrds, waitForCondition } from './harness/lockstep.js';
import { repoRoot } from './harness/manifests.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';
import { createTenant } from './harness/tenant.js';

const c = clients();
let ns = '';
let operator: RunningOperator | undefined;
const work = mkdtempSync(join(tmpdir(), 'lockstep-recovery-'));
const plaintexts = new Set<string>();

const kpRef = (name: string, namespace = ns) => ({ group: 'lockstep.dev', version: 'v1alpha1', plural: 'keypolicies', namespace, name });
const readPolicy = async (name: string, namespace = ns) => (await c.custom.getNamespacedCustomObject(kpRef(name, namespace))) as KeyPolicy;
const readSecret = (name: string, namespace = ns) => c.core.readNamespacedSecret({ namespace, name });
const decoded = (s: V1Secret, key: string) => Buffer.from(s.data?.[key] ?? '', 'base64').toString('utf8');

function policy(name: string, spec: KeyPolicy['spec'] = {}): KubernetesObject {
  const kp: KeyPolicy = { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name, namespace: ns }, spec: { keyWrap: { algorithm: 'RSA-OAEP-256', rsaKeySize: 2048 }, ...spec } };
  return kp as unknown as KubernetesObject;
}

async function waitReady(name: string, namespace = ns): Promise<KeyPolicy> {
  return eventually(`KeyPolicy ${name} Ready`, async () => {
    const kp = await readPolicy(name, namespace);
    return condition(kp, 'Ready')?.status === 'True' && kp.status?.observedGeneration === kp.metadata.generation ? kp : undefined;
  }, 90_000);
}

async function gone(ref: () => Promise<unknown>): Promise<boolean> {
  try {
    await ref();
    return false;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return true;
    throw err;
  }
}

function memoryIo(stdin = ''): CliIo & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  const real = processIo();
  return {
    out: (t) => { out += t; },
    err: (t) => { err += t; },
    readStdin: async () => Buffer.from(stdin, 'utf8'),
    readFile: real.readFile,
    
    kubeConfig: () => c.kc,
    stdout: () => out,
    stderr: () => err,
  };
}

async function cli(args: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  const io = memoryIo(stdin);
  const code = await runCli(args, io);
  return { code, out: io.stdout(), err: io.stderr() };
}

beforeAll(async () => {
  installCrds();
  ns = await createTestNamespace(c, 'e2e-recovery');
  operator = startInProcess(c.kc);
});

afterAll(async () => {
  await deleteNamespaceAndFinalize(c, ns);
  await operator?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('keys outlive their policy', () => {
  it('keeps the key Secret when the KeyPolicy is deleted, and a re-created policy picks the keys up', async () => {
    await applyAsUser(c, policy('solo'));
    const first = await waitReady('solo');
    const before = await readSecret('solo-keys');
    expect(before.metadata?.ownerReferences ?? []).toEqual([]);

    await c.custom.deleteNamespacedCustomObject(kpRef('solo'));
    await eventually('KeyPolicy solo gone', async () => ((await gone(() => readPolicy('solo'))) ? true : undefined), 60_000);
    // The garbage collector runs in this cluster: give it time to collect what it would.
    await new Promise((r) => setTimeout(r, 3_000));
    const kept = await readSecret('solo-keys');
    expect(kept.data).toEqual(before.data);

    await applyAsUser(c, policy('solo'));
    const again = await waitReady('solo');
    expect(again.metadata.uid).not.toBe(first.metadata.uid);
    expect(again.status?.activeKid).toBe(first.status?.activeKid);
    expect((await readSecret('solo-keys')).data).toEqual(before.data);
  });
});
