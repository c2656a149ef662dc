// What the endpoints of one service showed, judged against what was issued: the Verified
// condition's status, reason and message, and the figures the metrics report. Pure: the probes
// (probes.ts) gather observations; nothing here touches the network or holds key material.
import { Reasons, type ConditionStatus, type Reason } from '../api/v1alpha1/index.js';
import type { ViolationKind } from '../runtime/metrics.js';
import type { Endpoint } from '../rotationschedule/tls-verification.js';

/** The leaf an endpoint presented (public facts only). */
export interface ServedCertificate {
  serial: string;
  notAfterMs: number;
  /** URI subject alternative names (the SPIFFE ID). */
  uris: string[];
}

export interface EndpointObservation {
  endpoint: Endpoint;
  /** Set when no TLS session could be opened with the service's own identity. */
  unreachable?: string;
  served?: ServedCertificate;
  /** Chain, name or client-trust problems of the handshake with the service's own identity. */
  untrusted?: string[];
  /** Protocol and cipher-suite problems against the KeyPolicy's TLS settings. */
  policy?: string[];
  /** false: the endpoint completed a session with a client that presented no certificate. */
  clientCertRequired?: boolean;
  /** The status line of the endpoint's answer to a plaintext HTTP request, when it gave one. */
  plaintextAnswer?: string;
}

/** What the TLS Secret holds now. */
export interface Issued {
  serial: string;
  notBeforeMs: number;
  notAfterMs: number;
  /** The SPIFFE ID the service's certificates must carry. */
  spiffeId: string;
}

export interface Verdict {
  status: ConditionStatus;
  reason: Reason;
  message: string;
  /** Endpoints failing each check. */
  violations: Record<ViolationKind, number>;
  /** Endpoints serving a certificate other than the issued one (within the grace period or not). */
  drift: number;
  /** A replaced certificate is still served after the grace period: a restart may be due. */
  stalePastGrace: boolean;
  /** Soonest notAfter among the certificates actually served. */
  servedNotAfterMs?: number;
}

/** Severity order: the first kind present names the condition's reason. */
const ORDER: readonly [ViolationKind, Reason][] = [
  ['plaintext_accepted', Reasons.PlaintextAccepted],
  ['mtls_not_enforced', Reasons.MTLSNotEnforced],
  ['untrusted_certificate', Reasons.UntrustedCertificate],
  ['stale_certificate', Reasons.ServingStaleCertificate],
  ['tls_policy', Reasons.PolicyViolation],
  ['unreachable', Reasons.Unreachable],
];

/** Longest condition message written; the endpoints beyond it are counted. */
export const MAX_MESSAGE = 2_000;

const zero = (): Record<ViolationKind, number> =>
  ({ stale_certificate: 0, untrusted_certificate: 0, mtls_not_enforced: 0, plaintext_accepted: 0, tls_policy: 0, unreachable: 0 });

// Messages hold no durations relative to now: the same state must give the same message, or
// every probe would rewrite status.
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

const where = (e: Endpoint): string => (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`);

export function judge(observations: readonly EndpointObservation[], issued: Issued, now: number, graceMs: number): Verdict {
  const violations = zero();
  if (observations.length === 0) {
    return { status: 'Unknown', reason: Reasons.NoEndpoints, message: 'the Service has no ready endpoints on its TLS ports to verify', violations, drift: 0, stalePastGrace: false };
  }
  const lines: string[] = [];
  let drift = 0;
  let propagating = 0;
  let servedNotAfterMs: number | undefined;
  const sinceIssued = now - issued.notBeforeMs;
  for (const o of observations) {
    const problems: string[] = [];
    const add = (kind: ViolationKind, text: string) => {
      if (!problems.some((p) => p.startsWith(`[${kind}]`))) violations[kind]++;
      problems.push(`[${kind}] ${text}`);
    };
    if (o.unreachable !== undefined) add('unreachable', o.unreachable);
    if (o.served) {
      servedNotAfterMs = Math.min(servedNotAfterMs ?? Infinity, o.served.notAfterMs);
      if (o.served.serial !== issued.serial) {
        drift++;
        if (sinceIssued >= graceMs) add('stale_certificate', `serves ${o.served.serial}, replaced by ${issued.serial} issued at ${iso(issued.notBeforeMs)}`);
        else propagating++;
      }
      if (!o.served.uris.includes(issued.spiffeId)) add('untrusted_certificate', `certificate does not carry the SPIFFE ID ${issued.spiffeId}`);
    }
    for (const p of o.untrusted ?? []) add('untrusted_certificate', p);
    for (const p of o.policy ?? []) add('tls_policy', p);
    if (o.clientCertRequired === false) add('mtls_not_enforced', 'accepts a client that presents no certificate');
    if (o.plaintextAnswer !== undefined) add('plaintext_accepted', `answers a plaintext HTTP request (${JSON.stringify(o.plaintextAnswer.slice(0, 32))})`);
    if (problems.length > 0) lines.push(`${where(o.endpoint)}: ${problems.map((p) => p.replace(/^\[[a-z_]+\] /, '')).join('; ')}`);
  }
  const base = { violations, drift, stalePastGrace: violations.stale_certificate > 0, ...(servedNotAfterMs !== undefined ? { servedNotAfterMs } : {}) };
  const first = ORDER.find(([kind]) => violations[kind] > 0);
  if (first) return { ...base, status: 'False', reason: first[1], message: bounded(lines) };
  const n = observations.length;
  if (propagating > 0) {
    return {
      ...base, status: 'Unknown', reason: Reasons.RenewalPropagating,
      message: `${propagating} of ${n} endpoints still serve the previous certificate; ${issued.serial} was issued at ${iso(issued.notBeforeMs)}, a restart is considered ${Math.round(graceMs / 1000)}s after that`,
    };
  }
  return {
    ...base, status: 'True', reason: Reasons.Verified,
    message: `${n} endpoint${n === 1 ? '' : 's'} serve ${issued.serial}, chain to the trust bundle, carry ${issued.spiffeId}, require client certificates, refuse plaintext and meet the TLS policy`,
  };
}

function bounded(lines: readonly string[]): string {
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    const next = out ? `${out} | ${lines[i]}` : lines[i]!;
    if (next.length > MAX_MESSAGE) return out ? `${out} | and ${lines.length - i} more endpoints` : `${next.slice(0, MAX_MESSAGE)}…`;
    out = next;
  }
  return out;
}
