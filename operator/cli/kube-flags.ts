// kubectl's cluster flags for every command (--kubeconfig, --context, --request-timeout; -n is
// each command's own), loading the kubeconfig with errors a user can act on, and telling a
// failure to reach the cluster (exit 3) from any other. Reads files; talks to no cluster.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { isDuration, parseDuration } from '../api/v1alpha1/duration.js';
import { CliError, EXIT } from './errors.js';

export interface KubeFlags {
  readonly kubeconfig?: string;
  readonly context?: string;
  /** 0 or absent: no timeout. */
  readonly requestTimeoutMs?: number;
}

export const KUBE_FLAGS_USAGE = `Cluster flags (any command that talks to a cluster; like kubectl's):
  --kubeconfig FILE        kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, in-cluster)
  --context NAME           kubeconfig context to use (default: its current-context)
  -n, --namespace NS       namespace (default: the context's namespace, else "default")
  --request-timeout T      give up on each API request after T (500ms, 30s, 1m; 0: never)
`;

const GLOBAL = new Set(['--kubeconfig', '--context', '--request-timeout']);

/** Takes the cluster flags out of argv wherever they stand (kubectl accepts them anywhere). */
export function extractKubeFlags(argv: readonly string[]): { flags: KubeFlags; rest: string[] } {
  const found: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!GLOBAL.has(name)) {
      rest.push(arg);
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') throw new CliError(`${name} needs a value`, EXIT.usage);
    found[name.slice(2)] = value;
  }
  const timeout = found['request-timeout'];
  return {
    flags: {
      ...(found.kubeconfig !== undefined ? { kubeconfig: found.kubeconfig } : {}),
      ...(found.context !== undefined ? { context: found.context } : {}),
      ...(timeout !== undefined ? { requestTimeoutMs: parseRequestTimeout(timeout) } : {}),
    },
    rest,
  };
}

/** A duration flag in ms: a Go duration (500ms, 30s, 1m30s) or, like kubectl, a bare number of seconds. */
export function durationFlag(flag: string, value: string): number {
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (isDuration(text)) return parseDuration(text);
  throw new CliError(`${flag} ${JSON.stringify(value)}: give a duration like 500ms, 30s or 1m`, EXIT.usage);
}

/** kubectl's --request-timeout (0: no timeout). */
export const parseRequestTimeout = (text: string): number => durationFlag('--request-timeout', text);

/** A KubeConfig whose API requests are aborted after the request timeout. */
class TimedKubeConfig extends k8s.KubeConfig {
  constructor(readonly requestTimeoutMs: number) {
    super();
  }

  override async applySecurityAuthentication(context: k8s.RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    if (this.requestTimeoutMs > 0) context.setSignal(AbortSignal.timeout(this.requestTimeoutMs));
  }
}

const unusable = (message: string) => new CliError(message, EXIT.unreachable);

/** Parses one kubeconfig file far enough that client-node's loader cannot fail with a TypeError. */
function checkKubeconfigFile(path: string): void {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, 'utf8'));
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT') throw unusable(`kubeconfig ${path} does not exist`);
    throw unusable(`kubeconfig ${path} cannot be read: ${code === 'EACCES' ? 'permission denied' : (err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw unusable(`kubeconfig ${path} is ${doc == null ? 'empty' : 'not a kubeconfig'}: expected a YAML mapping with clusters, contexts and users`);
  }
  for (const key of ['clusters', 'contexts', 'users']) {
    const value = (doc as Record<string, unknown>)[key];
    if (value != null && !Array.isArray(value)) throw unusable(`kubeconfig ${path}: ${key} must be a list`);
  }
}

function kubeconfigPaths(flags: KubeFlags, env: NodeJS.ProcessEnv): { paths: string[]; from: string } | undefined {
  if (flags.kubeconfig) return { paths: [flags.kubeconfig], from: '--kubeconfig' };
  if (env.KUBECONFIG) {
    const listed = env.KUBECONFIG.split(delimiter).filter((p) => p !== '');
    // Like kubectl: files in a KUBECONFIG list that do not exist are skipped, unless all are missing.
    const present = listed.filter((p) => existsSync(p));
    if (present.length === 0) throw unusable(`KUBECONFIG names ${listed.join(delimiter) || 'nothing'}, which does not exist`);
    return { paths: present, from: 'KUBECONFIG' };
  }
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return { paths: [home], from: home };
  return undefined;
}

/** The kubeconfig the flags and environment name, with the chosen context, or a CliError (exit 3). */
export function loadKubeConfig(flags: KubeFlags, env: NodeJS.ProcessEnv = process.env): k8s.KubeConfig {
  const kc = new TimedKubeConfig(flags.requestTimeoutMs ?? 0);
  const source = kubeconfigPaths(flags, env);
  if (source) {
    for (const path of source.paths) checkKubeconfigFile(path);
    try {
      // loadFromFile resolves relative certificate paths against the file's folder.
      if (source.paths.length === 1) kc.loadFromFile(source.paths[0] ?? '');
      else kc.loadFromDefault();
    } catch (err) {
      throw unusable(`kubeconfig ${source.paths.join(delimiter)} is not usable: ${(err as Error).message}`);
    }
  } else if (env.KUBERNETES_SERVICE_HOST) {
    kc.loadFromCluster();
  } else {
    throw unusable('no kubeconfig: ~/.kube/config does not exist and KUBECONFIG is not set; pass --kubeconfig FILE');
  }
  const where = source ? `kubeconfig ${source.paths.join(delimiter)}` : 'the in-cluster config';
  const names = kc.getContexts().map((c) => c.name);
  const known = names.length ? `; contexts: ${names.join(', ')}` : '; it defines no contexts';
  if (flags.context) {
    if (!kc.getContextObject(flags.context)) throw unusable(`context "${flags.context}" not found in ${where}${known}`);
    kc.setCurrentContext(flags.context);
  }
  const current = kc.getCurrentContext();
  const context = current ? kc.getContextObject(current) : null;
  if (!context) throw unusable(`${where} has ${current ? `current-context "${current}", which it does not define` : 'no current-context'}; pass --context${known}`);
  if (!kc.getCurrentCluster()) throw unusable(`context "${current}" in ${where} names cluster "${context.cluster}", which it does not define`);
  return kc;
}

/** The namespace commands use without -n: the context's, else "default" (like kubectl). */
export function contextNamespace(kc: k8s.KubeConfig): string {
  return kc.getContextObject(kc.getCurrentContext())?.namespace || 'default';
}

const NETWORK_CODES = /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EPIPE|CERT_|ERR_TLS_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/;

/**
 * Why a request never got an answer the command can use (no route, refused, timed out, TLS,
 * credentials refused), or undefined for any other error. Carries no secret: codes and statuses only.
 */
export function clusterFailure(err: unknown, requestTimeoutMs?: number): string | undefined {
  const e = err as { name?: string; code?: unknown; type?: string; message?: string; cause?: unknown };
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError' || e?.type === 'aborted') {
    return `no answer within the request timeout${requestTimeoutMs ? ` (${requestTimeoutMs} ms)` : ''}`;
  }
  if (typeof e?.code === 'number') {
    if (e.code === 401) return 'the API server refused the credentials (401 Unauthorized)';
    return undefined;
  }
  const code = typeof e?.code === 'string' ? e.code : (e?.cause as { code?: string } | undefined)?.code;
  if (code?.startsWith('ERR_OSSL')) return `the kubeconfig's client certificate, key or CA data cannot be read (${code})`;
  if (code && NETWORK_CODES.test(code)) return `${code}${code.startsWith('E') ? '' : ' (TLS)'}`;
  if (e?.name === 'FetchError') return (e.message ?? 'request failed').replace(/^request to \S+ failed, reason: /, '');
  return undefined;
}
