// A second, encrypting API server beside the local cluster's, for e2e/kms.e2e.test.ts: the same
// kube-apiserver binary, etcd and certificates the cluster runs with (read from the command line
// cluster-up.sh recorded), its own port and `--etcd-prefix`, and an EncryptionConfiguration that
// sends Secrets through Lockstep's KMS v2 plugin (`lockstep kms-plugin`, a process of its own so
// the test can stop it). What it stores is read straight from etcd with etcdctl.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { repoRoot } from './manifests.js';

const run = promisify(execFile);

/** The local cluster's recorded command line of one process (cluster-up.sh's argv/<name>), or undefined. */
export function recordedArgv(name: string): string[] | undefined {
  const kubeconfig = process.env.KUBECONFIG;
  if (!kubeconfig) return undefined;
  const file = join(dirname(kubeconfig), 'argv', name);
  if (!existsSync(file)) return undefined;
  return readFileSync(file, 'utf8').split('\0').filter((a) => a !== '');
}

/** `--flag value` or `--flag=value` from a command line. */
export function flag(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (arg === `--${name}`) return argv[i + 1];
    if (arg.startsWith(`--${name}=`)) return arg.slice(name.length + 3);
  }
  return undefined;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A process of the test, its output in `log`, stopped by signal. */
export class Proc {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    private readonly argv: readonly string[],
    readonly log: string,
    private readonly cwd = repoRoot,
    /** Added to this process's environment (e.g. SOFTHSM2_CONF for a plugin on a SoftHSM token). */
    private readonly env: Record<string, string> = {},
  ) {}

  start(): void {
    const fd = openSync(this.log, 'a');
    const child = spawn(this.argv[0]!, this.argv.slice(1), { cwd: this.cwd, stdio: ['ignore', fd, fd], env: { ...process.env, ...this.env } });
    closeSync(fd);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    this.child = child;
  }

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.running()) return;
    this.child!.kill(signal);
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  tail(lines = 30): string {
    return existsSync(this.log) ? readFileSync(this.log, 'utf8').split('\n').slice(-lines).join('\n') : '';
  }
}

/** etcdctl built from the cluster's etcd version (build.sh etcdctl). */
export async function buildEtcdctl(): Promise<string> {
  const { stdout } = await run('bash', [join(repoRoot, 'e2e/controlplane/build.sh'), 'etcdctl'], { maxBuffer: 16 << 20 });
  const dir = stdout.split('\n').find((l) => l.startsWith('etcdctl='))?.slice('etcdctl='.length);
  if (!dir) throw new Error(`build.sh etcdctl printed no directory: ${stdout}`);
  return join(dir, 'etcdctl');
}

/** The value etcd holds at `key` (exactly the bytes the API server wrote), or undefined. */
export async function etcdValue(etcdctl: string, endpoints: string, key: string): Promise<Buffer | undefined> {
  const { stdout } = await run(etcdctl, ['--endpoints', endpoints, 'get', key, '-w', 'json'], { maxBuffer: 16 << 20 });
  const kvs = (JSON.parse(stdout) as { kvs?: Array<{ value: string }> }).kvs;
  return kvs?.[0] ? Buffer.from(kvs[0].value, 'base64') : undefined;
}

export async function etcdDeletePrefix(etcdctl: string, endpoints: string, prefix: string): Promise<void> {
  await run(etcdctl, ['--endpoints', endpoints, 'del', '--prefix', prefix]);
}

export const KMS_V2_PREFIX = 'k8s:enc:kms:v2:';

export interface StoredEnvelope {
  /** The KMS provider's name from the EncryptionConfiguration (`lockstep`). */
  readonly provider: string;
  /** The plugin's key ID the API server recorded for this object. */
  readonly keyId: string;
  /** The DEK source as the plugin encrypted it (Lockstep's ciphertext: it names its key too). */
  readonly encryptedDEKSource: Buffer;
  readonly encryptedData: Buffer;
}

function varint(buf: Buffer, at: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = buf[at]!;
    at += 1;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, at];
    shift += 7;
  }
}

/**
 * `k8s:enc:kms:v2:<provider>:` + the API server's EncryptedObject protobuf (k8s.io/apiserver
 * kmsv2/v2: encryptedData=1, keyID=2, encryptedDEKSource=3, annotations=4, type=5), read with a
 * few lines of wire format rather than a protobuf dependency.
 */
export function parseStoredEnvelope(value: Buffer): StoredEnvelope {
  const text = value.subarray(0, 200).toString('latin1');
  if (!text.startsWith(KMS_V2_PREFIX)) throw new Error('not a KMS v2 value');
  const providerEnd = text.indexOf(':', KMS_V2_PREFIX.length);
  const provider = text.slice(KMS_V2_PREFIX.length, providerEnd);
  const body = value.subarray(providerEnd + 1);
  const fields = new Map<number, Buffer>();
  for (let at = 0; at < body.length; ) {
    const [tag, next] = varint(body, at);
    const [field, wire] = [Math.floor(tag / 8), tag % 8];
    if (wire === 0) {
      at = varint(body, next)[1];
    } else if (wire === 2) {
      const [length, start] = varint(body, next);
      fields.set(field, body.subarray(start, start + length));
      at = start + length;
    } else {
      throw new Error(`unexpected wire type ${wire}`);
    }
  }
  return {
    provider,
    keyId: (fields.get(2) ?? Buffer.alloc(0)).toString('utf8'),
    encryptedDEKSource: fields.get(3) ?? Buffer.alloc(0),
    encryptedData: fields.get(1) ?? Buffer.alloc(0),
  };
}

/** The cluster's admin kubeconfig pointed at another port of the same host (same CA, same client certificate). */
export function kubeConfigFor(port: number): k8s.KubeConfig {
  const text = readFileSync(process.env.KUBECONFIG!, 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${port}`);
  const kc = new k8s.KubeConfig();
  kc.loadFromString(text);
  return kc;
}

/** GET a raw path of the API server: its HTTP status (healthz and readyz checks). */
export async function rawStatus(kc: k8s.KubeConfig, path: string): Promise<number> {
  const cluster = kc.getCurrentCluster()!;
  const opts: RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  return new Promise((resolve, reject) => {
    const req = request(`${cluster.server}${path}`, { ...opts, method: 'GET', timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
