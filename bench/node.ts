// Figures of the local node (e2e/node/), measured on the cluster KUBECONFIG points at (the local
// control plane with its node: `make cluster-up`). Prints, does not assert:
//   - pod start: Pod created → Running, as a client sees it (sequential, pause image);
//   - Secret update → the new file served by a pod (tlsapp --reload=watch polls its files every
//     100 ms, so the figure is the kubelet's delivery plus at most 0.1 s).
// Usage: npx tsx bench/node.ts [--pods 10] [--updates 5]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';

const { values } = parseArgs({ options: { pods: { type: 'string', default: '10' }, updates: { type: 'string', default: '5' } } });
const kc = new k8s.KubeConfig();
kc.loadFromDefault();
const core = kc.makeApiClient(k8s.CoreV1Api);
const ns = `bench-node-${process.pid}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const restricted = {
  runAsNonRoot: true, runAsUser: 65532, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}
function summary(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  return `p50 ${(percentile(s, 50) / 1000).toFixed(2)} s, p90 ${(percentile(s, 90) / 1000).toFixed(2)} s, max ${((s.at(-1) ?? NaN) / 1000).toFixed(2)} s (n=${s.length})`;
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

async function podStarts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const name = `start-${i}`;
    const t0 = Date.now();
    await core.createNamespacedPod({ namespace: ns, body: {
      metadata: { name },
      spec: { automountServiceAccountToken: false, terminationGracePeriodSeconds: 0, containers: [{ name: 'pause', image: 'lockstep.local/pause:dev', imagePullPolicy: 'Never', securityContext: restricted }] },
    } });
    await waitFor(`${name} Running`, async () => ((await core.readNamespacedPod({ namespace: ns, name })).status?.phase === 'Running' ? true : undefined));
    out.push(Date.now() - t0);
    await core.deleteNamespacedPod({ namespace: ns, name, gracePeriodSeconds: 0 });
  }
  return out;
}

function selfSigned(dir: string, cn: string): { crt: string; key: string } {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', `/CN=${cn}`, '-keyout', join(dir, `${cn}.key`), '-out', join(dir, `${cn}.crt`)], { stdio: 'ignore' });
  return { crt: readFileSync(join(dir, `${cn}.crt`), 'utf8'), key: readFileSync(join(dir, `${cn}.key`), 'utf8') };
}

async function secretToFile(updates: number): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-node-'));
  try {
    const pairs = [selfSigned(dir, 'a'), selfSigned(dir, 'b')];
    const data = (p: { crt: string; key: string }) => ({ 'tls.crt': p.crt, 'tls.key': p.key, 'ca.crt': p.crt });
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'tls' }, type: 'Opaque', stringData: data(pairs[0]!) } });
    await core.createNamespacedPod({ namespace: ns, body: {
      metadata: { name: 'serve' },
      spec: {
        automountServiceAccountToken: false, terminationGracePeriodSeconds: 0,
        volumes: [{ name: 'tls', secret: { secretName: 'tls' } }],
        containers: [{
          name: 'tlsapp', image: 'lockstep.local/tlsapp:dev', imagePullPolicy: 'Never', securityContext: restricted,
          args: ['serve', '--listen', ':8443', '--cert', '/tls/tls.crt', '--key', '/tls/tls.key', '--ca', '/tls/ca.crt', '--client-auth', 'none', '--reload', 'watch', '--poll', '100ms'],
          volumeMounts: [{ name: 'tls', mountPath: '/tls', readOnly: true }],
        }],
      },
    } });
    await waitFor('serve Running', async () => ((await core.readNamespacedPod({ namespace: ns, name: 'serve' })).status?.phase === 'Running' ? true : undefined));
    const reloads = async () => (await core.readNamespacedPodLog({ namespace: ns, name: 'serve' })).split('\n').filter((l) => l.includes('"reloaded"')).length;
    const out: number[] = [];
    for (let i = 1; i <= updates; i++) {
      const seen = await reloads();
      const t0 = Date.now();
      await core.replaceNamespacedSecret({ namespace: ns, name: 'tls', body: { metadata: { name: 'tls' }, type: 'Opaque', stringData: data(pairs[i % 2]!) } });
      await waitFor('the pod reloads the new files', async () => ((await reloads()) > seen ? true : undefined), 180_000, 100);
      out.push(Date.now() - t0);
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const nodeEnv = execFileSync('bash', ['-c', '. e2e/node/node.env && echo "$KUBELET_SYNC_FREQUENCY"'], { encoding: 'utf8' }).trim();
await core.createNamespace({ body: { metadata: { name: ns } } });
try {
  const starts = await podStarts(Number(values.pods));
  const delivery = await secretToFile(Number(values.updates));
  console.log(`node figures (${new Date().toISOString().slice(0, 10)}, ${(await core.listNode()).items[0]?.status?.nodeInfo?.kubeletVersion ?? '?'} kubelet)`);
  console.log(`  pod start (create → Running, pause image):      ${summary(starts)}`);
  console.log(`  Secret update → file served by the pod:        ${summary(delivery)}  [kubelet syncFrequency ${nodeEnv}, configMapAndSecretChangeDetectionStrategy Watch]`);
} finally {
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
}
