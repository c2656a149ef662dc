// What one judged CertificateRequest says about attempts on Lockstep identities (issue 14,
// part 4): a claim no EncryptedService declares, names outside the claimed service's own, and
// which declared identities it asks for (request rates per identity). Pure: report.ts turns the
// result into metrics and Events. Nothing here is ever keyed by what the request itself names.
import type { ParsedCsr } from './csr.js';
import type { Decision, ServiceRef } from './decide.js';

/** More requests than this for one identity within BURST_WINDOW_MS is no renewal pattern. */
export const BURST_LIMIT = 5;
export const BURST_WINDOW_MS = 5 * 60_000;

export interface OutsideNames {
  readonly service: ServiceRef;
  /** How many SANs of each form lie outside the names the service is issued. */
  readonly counts: Readonly<Record<'DNS' | 'URI' | 'IP' | 'email', number>>;
}

export interface Anomalies {
  /** Declared services whose identity the request asks for (the matched one when approved). */
  readonly identities: readonly ServiceRef[];
  /** It claims a Lockstep identity, yet no declared service's SPIFFE ID or names match it. */
  readonly unmatched: boolean;
  /** Per claimed service, the SANs it asks for beyond that service's own names. */
  readonly outside: readonly OutsideNames[];
}

const NONE: Anomalies = { identities: [], unmatched: false, outside: [] };

/**
 * `namesOf` gives the DNS names and URIs a service's certificate carries (what the operator
 * requests for it), or undefined when it gets no certificate: then there is no name to be outside
 * of, and the denial itself (ServiceNotIssuable or NotFromDeclaredService) is what is reported.
 */
export function anomaliesOf(
  decision: Decision,
  csr: ParsedCsr | undefined,
  namesOf: (service: ServiceRef) => readonly string[] | undefined,
): Anomalies {
  if (decision.verdict === 'ignore') return NONE;
  if (decision.verdict === 'approve') return decision.service ? { ...NONE, identities: [decision.service] } : NONE;
  if (decision.claims.length === 0) return NONE; // unreadable, claiming nothing: not an identity matter
  if (decision.claimed.length === 0) return { ...NONE, unmatched: true };
  const outside = csr ? decision.claimed.flatMap((service) => {
    const names = namesOf(service);
    if (!names) return [];
    const own = new Set(names.map((n) => n.toLowerCase()));
    const beyond = (sans: readonly string[]) => sans.filter((s) => !own.has(s.toLowerCase())).length;
    const counts = { DNS: beyond(csr.dnsNames), URI: beyond(csr.uris), IP: csr.ipAddresses.length, email: csr.emailAddresses.length };
    return Object.values(counts).some((n) => n > 0) ? [{ service, counts }] : [];
  }) : [];
  return { identities: decision.claimed, unmatched: false, outside };
}

/** "2 (DNS 1, IP 1)": how many and of which forms, never the names themselves. */
export function describeOutside(counts: OutsideNames['counts']): string {
  const parts = Object.entries(counts).filter(([, n]) => n > 0);
  const total = parts.reduce((sum, [, n]) => sum + n, 0);
  return `${total} (${parts.map(([form, n]) => `${form} ${n}`).join(', ')})`;
}
