// cert-manager really issues on this cluster: SelfSigned ClusterIssuer → CA Certificate →
// CA ClusterIssuer → leaf Certificate, whose kubernetes.io/tls Secret chains to the CA.
// cert-manager's built-in approver is off on this cluster: the operator approves (as the
// cluster's approver), so it runs here too. The leaf's SPIFFE ID is not of the form Lockstep
// issues (…/ns/<ns>/sa/<sa>), which only a declared EncryptedService may claim.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { clients, eventually } from './harness/cluster.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';

const c = clients();
const CM_NAMESPACE = 'cert-manager'; // the controller's --cluster-resource-namespace
let ns = '';
const suffix = Math.random().toString(36).slice(2, 8);
const selfSigned = `e2e-selfsigned-${suffix}`;
const caIssuer = `e2e-ca-${suffix}`;
const caSecret = `e2e-root-${suffix}`;
const leafId = `spiffe://e2e.example/certmanager/${suffix}`;
let operator: RunningOperator | undefined;

interface Condition { type: string; status: string; reason?: string; message?: string }
type WithStatus = KubernetesObject & { status?: { conditions?: Condition[] } };

const cm = (kind: string, name: string, namespace: string | undefined, spec: object): KubernetesObject & { spec: object } => ({
  apiVersion: 'cert-manager.io/v1',
  kind,
  metadata: namespace ? { name, namespace } : { name },
  spec,
});

async function ready(kind: string, name: string, namespace?: string): Promise<void> {
  await eventually(`${kind} ${name} Ready`, async () => {
    const obj = (await c.objects.read({ apiVersion: 'cert-manager.io/v1', kind, metadata: { name, namespace } })) as WithStatus;
    return obj.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ? true : undefined;
  }, 90_000);
}

beforeAll(async () => {
  ns = await createTestNamespace(c, 'e2e-certmanager');
  operator = startInProcess(c.kc);
});

afterAll(async () => {
  const del = async (o: KubernetesObject) => c.objects.delete(o).catch(() => undefined);
  await del(cm('ClusterIssuer', caIssuer, undefined, {}));
  await del(cm('ClusterIssuer', selfSigned, undefined, {}));
  await del(cm('Certificate', caSecret, CM_NAMESPACE, {}));
  await c.core.deleteNamespacedSecret({ name: caSecret, namespace: CM_NAMESPACE }).catch(() => undefined);
  await deleteTestNamespace(c, ns);
  await operator?.stop();
});

describe('cert-manager on the test cluster', () => {
  it('issues a leaf certificate that chains to a CA it issued itself', async () => {
    await c.objects.create(cm('ClusterIssuer', selfSigned, undefined, { selfSigned: {} }));
    await ready('ClusterIssuer', selfSigned);

    await c.objects.create(cm('Certificate', caSecret, CM_NAMESPACE, {
      isCA: true,
      commonName: `e2e root ${suffix}`,
      secretName: caSecret,
      privateKey: { algorithm: 'ECDSA', size: 256 },
      issuerRef: { group: 'cert-manager.io', kind: 'ClusterIssuer', name: selfSigned },
    }));
    await ready('Certificate', caSecret, CM_NAMESPACE);

    await c.objects.create(cm('ClusterIssuer', caIssuer, undefined, { ca: { secretName: caSecret } }));
    await ready('ClusterIssuer', caIssuer);

    await c.objects.create(cm('Certificate', 'leaf', ns, {
      secretName: 'leaf-tls',
      duration: '2h',
      dnsNames: [`leaf.${ns}.svc`],
      uris: [leafId],
      usages: ['server auth', 'client auth'],
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      issuerRef: { group: 'cert-manager.io', kind: 'ClusterIssuer', name: caIssuer },
    }));
    await ready('Certificate', 'leaf', ns);

    const secret = await c.core.readNamespacedSecret({ name: 'leaf-tls', namespace: ns });
    expect(secret.type).toBe('kubernetes.io/tls');
    const data = secret.data ?? {};
    const pem = (k: string) => Buffer.from(data[k] ?? '', 'base64').toString('utf8');
    expect(pem('tls.key')).toContain('PRIVATE KEY');

    const leaf = new X509Certificate(pem('tls.crt'));
    const ca = new X509Certificate(pem('ca.crt'));
    const root = await c.core.readNamespacedSecret({ name: caSecret, namespace: CM_NAMESPACE });
    const rootCert = new X509Certificate(Buffer.from(root.data?.['tls.crt'] ?? '', 'base64'));

    expect(ca.fingerprint256).toBe(rootCert.fingerprint256);
    expect(ca.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.subjectAltName).toContain(`DNS:leaf.${ns}.svc`);
    expect(leaf.subjectAltName).toContain(`URI:${leafId}`);
    const lifetimeHours = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 3_600_000;
    expect(lifetimeHours).toBeCloseTo(2, 1);
  });
});
