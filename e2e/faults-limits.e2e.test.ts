// Faults of the fault suite that are limits rather than crashes, on the real API server: a sealed
// Secret near the 1 MiB a Secret can hold (materialised), one past it (a condition saying so, and
// the Secret already there left exactly as it was), and a namespace deleted while its services
// are still being reconciled (it goes, the operator's finalizers do not keep it).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { runCli } from '../operator/cli/main.js';
import { capturedIo } from './harness/cli-io.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, deleteNamespaceAndFinalize, waitForCondition } from './harness/lockstep.js';
import { createTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';
import { applyAll, applyPolicy, policyReady, prepareFleet, POLICY } from './faults/fleet.js';

const c = clients();
let ns = '';
let operator: RunningOperator | undefined;
// Each sealed value is capped at 256 KiB of ciphertext by the CRD: a Secret near 1 MiB takes several.
const VALUE_BYTES = 190_000;

async function sealedValues(count: number): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (let k = 0; k < count; k++) {
    const io = capturedIo(c.kc, String.fromCharCode(97 + k).repeat(VALUE_BYTES));
    expect(await runCli(['seal', '--namespace', ns, '--name', 'big', '--key', `k${k}`, '--policy', POLICY], io)).toBe(0);
    out[`k${k}`] = io.stdout().trim();
  }
  return out;
}

const bigService = (encryptedData: Record<string, string>): KubernetesObject => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name: 'big', namespace: ns },
  spec: {
    workload: { selector: { matchLabels: { app: 'big' } }, serviceAccountName: 'big' }, ports: [{ name: 'https', port: 8443 }],
    keyPolicyRef: { name: POLICY }, secrets: { sealed: [{ name: 'big', encryptedData }] },
  },
} as KubernetesObject);

beforeAll(async () => {
  ns = await createTestNamespace(c, 'e2e-limits');
  operator = startInProcess(c.kc);
  await applyPolicy(c, ns);
  await policyReady(c, ns);
}, 120_000);

afterAll(async () => {
  if (ns) await deleteNamespaceAndFinalize(c, ns);
  await operator?.stop();
}, 120_000);

describe('a sealed Secret near and past 1 MiB', () => {
  it('near the limit (5 values, 950,000 bytes) is materialised', async () => {
    await applyAsUser(c, bigService(await sealedValues(5)));
    await waitForCondition(c, ns, 'big', 'SecretsReady', 'True', undefined, 90_000);
    const secret = await c.core.readNamespacedSecret({ namespace: ns, name: 'big' });
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
    expect(Buffer.from(secret.data?.['k4'] ?? '', 'base64').toString()).toBe('e'.repeat(VALUE_BYTES));
  }, 180_000);

  it('past it (6 values) says SecretTooLarge with the size, and leaves the Secret as it was', async () => {
    const before = await c.core.readNamespacedSecret({ namespace: ns, name: 'big' });
    await applyAsUser(c, bigService(await sealedValues(6)));
    const es = await waitForCondition(c, ns, 'big', 'SecretsReady', 'False', 'SecretTooLarge', 90_000);
    const message = es.status?.conditions?.find((x) => x.type === 'SecretsReady')?.message ?? '';
    expect(message).toContain('Secret big would hold 1140012 bytes, more than the 1048576 (1 MiB) a Secret can: split its values into several sealed Secrets');
    expect(message).toContain('no Secret was written or changed');
    const after = await c.core.readNamespacedSecret({ namespace: ns, name: 'big' });
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(after.data).toEqual(before.data);
  }, 180_000);
});

describe('a namespace deleted while its services reconcile', () => {
  it('is gone within a minute: nothing the operator holds keeps it', async () => {
    const other = await createTestNamespace(c, 'e2e-limits-gone');
    await applyPolicy(c, other);
    await policyReady(c, other);
    const { services } = await prepareFleet(c, other, 'svc', 5);
    await applyAll(c, services);
    const deleted = Date.now();
    await c.core.deleteNamespace({ name: other });
    await eventually(`namespace ${other} gone`, async () => {
      try {
        await c.core.readNamespace({ name: other });
        return undefined;
      } catch (err) {
        return (err as { code?: number }).code === 404 ? true : undefined;
      }
    }, 60_000, 250);
    console.log(`namespace with 5 services still reconciling deleted: gone ${Date.now() - deleted} ms later`);
  }, 180_000);
});
