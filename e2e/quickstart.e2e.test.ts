// The README's quickstart as a user runs it: `examples/quickstart/run.sh` against this cluster
// (KUBECONFIG set, so it starts nothing) in a namespace of its own, with a greeting of its own.
// It must exit 0 after a green `kubectl lockstep status`; then the test checks, apart from the
// script's output, what the quickstart claims: the sealed value reached the api pod and crosses
// mutual TLS to the frontend, a client without a certificate gets nothing, the access policy holds.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { clients } from './harness/cluster.js';
import { deleteNamespaceAndFinalize } from './harness/lockstep.js';
import { repoRoot } from './harness/manifests.js';
import { operatorPodCount, removeOperatorDeployment } from './harness/operator-pods.js';
import { nodeReady, nodeTest, parseLines, type ProbeLine } from './harness/pods.js';

const c = clients();
const ns = `e2e-quickstart-${randomBytes(3).toString('hex')}`;
const greeting = `sealed in e2e ${randomBytes(6).toString('hex')}`;
const work = mkdtempSync(join(tmpdir(), 'lockstep-quickstart-'));
let haveNode = false;
let operatorWasInstalled = false;
let script = { code: -1 as number | null, out: '' };

/** Runs the quickstart without blocking the event loop (jest's timers keep running). */
function runQuickstart(): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['examples/quickstart/run.sh'], {
      cwd: repoRoot, env: { ...process.env, NAMESPACE: ns, GREETING: greeting, QUICKSTART_DIR: work }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
    child.on('close', (code) => resolve({ code, out }));
  });
}

const kubectl = (...args: string[]) => execFileSync('kubectl', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const podIp = (app: string) => kubectl('get', 'pod', '-n', ns, '-l', `app.kubernetes.io/name=${app}`, '--field-selector', 'status.phase=Running',
  '-o', 'jsonpath={.items[0].status.podIP}');

/** `tlsapp probe` from inside a pod of `from` (its network namespace, its mounted certificate). */
async function probeFrom(from: string, to: string, ...flags: string[]): Promise<{ passed: boolean; line?: ProbeLine }> {
  const args = ['exec', '-n', ns, `deploy/${from}`, '--', '/tlsapp', 'probe', '--url', `https://${podIp(to)}:8443/`,
    '--server-name', `${to}.${ns}.svc`, '--ca', '/trust/ca.crt', '--timeout', '3s', ...flags];
  const r = await promisify(execFile)('kubectl', args, { cwd: repoRoot, encoding: 'utf8' }).then(
    (ok) => ({ passed: true, stdout: ok.stdout }),
    (err: { stdout?: string }) => ({ passed: false, stdout: err.stdout ?? '' }),
  );
  return { passed: r.passed, line: parseLines(r.stdout)[0] };
}
const CLIENT_CERT = ['--cert', '/tls/tls.crt', '--key', '/tls/tls.key'];

beforeAll(async () => {
  haveNode = await nodeReady(c);
  if (!haveNode) return;
  operatorWasInstalled = (await operatorPodCount(c)) > 0;
  const started = Date.now();
  script = await runQuickstart();
  console.log(`quickstart exit ${script.code} after ${((Date.now() - started) / 1000).toFixed(1)}s; ${script.out.match(/\[quickstart\] green.*/)?.[0] ?? 'not green'}`);
}, 240_000);

afterAll(async () => {
  rmSync(work, { recursive: true, force: true });
  if (!haveNode) return;
  // The operator pods finalize the namespace's services and policy before they are removed.
  await deleteNamespaceAndFinalize(c, ns);
  if (!operatorWasInstalled) await removeOperatorDeployment(c);
}, 120_000);

const itNode = nodeTest(() => haveNode);

describe('make quickstart on the local node', () => {
  itNode('runs to the end and exits 0 after a green status', async () => {
    if (script.code !== 0) console.log(script.out);
    expect(script.code).toBe(0);
    // The script stops at the first failing step (set -e): its last step, status, exited 0 with every service Ready.
    const status = script.out.slice(script.out.indexOf(`$ kubectl lockstep status -n ${ns}`));
    for (const service of ['frontend', 'api', 'store']) expect(status).toMatch(new RegExp(`${ns}\\s+${service}\\s+yes\\s`));
    // The greeting went into the service file sealed (a JWE), never in clear.
    const file = readFileSync(join(work, 'services.yaml'), 'utf8');
    expect(file).toMatch(/- name: api-greeting\n\s+encryptedData:\n\s+message: eyJ[\w-]+\.[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+\n/);
    expect(file).not.toContain(greeting);
  });

  itNode('the value sealed during the quickstart reaches the api pod and crosses mutual TLS to the frontend', async () => {
    const r = await probeFrom('frontend', 'api', ...CLIENT_CERT);
    expect(r.line).toMatchObject({ ok: true, status: 200, message: greeting });
    // What the api served is the certificate the operator had issued for it.
    const tls = await c.core.readNamespacedSecret({ namespace: ns, name: 'api-tls' });
    const issued = new X509Certificate(Buffer.from(tls.data?.['tls.crt'] ?? '', 'base64'));
    expect(r.line?.servedSerial?.replace(/^0+/, '')).toBe(issued.serialNumber.toLowerCase().replace(/^0+/, ''));
  }, 30_000);

  itNode('mutual TLS is required: a frontend client without its certificate gets no answer', async () => {
    const r = await probeFrom('frontend', 'api', '--expect-fail');
    expect(r.passed).toBe(true);
    expect(r.line?.ok).toBe(false);
    expect(r.line?.message).toBeUndefined();
  }, 30_000);

  itNode('the access policy holds between the pods: api reaches store, frontend does not', async () => {
    expect((await probeFrom('api', 'store', ...CLIENT_CERT)).line).toMatchObject({ ok: true, status: 200 });
    const denied = await probeFrom('frontend', 'store', ...CLIENT_CERT, '--timeout', '2s', '--expect-fail');
    expect(denied.passed).toBe(true);
  }, 30_000);
});
