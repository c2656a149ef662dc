// What Lockstep promises on the data plane, on real pods of the local node (e2e/node/): the
// kubelet delivers certificate files to pods, a renewal is served without a restart, workloads
// that cannot reload (Deployment, StatefulSet) are rolled by a rotation, a canary leaf rotation
// across services costs pods calling them no request, generated NetworkPolicies drop what the
// spec does not declare (enforced by kube-network-policies) and still admit the operator's
// probes, and pod traffic never leaves the machine.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import * as k8s from '@kubernetes/client-node';
import type { EncryptedService, KeyPolicy, RotationSchedule } from '../operator/api/v1alpha1/index.js';
import { OPERATOR_POD_LABELS } from '../operator/config.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, deleteNamespaceAndFinalize, installCrds, waitForCondition, waitForSchedule, renewCertificate } from './harness/lockstep.js';
import { createTestNamespace, deleteTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';
import {
  nodeReady, nodeTest, PLAINTEXT_PORT, readyPods, runProbe, serviceAccount, startLoopProbe, TLS_PORT, tlsServer,
} from './harness/pods.js';

const c = clients();
let ns = '';
let opsNs = ''; // stands in for the operator's namespace: pods there with its labels are "the operator"
let operator: RunningOperator | undefined;
let haveNode = false;
let probeCount = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const apply = (o: unknown) => applyAsUser(c, o as KubernetesObject);
const probeName = (what: string) => `probe-${what}-${++probeCount}`;

function service(name: string, spec: Partial<EncryptedService['spec']> = {}): EncryptedService {
  return {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService',
    metadata: { name, namespace: ns },
    spec: {
      workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name },
      ports: [{ name: 'https', port: TLS_PORT }],
      keyPolicyRef: { name: 'dataplane' },
      ...spec,
    },
  } as EncryptedService;
}

async function secretSerial(name: string): Promise<string> {
  const s = await c.core.readNamespacedSecret({ namespace: ns, name: `${name}-tls` });
  const pem = Buffer.from(s.data?.['tls.crt'] ?? '', 'base64').toString('utf8');
  return new X509Certificate(pem).serialNumber.toLowerCase();
}

const norm = (serial: string | undefined) => (serial ?? '').toLowerCase().replace(/^0+/, '');

/** mTLS from a pod labelled as `from` (with that service's certificate) to `ip`. */
function mtlsArgs(ip: string, target: string, extra: string[] = []): string[] {
  return ['--url', `https://${ip}:${TLS_PORT}/`, '--cert', '/tls/tls.crt', '--key', '/tls/tls.key', '--ca', '/trust/ca.crt',
    '--server-name', `${target}.${ns}.svc`, '--timeout', '3s', ...extra];
}

const forceRenewal = (name: string): Promise<void> => renewCertificate(c, ns, name);

beforeAll(async () => {
  haveNode = await nodeReady(c);
  if (!haveNode) return;
  installCrds();
  ns = await createTestNamespace(c, 'e2e-dataplane');
  opsNs = await createTestNamespace(c, 'e2e-dataplane-ops');
  await apply({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'dataplane', namespace: ns }, spec: { keyWrap: { algorithm: 'A256KW' } } } as KeyPolicy);
  for (const sa of ['api', 'web', 'legacy', 'ledger', 'alpha', 'bravo']) await apply(serviceAccount(ns, sa));
  operator = startInProcess(c.kc, { probeSource: { namespace: opsNs, podLabels: { ...OPERATOR_POD_LABELS } } });
  await apply(service('web'));
  await apply(service('api', { access: { ingress: [{ service: { name: 'web' }, ports: ['https'] }] } }));
  await waitForCondition(c, ns, 'web', 'Ready', 'True');
  await waitForCondition(c, ns, 'api', 'Ready', 'True');
  for (const o of tlsServer({ namespace: ns, name: 'api', labels: { app: 'api' }, serviceAccountName: 'api', secretName: 'api-tls', replicas: 2, args: ['--plaintext-listen', `:${PLAINTEXT_PORT}`] })) await apply(o);
}, 240_000);

afterAll(async () => {
  if (!haveNode) return;
  await deleteNamespaceAndFinalize(c, ns);
  await deleteTestNamespace(c, opsNs);
  await operator?.stop();
});

const itNode = nodeTest(() => haveNode);

describe('certificates on real pods', () => {
  itNode('the kubelet mounts the issued certificate; a declared peer completes mTLS and reads the response', async () => {
    const pods = await readyPods(c, ns, { app: 'api' }, 2);
    // EndpointSlices come from the endpointslice controller, pointing at the pods.
    const slices = await eventually('EndpointSlice of api with 2 ready endpoints', async () => {
      const list = await c.kc.makeApiClient(k8s.DiscoveryV1Api).listNamespacedEndpointSlice({ namespace: ns, labelSelector: 'kubernetes.io/service-name=api' });
      const ready = list.items.flatMap((s) => s.endpoints).filter((e) => e.conditions?.ready);
      return ready.length === 2 ? ready : undefined;
    });
    expect(slices.flatMap((e) => e.addresses).sort()).toEqual(pods.map((p) => p.status?.podIP).sort());

    const serial = await secretSerial('api');
    for (const pod of pods) {
      const r = await runProbe(c, { namespace: ns, name: probeName('web'), labels: { app: 'web' }, secretName: 'web-tls', args: mtlsArgs(pod.status!.podIP!, 'api') });
      expect(r.log).toContain('"ok":true');
      expect(r.passed).toBe(true);
      expect(norm(r.lines[0]?.servedSerial)).toBe(norm(serial));
    }
    // The same peer without a client certificate gets through the NetworkPolicy but not the
    // server: under TLS 1.3 that is only visible once the client tries to read the response.
    const ip = pods[0]!.status!.podIP!;
    const anonymous = await runProbe(c, { namespace: ns, name: probeName('web'), labels: { app: 'web' }, secretName: 'web-tls',
      args: ['--url', `https://${ip}:${TLS_PORT}/`, '--ca', '/trust/ca.crt', '--server-name', `api.${ns}.svc`, '--timeout', '3s'] });
    expect(anonymous.passed).toBe(false);
    expect(anonymous.lines[0]?.error).toMatch(/certificate required/);
  }, 180_000);

  itNode('a renewal reaches the running pods through the kubelet and is served without a restart or a failed request', async () => {
    const [pod] = await readyPods(c, ns, { app: 'api' }, 2);
    const ip = pod!.status!.podIP!;
    const before = await secretSerial('api');
    const loop = await startLoopProbe(c, { namespace: ns, name: probeName('loop'), labels: { app: 'web' }, secretName: 'web-tls', args: mtlsArgs(ip, 'api', ['--interval', '250ms']) });
    try {
      await eventually('the loop probe succeeds', async () => ((await loop.lines()).some((l) => l.ok) ? true : undefined), 30_000);
      await forceRenewal('api');
      const after = await eventually('a new certificate in api-tls', async () => {
        const s = await secretSerial('api');
        return s !== before ? s : undefined;
      }, 60_000);
      const secretChanged = Date.now();
      await eventually('the pod serves the renewed certificate', async () => {
        const lines = await loop.lines();
        return lines.some((l) => l.ok && norm(l.servedSerial) === norm(after)) ? true : undefined;
      }, 120_000, 500);
      console.log(`renewed certificate served by the pod ${((Date.now() - secretChanged) / 1000).toFixed(1)}s after the Secret changed (kubelet syncFrequency from e2e/node/node.env)`);
      await sleep(1_000);
      const lines = await loop.lines();
      const failed = lines.filter((l) => !l.ok);
      console.log(`requests across the renewal: ${lines.length - failed.length} ok, ${failed.length} failed`);
      expect(failed).toEqual([]);
      expect(lines.some((l) => norm(l.servedSerial) === norm(before))).toBe(true);
    } finally {
      await loop.stop();
    }
    // Same pods: the renewal needed no restart.
    const now = await readyPods(c, ns, { app: 'api' }, 2);
    expect(now.map((p) => p.metadata?.uid)).toContain(pod!.metadata?.uid);
  }, 240_000);

  itNode('a workload that loads its certificate only at start is rolled by a rotation, and the new pods serve the new certificate', async () => {
    await apply(service('legacy', { workload: { selector: { matchLabels: { app: 'legacy' } }, serviceAccountName: 'legacy', restart: { kind: 'Deployment', name: 'legacy', hotReload: false, maxUnavailable: 1 } } }));
    await waitForCondition(c, ns, 'legacy', 'Ready', 'True');
    for (const o of tlsServer({ namespace: ns, name: 'legacy', labels: { app: 'legacy' }, serviceAccountName: 'legacy', secretName: 'legacy-tls', replicas: 2, args: ['--reload=start'] })) await apply(o);
    const before = await readyPods(c, ns, { app: 'legacy' }, 2);
    const oldSerial = await secretSerial('legacy');

    await apply({
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule',
      metadata: { name: 'legacy', namespace: ns, annotations: { 'lockstep.dev/rotate-now': 'e2e' } },
      spec: { targets: { names: ['legacy'] }, rotate: ['certificates'], strategy: { canarySteps: [100], verification: { timeout: '120s' } } },
    });
    const rs: RotationSchedule = await waitForSchedule(c, ns, 'legacy', 'Completed', (r) => r.status?.phase === 'Completed' || r.status?.phase === 'RolledBack' || r.status?.phase === 'Failed', 240_000);
    expect(rs.status?.phase).toBe('Completed');
    const newSerial = await secretSerial('legacy');
    expect(newSerial).not.toBe(oldSerial);

    // Real pods rolled: none of the old ones is left, and the template carries restartedAt.
    const after = await readyPods(c, ns, { app: 'legacy' }, 2);
    const oldUids = new Set(before.map((p) => p.metadata?.uid));
    expect(after.filter((p) => oldUids.has(p.metadata?.uid))).toEqual([]);
    const deployment = await c.kc.makeApiClient(k8s.AppsV1Api).readNamespacedDeployment({ namespace: ns, name: 'legacy' });
    expect(deployment.spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']).toBeTruthy();
    for (const pod of after) {
      const r = await runProbe(c, { namespace: ns, name: probeName('legacy'), labels: { app: 'web' }, secretName: 'web-tls', args: mtlsArgs(pod.status!.podIP!, 'legacy') });
      // legacy declares no peers: only the operator's probe source may reach it, so web is dropped...
      expect(r.passed).toBe(false);
    }
    // ...while the operator's own probe source reaches the new pods and sees the new certificate.
    for (const pod of after) {
      const r = await runProbe(c, { namespace: opsNs, name: probeName('operator'), labels: { ...OPERATOR_POD_LABELS }, args: ['--url', `https://${pod.status!.podIP!}:${TLS_PORT}/`, '--tcp-only', '--timeout', '3s'] });
      expect(r.passed).toBe(true);
    }
  }, 360_000);
});

describe('rotations on real pods', () => {
  const rotateNow = (name: string, targets: string[], canarySteps: number[]) => apply({
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule',
    metadata: { name, namespace: ns, annotations: { 'lockstep.dev/rotate-now': 'e2e' } },
    spec: { targets: { names: targets }, rotate: ['certificates'], strategy: { canarySteps, pauseBetweenSteps: '1s', verification: { timeout: '180s' } } },
  });
  const finalPhase = (name: string) => waitForSchedule(c, ns, name, 'a final phase',
    (r) => ['Completed', 'RolledBack', 'Failed'].includes(r.status?.phase ?? ''), 300_000);

  itNode('a StatefulSet that cannot reload is restarted pod by pod, and its new pods serve the new certificate', async () => {
    await apply(service('ledger', { workload: { selector: { matchLabels: { app: 'ledger' } }, serviceAccountName: 'ledger', restart: { kind: 'StatefulSet', name: 'ledger', hotReload: false } } }));
    await waitForCondition(c, ns, 'ledger', 'Ready', 'True');
    for (const o of tlsServer({ kind: 'StatefulSet', namespace: ns, name: 'ledger', labels: { app: 'ledger' }, serviceAccountName: 'ledger', secretName: 'ledger-tls', replicas: 2, args: ['--reload=start'] })) await apply(o);
    const before = await readyPods(c, ns, { app: 'ledger' }, 2);
    const oldSerial = await secretSerial('ledger');
    await rotateNow('ledger', ['ledger'], [100]);
    const rs = await finalPhase('ledger');
    expect(rs.status?.phase).toBe('Completed');
    expect(await secretSerial('ledger')).not.toBe(oldSerial);
    const after = await readyPods(c, ns, { app: 'ledger' }, 2);
    // Same pod names (a StatefulSet's identity), new pods.
    expect(after.map((p) => p.metadata?.name).sort()).toEqual(before.map((p) => p.metadata?.name).sort());
    const oldUids = new Set(before.map((p) => p.metadata?.uid));
    expect(after.filter((p) => oldUids.has(p.metadata?.uid))).toEqual([]);
  }, 420_000);

  itNode('leaf rotation canary first across services while pods call them with mTLS: zero failed requests', async () => {
    const names = ['alpha', 'bravo'];
    for (const name of names) {
      await apply(service(name, { access: { ingress: [{ service: { name: 'web' }, ports: ['https'] }] } }));
    }
    for (const name of names) {
      await waitForCondition(c, ns, name, 'Ready', 'True');
      for (const o of tlsServer({ namespace: ns, name, labels: { app: name }, serviceAccountName: name, secretName: `${name}-tls` })) await apply(o);
    }
    const before = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await secretSerial(n)] as const)));
    const loops = [];
    for (const name of names) {
      const [pod] = await readyPods(c, ns, { app: name }, 1);
      loops.push(await startLoopProbe(c, { namespace: ns, name: probeName(`loop-${name}`), labels: { app: 'web' }, secretName: 'web-tls', args: mtlsArgs(pod!.status!.podIP!, name, ['--interval', '200ms']) }));
    }
    try {
      for (const loop of loops) await eventually('the loop probe succeeds', async () => ((await loop.lines()).some((l) => l.ok) ? true : undefined), 30_000);
      await rotateNow('leaves', names, [50, 100]);
      const rs = await finalPhase('leaves');
      expect(rs.status?.phase).toBe('Completed');
      expect(rs.status?.targets?.map((t) => [t.name, t.step, t.phase])).toEqual([['alpha', 0, 'Succeeded'], ['bravo', 1, 'Succeeded']]);
      await sleep(1_000);
      for (const [i, name] of names.entries()) {
        const lines = await loops[i]!.lines();
        const failed = lines.filter((l) => !l.ok);
        console.log(`${name}: ${lines.length - failed.length} requests ok, ${failed.length} failed across the rotation`);
        expect(failed).toEqual([]);
        const now = await secretSerial(name);
        expect(now).not.toBe(before[name]);
        expect(norm(lines.at(-1)?.servedSerial)).toBe(norm(now));
      }
    } finally {
      for (const loop of loops) await loop.stop();
    }
  }, 420_000);
});

describe('NetworkPolicies enforced on the node', () => {
  const tcp = (ip: string, port: number) => ['--url', `https://${ip}:${port}/`, '--tcp-only', '--timeout', '3s'];

  itNode('an undeclared pod is dropped even with a valid certificate; the same pod reaches an unprotected one', async () => {
    const [api] = await readyPods(c, ns, { app: 'api' }, 2);
    // Control: without a policy around it, the intruder connects (so a drop below is the policy's).
    for (const o of tlsServer({ namespace: ns, name: 'open', labels: { app: 'open' }, serviceAccountName: 'web', secretName: 'web-tls' })) await apply(o);
    const [open] = await readyPods(c, ns, { app: 'open' }, 1);
    const control = await runProbe(c, { namespace: ns, name: probeName('intruder'), labels: { app: 'intruder' }, args: tcp(open!.status!.podIP!, TLS_PORT) });
    expect(control.passed).toBe(true);

    const denied = await runProbe(c, { namespace: ns, name: probeName('intruder'), labels: { app: 'intruder' }, secretName: 'web-tls', args: mtlsArgs(api!.status!.podIP!, 'api') });
    expect(denied.passed).toBe(false);
    expect(denied.lines.every((l) => !l.ok)).toBe(true);
  }, 180_000);

  itNode('a declared peer gets through on the declared port only', async () => {
    const [api] = await readyPods(c, ns, { app: 'api' }, 2);
    const ip = api!.status!.podIP!;
    const tls = await runProbe(c, { namespace: ns, name: probeName('web'), labels: { app: 'web' }, args: tcp(ip, TLS_PORT) });
    expect(tls.passed).toBe(true);
    const plaintext = await runProbe(c, { namespace: ns, name: probeName('web'), labels: { app: 'web' }, args: tcp(ip, PLAINTEXT_PORT) });
    expect(plaintext.passed).toBe(false);
  }, 120_000);

  itNode("the operator's probes get through on the TLS port, only from the operator's namespace", async () => {
    const [api] = await readyPods(c, ns, { app: 'api' }, 2);
    const ip = api!.status!.podIP!;
    const fromOperator = await runProbe(c, { namespace: opsNs, name: probeName('operator'), labels: { ...OPERATOR_POD_LABELS }, args: tcp(ip, TLS_PORT) });
    expect(fromOperator.passed).toBe(true);
    const plaintext = await runProbe(c, { namespace: opsNs, name: probeName('operator'), labels: { ...OPERATOR_POD_LABELS }, args: tcp(ip, PLAINTEXT_PORT) });
    expect(plaintext.passed).toBe(false);
    // The same labels in the tenant's namespace are not the operator.
    const impostor = await runProbe(c, { namespace: ns, name: probeName('impostor'), labels: { ...OPERATOR_POD_LABELS }, args: tcp(ip, TLS_PORT) });
    expect(impostor.passed).toBe(false);
  }, 120_000);
});

describe('pod traffic stays on the machine', () => {
  const nodeEnv = () => {
    const out = execFileSync('bash', ['-c', '. e2e/node/node.env && echo "$NODE_BRIDGE $POD_CIDR $SERVICE_CIDR"'], { encoding: 'utf8' }).trim();
    const [bridge, podCidr, serviceCidr] = out.split(' ');
    return { bridge: bridge!, podCidr: podCidr!, serviceCidr: serviceCidr! };
  };
  const guardPackets = (bridge: string, podCidr: string): number => {
    const rules = execFileSync('iptables', ['-w', '-L', 'FORWARD', '-v', '-x', '-n'], { encoding: 'utf8' });
    const line = rules.split('\n').find((l) => l.includes('DROP') && l.includes(bridge) && l.includes(`!${podCidr}`));
    if (!line) throw new Error(`the FORWARD guard for ${bridge} is missing:\n${rules}`);
    return Number(line.trim().split(/\s+/)[0]);
  };

  itNode('a pod connecting to an outside private address or an unserved ClusterIP is stopped on the node', async () => {
    const { bridge, podCidr, serviceCidr } = nodeEnv();
    // Both guards must be in place before a single packet is sent.
    const before = guardPackets(bridge, podCidr);
    const clusterIp = serviceCidr.replace(/0\/\d+$/, '1');
    expect(execFileSync('ip', ['route', 'show', 'type', 'blackhole'], { encoding: 'utf8' })).toContain(serviceCidr);
    // The kernel has no route out for a pod's packet to a ClusterIP (without the blackhole it
    // would follow the default route to the uplink).
    const podSource = podCidr.replace(/0\/\d+$/, '250');
    expect(() => execFileSync('ip', ['route', 'get', clusterIp, 'from', podSource, 'iif', bridge], { stdio: 'pipe' })).toThrow(/No route to host|Invalid argument/);

    const outside = await runProbe(c, { namespace: ns, name: probeName('outside'), labels: { app: 'egress' }, args: ['--url', 'https://10.123.45.67:443/', '--tcp-only', '--timeout', '2s'] });
    expect(outside.passed).toBe(false);
    expect(guardPackets(bridge, podCidr)).toBeGreaterThan(before);

    const service = await runProbe(c, { namespace: ns, name: probeName('clusterip'), labels: { app: 'egress' }, args: ['--url', `https://${clusterIp}:443/`, '--tcp-only', '--timeout', '2s'] });
    expect(service.passed).toBe(false);
  }, 120_000);
});
