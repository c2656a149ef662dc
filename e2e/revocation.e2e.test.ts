// Revocation of a compromised identity on the real API server, etcd and cert-manager
// (docs/revocation.md). Two services under a KeyPolicy's managed CA: `a` serves mTLS here, in
// this process, with the namespace's published trust bundle and CRL, as a workload would; `b`
// is its peer, whose key is "stolen" (copied) before `b` is revoked. Then: the CRL in the bundle
// lists the stolen serial and verifies under the CA, `a` refuses the stolen certificate (no
// application byte crosses) and accepts `b`'s new one, `b` was quarantined while it was being
// re-keyed and is not any more, and status, Events and the audit trail say so.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject, V1NetworkPolicy } from '@kubernetes/client-node';
import { LABEL_COMPONENT, type EncryptedService, type KeyPolicy } from '../operator/api/v1alpha1/index.js';
import { normalSerial } from '../operator/revocation/crl.js';
import { COMPONENT_REVOCATION, LIST_CRL_NUMBER_KEY, parseEntries, LIST_ENTRIES_KEY } from '../operator/revocation/revocation-list.js';
import { auditEntries, OPERATOR_NAMESPACE } from './harness/audit.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, deleteNamespaceAndFinalize, installCrds, readService, waitForCondition } from './harness/lockstep.js';
import { createTestNamespace } from './harness/namespace.js';
import { deleteRevocationLists } from './harness/revocation.js';
import { createTenant } from './harness/tenant.js';
import { startChild, startInProcess, type ChildOperator, type RunningOperator } from './harness/operator.js';
import { Failpoints } from '../operator/runtime/failpoints.js';
import { readMaterial, serialOfPem, type Material } from './harness/tls-material.js';

const c = clients();
let ns = '';
let operator: RunningOperator | undefined;
let child: ChildOperator | undefined;
let dir = '';

const service = (name: string, access: EncryptedService['spec']['access'] = {}): EncryptedService => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace: ns },
  spec: { workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name }, ports: [{ name: 'https', port: 8443 }], keyPolicyRef: { name: 'rv' }, access },
} as EncryptedService);

async function bundle(): Promise<{ roots: string; crl?: string }> {
  const cm = await c.core.readNamespacedConfigMap({ namespace: ns, name: 'lockstep-trust-bundle' });
  return { roots: cm.data?.['ca.crt'] ?? '', ...(cm.data?.['ca.crl'] ? { crl: cm.data['ca.crl'] } : {}) };
}

/** `openssl crl -text` of the CRL PEM, verified against `roots`: what any OpenSSL-based workload reads. */
function opensslCrl(crl: string, roots: string): { text: string; verified: boolean } {
  writeFileSync(join(dir, 'crl.pem'), crl);
  writeFileSync(join(dir, 'roots.pem'), roots);
  const run = spawnSync('openssl', ['crl', '-in', join(dir, 'crl.pem'), '-noout', '-text', '-CAfile', join(dir, 'roots.pem'), '-verify'], { encoding: 'utf8' });
  return { text: run.stdout, verified: /verify OK/.test(run.stderr) };
}

/**
 * Service `a` as its workload would run it: requires a client certificate that chains to the
 * bundle and is not on the bundle's CRL (Node's tls `crl`, OpenSSL's CRL check). It answers
 * "ok" only after the handshake, so a refused client never reads an application byte.
 */
class PeerServer {
  private server?: tls.Server;
  constructor(private material: Material) {}
  context(crl: string | undefined): tls.SecureContextOptions {
    return { cert: this.material.cert, key: this.material.key, ca: this.material.ca, ...(crl ? { crl } : {}) };
  }
  async start(crl: string | undefined): Promise<number> {
    this.server = tls.createServer({ ...this.context(crl), requestCert: true, rejectUnauthorized: true }, (socket) => socket.end('ok'));
    this.server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    return (this.server.address() as AddressInfo).port;
  }
  reload(crl: string | undefined): void {
    this.server?.setSecureContext(this.context(crl));
  }
  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** Whether a client holding cert/key gets application data from the server. */
function exchange(port: number, client: { cert: string; key: string }, ca: string): Promise<'accepted' | 'refused'> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, cert: client.cert, key: client.key, ca, servername: 'a', checkServerIdentity: () => undefined });
    let data = '';
    const done = (v: 'accepted' | 'refused') => {
      socket.destroy();
      resolve(v);
    };
    socket.setTimeout(5_000, () => done('refused'));
    socket.on('data', (d) => (data += d.toString()));
    socket.on('end', () => done(data === 'ok' ? 'accepted' : 'refused'));
    socket.on('error', () => done(data === 'ok' ? 'accepted' : 'refused'));
  });
}

async function policies(name: string): Promise<string[]> {
  const list = await c.objects.list<V1NetworkPolicy>('networking.k8s.io/v1', 'NetworkPolicy', ns);
  return list.items.filter((np) => np.metadata?.labels?.['lockstep.dev/encrypted-service'] === name).map((np) => np.metadata?.name ?? '').sort();
}

async function events(name: string): Promise<string[]> {
  const list = await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((e) => `${e.reason}: ${e.message}`);
}

beforeAll(async () => {
  installCrds();
  dir = mkdtempSync(join(tmpdir(), 'lockstep-revoke-e2e-'));
  ns = await createTestNamespace(c, 'e2e-revoke');
  operator = startInProcess(c.kc);
  await applyAsUser(c, { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'rv', namespace: ns }, spec: { keyWrap: { algorithm: 'A256KW' }, certificates: { defaultIssuer: { managedCA: {} } } } } as KeyPolicy as unknown as KubernetesObject);
  await applyAsUser(c, service('a', { ingress: [{ service: { name: 'b' }, ports: ['https'] }] }) as unknown as KubernetesObject);
  await applyAsUser(c, service('b') as unknown as KubernetesObject);
  await waitForCondition(c, ns, 'a', 'TransitReady', 'True', undefined, 120_000);
  await waitForCondition(c, ns, 'b', 'TransitReady', 'True', undefined, 120_000);
}, 240_000);

afterAll(async () => {
  await child?.stop();
  await deleteNamespaceAndFinalize(c, ns);
  // The revocation lists of this run's CAs (in the operator's namespace, which outlives the test).
  await deleteRevocationLists(c, ns);
  await operator?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('lockstep.dev/revoke', () => {
  it('revokes b: the CRL lists the stolen serial, a refuses it and accepts b\'s new certificate; quarantine during, gone after; status, Events, audit', async () => {
    const a = await eventually('a\'s material', () => readMaterial(c, ns, 'a'), 60_000);
    const stolen = await eventually('b\'s material', () => readMaterial(c, ns, 'b'), 60_000);
    const stolenSerial = serialOfPem(stolen.cert);
    const server = new PeerServer(a);
    const port = await server.start((await bundle()).crl);
    try {
      // Before: the stolen key is as good as b's own.
      expect(await exchange(port, stolen, a.ca)).toBe('accepted');
      const declared = await policies('b');
      expect(declared).toContain('b-default-deny');
      expect(declared).not.toContain('b-quarantine');

      // Watch the quarantine while it happens (polled: it lasts about as long as one issuance).
      const seen = new Set<string>();
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          for (const name of await policies('b').catch(() => [])) seen.add(name);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();

      const t0 = Date.now();
      await c.objects.patch({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name: 'b', namespace: ns, annotations: { 'lockstep.dev/revoke': 'incident-1' } } } as KubernetesObject,
        undefined, undefined, 'e2e', undefined, 'application/merge-patch+json');

      // The CRL in a's namespace bundle lists the serial, signed by the CA the bundle trusts.
      const published = await eventually('the CRL listing b\'s serial', async () => {
        const b = await bundle();
        return b.crl && opensslCrl(b.crl, b.roots).text.includes(`Serial Number: ${stolenSerial}`) ? b : undefined;
      }, 60_000, 100);
      const crlMs = Date.now() - t0;
      const crl = opensslCrl(published.crl!, published.roots);
      expect(crl.verified).toBe(true);
      expect(crl.text).toMatch(new RegExp(`Serial Number: ${stolenSerial}\\n\\s*Revocation Date: .*\\n\\s*CRL entry extensions:\\n\\s*X509v3 CRL Reason Code: *\\n\\s*Key Compromise`));

      // a, honouring the bundle's CRL, refuses the stolen certificate: no application byte crosses.
      server.reload(published.crl);
      expect(await exchange(port, stolen, a.ca)).toBe('refused');
      const refusedMs = Date.now() - t0;

      const done = await eventually('the revocation to complete', async () => {
        const es = await readService(c, ns, 'b');
        return es.status?.revocation?.phase === 'Completed' || es.status?.revocation?.phase === 'Failed' ? es : undefined;
      }, 120_000, 200);
      const completedMs = Date.now() - t0;
      watching = false;
      await watcher;
      console.log(`revocation of b: CRL published after ${crlMs} ms, stolen certificate refused by a after ${refusedMs} ms, re-keyed and quarantine lifted after ${completedMs} ms`);

      const revocation = done.status!.revocation!;
      expect(revocation).toMatchObject({ request: 'incident-1', phase: 'Completed', reason: 'keyCompromise', revokedSerial: stolenSerial, crlPublished: true, quarantined: false, outcome: 'Revoked' });
      expect(revocation.newSerial).toBeDefined();
      expect(revocation.newSerial).not.toBe(stolenSerial);
      expect(done.status?.conditions?.find((cond) => cond.type === 'Quarantined')).toMatchObject({ status: 'False', reason: 'NotQuarantined' });

      // b's new certificate (a new key too) is accepted by a under the same CRL: b keeps talking to its peers.
      const renewed = await eventually('b\'s new material', async () => {
        const m = await readMaterial(c, ns, 'b');
        return m && serialOfPem(m.cert) === revocation.newSerial ? m : undefined;
      }, 30_000);
      expect(renewed.key).not.toBe(stolen.key);
      expect(await exchange(port, renewed, a.ca)).toBe('accepted');
      expect(await exchange(port, stolen, a.ca)).toBe('refused');

      // Quarantined while re-keyed (the only policy then), the declared policies back after.
      expect(seen).toContain('b-quarantine');
      await eventually('the declared policies back, the quarantine gone', async () => ((await policies('b')).join() === declared.join() ? true : undefined), 30_000);

      const told = await events('b');
      for (const reason of ['RevocationRequested', 'QuarantineOn', 'CrlPublished', 'ReissueRequested', 'RevocationCompleted', 'QuarantineOff']) {
        expect(told.some((e) => e.startsWith(`${reason}:`))).toBe(true);
      }

      const trail = await auditEntries(c, ns, 'rv');
      const revokes = trail.filter((e) => e.type === 'revoke' && e.subject.name === 'b');
      // Each step once (a status write that conflicted with another writer is not a second step).
      expect(revokes.map((e) => e.details['outcome'])).toEqual(['requested', 'listed on CRL', 're-key requested', 'Revoked']);
      expect(trail.filter((e) => e.type === 'quarantine' && e.subject.name === 'b').map((e) => e.details['on'])).toEqual([true, false]);
      // Names, serials and reasons only: no key or certificate material anywhere.
      expect(JSON.stringify(trail)).not.toMatch(/BEGIN|PRIVATE/);
      expect(JSON.stringify(done.status)).not.toMatch(/BEGIN|PRIVATE/);
    } finally {
      await server.stop();
    }
  }, 240_000);

  it('serves each request once: the list, its CRL number and status stay as they are afterwards', async () => {
    const lists = async () => (await c.core.listNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, labelSelector: `${LABEL_COMPONENT}=${COMPONENT_REVOCATION}` })).items;
    const mine = async () => {
      const serial = (await readService(c, ns, 'b')).status?.revocation?.revokedSerial;
      return (await lists()).find((cm) => parseEntries(cm.data?.[LIST_ENTRIES_KEY]).some((e) => e.serial === normalSerial(serial ?? '')));
    };
    const before = await mine();
    expect(before).toBeDefined();
    const status = (await readService(c, ns, 'b')).status?.revocation;
    await new Promise((r) => setTimeout(r, 4_000));
    const after = await mine();
    expect(after?.data?.[LIST_CRL_NUMBER_KEY]).toBe(before?.data?.[LIST_CRL_NUMBER_KEY]);
    expect(parseEntries(after?.data?.[LIST_ENTRIES_KEY]).filter((e) => e.service === `${ns}/b`)).toHaveLength(1);
    expect((await readService(c, ns, 'b')).status?.revocation).toEqual(status);
  }, 60_000);

  it('a reason that is not a CRL reason ends Failed with that reason, and revokes nothing', async () => {
    const serial = (await readService(c, ns, 'b')).status?.certificate?.serialNumber;
    await c.objects.patch({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name: 'b', namespace: ns, annotations: { 'lockstep.dev/revoke': 'incident-2', 'lockstep.dev/revoke-reason': 'stolen' } } } as KubernetesObject,
      undefined, undefined, 'e2e', undefined, 'application/merge-patch+json');
    const failed = await eventually('the request to fail', async () => {
      const r = (await readService(c, ns, 'b')).status?.revocation;
      return r?.request === 'incident-2' && r.phase === 'Failed' ? r : undefined;
    }, 30_000);
    expect(failed).toMatchObject({ outcome: 'InvalidRevocationReason', quarantined: false });
    expect(failed.message).toMatch(/not a CRL reason/);
    const b = await bundle();
    expect(opensslCrl(b.crl!, b.roots).text).not.toContain(`Serial Number: ${serial}`);
    expect((await readService(c, ns, 'b')).status?.certificate?.serialNumber).toBe(serial);
  }, 60_000);

  it('a tenant cannot put another service\'s certificate on the CRL, nor take a revocation out of its bundle', async () => {
    const tenant = await createTenant(c, ns);
    const a = await readService(c, ns, 'a');
    const aSerial = a.status?.certificate?.serialNumber ?? '';
    const aCert = (await c.core.readNamespacedSecret({ namespace: ns, name: 'a-tls' })).data?.['tls.crt'] ?? '';
    // The tenant's own service, whose TLS Secret the tenant fills with a's certificate (public) before
    // any Certificate exists, labelled as the operator labels its Secrets; then asks to revoke "its" certificate.
    const forged = tenant.apply({
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'thief-tls', namespace: ns, labels: { 'app.kubernetes.io/managed-by': 'lockstep', 'lockstep.dev/encrypted-service': 'thief' } },
      type: 'kubernetes.io/tls', data: { 'tls.crt': aCert, 'tls.key': Buffer.from('not a key').toString('base64') },
    } as KubernetesObject);
    expect(forged.status).toBe(0);
    const asked = tenant.apply({ ...service('thief'), metadata: { name: 'thief', namespace: ns, annotations: { 'lockstep.dev/revoke': 'steal-a' } } } as unknown as KubernetesObject);
    expect(asked.status).toBe(0);
    const refused = await eventually('the tenant\'s request to be refused', async () => {
      const r = (await readService(c, ns, 'thief')).status?.revocation;
      return r?.request === 'steal-a' && r.phase ? r : undefined;
    }, 30_000);
    expect(refused).toMatchObject({ phase: 'Failed', outcome: 'NotThisService', quarantined: false });
    const b = await bundle();
    expect(opensslCrl(b.crl!, b.roots).text).not.toContain(`Serial Number: ${aSerial}`);
    expect((await readService(c, ns, 'a')).status?.certificate?.serialNumber).toBe(aSerial);

    // The tenant may edit its namespace's bundle (edit role), but the CRL comes back as published.
    const revoked = (await readService(c, ns, 'b')).status?.revocation?.revokedSerial ?? '';
    const cleared = tenant.kubectl(['-n', ns, 'patch', 'configmap', 'lockstep-trust-bundle', '--type=json', '-p', '[{"op":"remove","path":"/data/ca.crl"}]']);
    expect(cleared.status).toBe(0);
    await eventually('the CRL back in the bundle', async () => {
      const now = await bundle();
      return now.crl && opensslCrl(now.crl, now.roots).text.includes(`Serial Number: ${revoked}`) ? true : undefined;
    }, 30_000);
  }, 90_000);

  it('survives a SIGKILL after the CRL listed the serial and after cert-manager was asked: each side effect once', async () => {
    // One operator at a time: the in-process one stops, a child process takes over and is killed at each failpoint.
    await operator?.stop();
    operator = undefined;
    const certificate = async () => (await c.custom.getNamespacedCustomObject({ group: 'cert-manager.io', version: 'v1', plural: 'certificates', namespace: ns, name: 'b' })) as { status?: { revision?: number } };
    const before = await readService(c, ns, 'b');
    const serial = before.status?.certificate?.serialNumber ?? '';
    const revisionBefore = (await certificate()).status?.revision ?? 0;
    const killedAt = async (point: string, action?: () => Promise<unknown>) => {
      child = startChild({ LOCKSTEP_FAILPOINTS: point });
      await action?.();
      await eventually(`the operator killed at ${point}`, async () => (child!.process.signalCode === 'SIGKILL' ? true : undefined), 90_000, 200);
      child = undefined;
    };

    await killedAt(Failpoints.AfterCrlListed, () => c.objects.patch({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name: 'b', namespace: ns, annotations: { 'lockstep.dev/revoke': 'incident-3', 'lockstep.dev/revoke-reason': 'superseded' } } } as KubernetesObject,
      undefined, undefined, 'e2e', undefined, 'application/merge-patch+json'));
    // Killed after listing: the CRL has the serial, status still says Revoking.
    let b = await bundle();
    expect(opensslCrl(b.crl!, b.roots).text).toContain(`Serial Number: ${serial}`);
    expect((await readService(c, ns, 'b')).status?.revocation).toMatchObject({ request: 'incident-3', phase: 'Revoking', quarantined: true });

    await killedAt(Failpoints.AfterReissueAsked);
    expect((await readService(c, ns, 'b')).status?.revocation).toMatchObject({ request: 'incident-3', phase: 'Reissuing' });
    expect((await readService(c, ns, 'b')).status?.revocation?.reissueRequested).toBeUndefined();

    // CRLs valid 10 s from here on: the last test watches one signed again before its nextUpdate.
    child = startChild({ LOCKSTEP_CRL_VALIDITY: '10s' });
    const done = await eventually('incident-3 to complete', async () => {
      const r = (await readService(c, ns, 'b')).status?.revocation;
      return r?.request === 'incident-3' && (r.phase === 'Completed' || r.phase === 'Failed') ? r : undefined;
    }, 120_000, 250);
    expect(done).toMatchObject({ phase: 'Completed', reason: 'superseded', revokedSerial: serial, quarantined: false });
    // One new revision: the ask made before the kill was not made again.
    expect((await certificate()).status?.revision).toBe(revisionBefore + 1);
    const entries = (await auditEntries(c, ns, 'rv')).filter((e) => e.type === 'revoke' && e.details['request'] === 'incident-3').map((e) => e.details['outcome']);
    expect(entries.filter((o) => o === 'listed on CRL')).toHaveLength(1);
    expect(entries.filter((o) => o === 're-key requested')).toHaveLength(1);
    b = await bundle();
    const text = opensslCrl(b.crl!, b.roots).text;
    expect(text.split(`Serial Number: ${serial}`)).toHaveLength(2);
    expect(text).toMatch(new RegExp(`Serial Number: ${serial}[\\s\\S]*?Superseded`));
  }, 300_000);

  it('signs the CRL again before its nextUpdate, with the same entries and a higher CRL number', async () => {
    const list = async () => (await c.core.listNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, labelSelector: `${LABEL_COMPONENT}=${COMPONENT_REVOCATION}` })).items
      .find((cm) => parseEntries(cm.data?.[LIST_ENTRIES_KEY]).some((e) => e.service === `${ns}/b`));
    const first = await list();
    const n1 = BigInt(first?.data?.[LIST_CRL_NUMBER_KEY] ?? '0');
    const entries = parseEntries(first?.data?.[LIST_ENTRIES_KEY]).filter((e) => e.service === `${ns}/b`).map((e) => e.serial).sort();
    expect(entries).toHaveLength(2);
    // Time passes: the administrator moves the stored CRL past the middle of its validity (the
    // one signed earlier is valid 24 h). The operator signs a new one (valid 10 s, this child's
    // setting) at once, then again on its own timer half-way through those 10 s.
    const at = Date.now();
    await c.core.patchNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name: first!.metadata!.name!, body: { data: { 'this-update': new Date(at - 20_000).toISOString(), 'next-update': new Date(at + 15_000).toISOString() } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await eventually('the due CRL signed again', async () => {
      const now = await list();
      return BigInt(now?.data?.[LIST_CRL_NUMBER_KEY] ?? '0') === n1 + 1n ? now : undefined;
    }, 15_000, 250);
    const resigned = await eventually('the CRL signed again on the timer', async () => {
      const now = await list();
      return BigInt(now?.data?.[LIST_CRL_NUMBER_KEY] ?? '0') >= n1 + 2n ? now : undefined;
    }, 30_000, 250);
    const thisUpdate = Date.parse(resigned!.data!['this-update']!);
    const nextUpdate = Date.parse(resigned!.data!['next-update']!);
    expect(nextUpdate - thisUpdate).toBe(10_000);
    expect(thisUpdate).toBeGreaterThan(Date.parse(first!.data!['this-update']!));
    expect(parseEntries(resigned!.data![LIST_ENTRIES_KEY]).filter((e) => e.service === `${ns}/b`).map((e) => e.serial).sort()).toEqual(entries);
    // And the bundle publishes the new one, still listing both serials, before the old one's nextUpdate.
    await eventually('the bundle to carry the re-signed CRL', async () => {
      const b = await bundle();
      const crl = b.crl ? opensslCrl(b.crl, b.roots) : undefined;
      // The list keeps serials without leading zeros; openssl prints whole bytes.
      return crl?.verified && entries.every((s) => new RegExp(`Serial Number: 0?${s}\\n`).test(crl.text)) && b.crl === resigned!.data!['ca.crl'] ? true : undefined;
    }, 15_000, 250);
  }, 60_000);
});
