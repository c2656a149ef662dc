// The operator's settings, from the environment (the Deployment in manifests/ sets them).
import { hostname } from 'node:os';
import { parseDuration, type IssuerRef } from './api/v1alpha1/index.js';
import type { ProbeSource } from './encryptedservice/network-policy.js';
import type { AuditRateLimit } from './audit/rate-limit.js';
import { parseIssuerSetting } from './encryptedservice/policy.js';
import { parseLogLevel, type LogLevel } from './runtime/logger.js';
import type { RateLimit } from './runtime/token-bucket.js';

export const OPERATOR_VERSION = '0.1.0';

/** The labels of the operator's pods in manifests/ (its Deployment's selector). */
export const OPERATOR_POD_LABELS: Readonly<Record<string, string>> = {
  'app.kubernetes.io/name': 'lockstep-operator',
  'app.kubernetes.io/instance': 'lockstep',
};

export interface OperatorConfig {
  /** Unique per replica: the pod name in a cluster. */
  identity: string;
  /** The operator's own namespace (LOCKSTEP_NAMESPACE, else POD_NAMESPACE): its Leases live there. */
  namespace: string;
  leaderElection: { namespace: string; leaseName: string } | undefined;
  /** Port of /metrics, /healthz, /readyz; undefined for none. */
  healthPort: number | undefined;
  healthHost: string | undefined;
  defaultIssuer: IssuerRef | undefined;
  logLevel: LogLevel;
  /** Admitted by every generated NetworkPolicy on the TLS ports, so verification can connect;
   * undefined when LOCKSTEP_PROBE_POD_LABELS is `off`. */
  probeSource?: ProbeSource;
  /** cert-manager's --cluster-resource-namespace, where managed CA roots live; `cert-manager` when unset. */
  clusterResourceNamespace?: string;
  /**
   * How long the kubelet may take to deliver a changed Secret to every pod that mounts it
   * (LOCKSTEP_SECRET_PROPAGATION, default 2m: syncFrequency 1m plus its cache). A CA rotation
   * withdraws the old root only this long after the last leaf moved, so clients that mount a
   * service's Secret without serving (not endpoints) hold the new leaf by then.
   */
  secretPropagationMs: number;
  /**
   * How long a CRL Lockstep signs is valid (LOCKSTEP_CRL_VALIDITY, default 24h); it is signed
   * again half-way (operator/revocation).
   */
  crlValidityMs?: number;
  /** Per audit trail: tenant-triggered entries (failed decrypts, policy violations) written one by
   * one per window; the rest are counted into one entry. DEFAULT_AUDIT_RATE_LIMIT when unset. */
  auditRateLimit?: AuditRateLimit;
  /** Live and archived audit segments kept per trail; AUDIT_MAX_SEGMENTS / AUDIT_ARCHIVE_SEGMENTS when unset. */
  auditRetention?: { liveSegments: number; archiveSegments: number };
  /** Continuous verification of every EncryptedService's endpoints; undefined when off. */
  verification?: VerificationSettings;
  /**
   * LOCKSTEP_ADOPT_UNTAGGED_STORES=true: envelope stores without an integrity tag (written by an
   * operator before tags existed) are trusted when their data key opens, and tagged. Off by
   * default: a tenant could strip a tag to make a changed store look old. Turn on for the upgrade.
   */
  adoptUntaggedStores?: boolean;
  /**
   * The CertificateRequest approver (LOCKSTEP_APPROVER). `identities` (default): requests that
   * claim a Lockstep identity are approved only when they match a declared EncryptedService and
   * denied otherwise; other requests are left to the cluster's approver (approver-policy).
   * `all`: Lockstep is the cluster's only approver and also approves requests that claim no
   * Lockstep identity, as cert-manager's built-in approver would. `off`: no approver.
   * Either way cert-manager's built-in approver must be off, or it approves first.
   */
  approver?: ApproverMode;
  /**
   * Client-side limit of the operator's API requests (LOCKSTEP_KUBE_QPS, LOCKSTEP_KUBE_BURST;
   * LOCKSTEP_KUBE_QPS=off for none). Lease renewals and watches are outside it.
   */
  kubeRateLimit?: RateLimit;
  /**
   * Longest wait for one API request's whole response (LOCKSTEP_KUBE_REQUEST_TIMEOUT, a duration;
   * REQUEST_TIMEOUT_DEFAULT_MS when unset). Watches are outside it.
   */
  kubeRequestTimeoutMs?: number;
  /** Parallel EncryptedService reconciles (LOCKSTEP_SERVICE_WORKERS); SERVICE_WORKERS_DEFAULT when unset. */
  serviceWorkers?: number;
}

/**
 * A reconcile mostly waits on the API server, so the EncryptedService controller's throughput is
 * workers / reconcile time until the client's rate limit binds. Measured at 1,000 new services
 * (docs/scale.md): 2 workers 274 s to Ready; 4 workers 208 s, peak RSS 183 MiB; 8 workers 190 s
 * but peak RSS 259 MiB and 50 % more reconciles (more of them read a cache one write behind).
 */
export const SERVICE_WORKERS_DEFAULT = 4;

/** Chosen from measurement: see docs/scale.md. */
export const KUBE_RATE_LIMIT_DEFAULT: RateLimit = { qps: 50, burst: 100 };

function parseRateLimit(env: NodeJS.ProcessEnv): RateLimit | undefined {
  if (env.LOCKSTEP_KUBE_QPS === 'off') return undefined;
  const number = (name: string, fallback: number, min: number): number => {
    const value = env[name];
    if (value === undefined || value === '') return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n < min) throw new Error(`${name}: not a number >= ${min}: ${value}`);
    return n;
  };
  const qps = number('LOCKSTEP_KUBE_QPS', KUBE_RATE_LIMIT_DEFAULT.qps, 0.1);
  // A burst below the rate would waste it; the default keeps client-go's ratio (burst = 2 x qps).
  const burst = number('LOCKSTEP_KUBE_BURST', Math.max(KUBE_RATE_LIMIT_DEFAULT.burst, Math.ceil(qps * 2)), 1);
  return { qps, burst: Math.floor(burst) };
}

function parseWorkers(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`LOCKSTEP_SERVICE_WORKERS: not a whole number from 1 to 64: ${value}`);
  return n;
}

export type ApproverMode = 'identities' | 'all' | 'off';

export function parseApproverMode(value: string | undefined): ApproverMode {
  if (value === undefined || value === '') return 'identities';
  if (value === 'identities' || value === 'all' || value === 'off') return value;
  throw new Error(`LOCKSTEP_APPROVER: not identities, all or off: ${value}`);
}

export interface VerificationSettings {
  /** How often each service is probed (each wait is jittered by up to a tenth of it). */
  periodMs: number;
  /** How long a workload may keep serving a replaced certificate before it is restarted: longer
   * than the kubelet takes to deliver a changed Secret (about 1–2 minutes by default). */
  graceMs: number;
  /** Services probed at once. */
  concurrency: number;
  /** Workload restarts started within one period, across all services. */
  maxRestartsPerPeriod: number;
}

/** Default validity of a CRL (nextUpdate - thisUpdate); kept in sync with revocation-list.ts. */
const CRL_VALIDITY_MS = 24 * 3_600_000;
export const SECRET_PROPAGATION_DEFAULT_MS = 2 * 60_000;
export const VERIFICATION_DEFAULTS: VerificationSettings = { periodMs: 5 * 60_000, graceMs: 5 * 60_000, concurrency: 4, maxRestartsPerPeriod: 5 };

function positiveDuration(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  try {
    const ms = parseDuration(value);
    if (ms > 0) return ms;
  } catch {
    // Reported below with the variable's name.
  }
  throw new Error(`${name}: not a positive duration such as 5m or 30s: ${value}`);
}

function parseVerification(env: NodeJS.ProcessEnv): VerificationSettings | undefined {
  if (env.LOCKSTEP_VERIFY_PERIOD === 'off') return undefined;
  const duration = (name: string, fallback: number): number => positiveDuration(env, name, fallback);
  const count = (name: string, fallback: number): number => {
    const value = env[name];
    if (value === undefined || value === '') return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: not a whole number >= 1: ${value}`);
    return n;
  };
  return {
    periodMs: duration('LOCKSTEP_VERIFY_PERIOD', VERIFICATION_DEFAULTS.periodMs),
    graceMs: duration('LOCKSTEP_VERIFY_GRACE', VERIFICATION_DEFAULTS.graceMs),
    concurrency: count('LOCKSTEP_VERIFY_CONCURRENCY', VERIFICATION_DEFAULTS.concurrency),
    maxRestartsPerPeriod: count('LOCKSTEP_VERIFY_MAX_RESTARTS', VERIFICATION_DEFAULTS.maxRestartsPerPeriod),
  };
}

function parseAddress(value: string | undefined): { host?: string; port?: number } {
  if (!value || value === '0' || value === 'off') return {};
  const i = value.lastIndexOf(':');
  const port = Number(value.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`LOCKSTEP_METRICS_ADDR: not a [host]:port: ${value}`);
  const host = value.slice(0, Math.max(i, 0));
  return host ? { host, port } : { port };
}

// "k=v,k2=v2"; `off` turns the probe rule off (for an operator that never runs as a pod).
function parseProbeSource(namespace: string, value: string | undefined): ProbeSource | undefined {
  if (value === 'off') return undefined;
  if (value === undefined || value.trim() === '') return { namespace, podLabels: { ...OPERATOR_POD_LABELS } };
  const podLabels: Record<string, string> = {};
  for (const pair of value.split(',')) {
    const i = pair.indexOf('=');
    const key = pair.slice(0, i).trim();
    if (i <= 0 || key === '') throw new Error(`LOCKSTEP_PROBE_POD_LABELS: not key=value[,key=value] or off: ${value}`);
    podLabels[key] = pair.slice(i + 1).trim();
  }
  return { namespace, podLabels };
}

/** LOCKSTEP_AUDIT_RATE_LIMIT: `N/DURATION`, e.g. `20/1m` (the default). */
function parseAuditRateLimit(value: string | undefined): AuditRateLimit | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const match = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(value);
  const count = match ? Number(match[1]) : NaN;
  let windowMs = NaN;
  try {
    windowMs = match ? parseDuration(match[2] ?? '') : NaN;
  } catch {
    // Reported below with the variable's name.
  }
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(windowMs) || windowMs < 1_000) {
    throw new Error(`LOCKSTEP_AUDIT_RATE_LIMIT: not COUNT/DURATION such as 20/1m (count >= 1, duration >= 1s): ${value}`);
  }
  return { maxPerWindow: count, windowMs };
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const namespace = env.LOCKSTEP_NAMESPACE ?? env.POD_NAMESPACE ?? 'lockstep-system';
  const address = parseAddress(env.LOCKSTEP_METRICS_ADDR ?? ':8080');
  return {
    identity: env.POD_NAME ?? `${hostname()}-${process.pid}`,
    namespace,
    leaderElection: env.LOCKSTEP_LEADER_ELECT === 'true'
      ? { namespace, leaseName: env.LOCKSTEP_LEASE_NAME ?? 'lockstep-operator' }
      : undefined,
    healthPort: address.port,
    healthHost: address.host,
    defaultIssuer: parseIssuerSetting(env.LOCKSTEP_DEFAULT_ISSUER),
    logLevel: parseLogLevel(env.LOCKSTEP_LOG_LEVEL),
    ...optional('probeSource', parseProbeSource(namespace, env.LOCKSTEP_PROBE_POD_LABELS)),
    ...(env.LOCKSTEP_CLUSTER_RESOURCE_NAMESPACE ? { clusterResourceNamespace: env.LOCKSTEP_CLUSTER_RESOURCE_NAMESPACE } : {}),
    secretPropagationMs: positiveDuration(env, 'LOCKSTEP_SECRET_PROPAGATION', SECRET_PROPAGATION_DEFAULT_MS),
    ...(env.LOCKSTEP_CRL_VALIDITY ? { crlValidityMs: positiveDuration(env, 'LOCKSTEP_CRL_VALIDITY', CRL_VALIDITY_MS) } : {}),
    ...optional('verification', parseVerification(env)),
    approver: parseApproverMode(env.LOCKSTEP_APPROVER),
    ...(env.LOCKSTEP_ADOPT_UNTAGGED_STORES === 'true' ? { adoptUntaggedStores: true } : {}),
    ...optional('auditRateLimit', parseAuditRateLimit(env.LOCKSTEP_AUDIT_RATE_LIMIT)),
    ...optional('kubeRateLimit', parseRateLimit(env)),
    ...(env.LOCKSTEP_KUBE_REQUEST_TIMEOUT ? { kubeRequestTimeoutMs: positiveDuration(env, 'LOCKSTEP_KUBE_REQUEST_TIMEOUT', 0) } : {}),
    ...optional('serviceWorkers', parseWorkers(env.LOCKSTEP_SERVICE_WORKERS)),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
