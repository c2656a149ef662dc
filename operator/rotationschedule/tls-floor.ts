// The TLS floor of an endpoint: what it refuses, not only what it prefers. The main handshake
// shows the best version and suite a server negotiates with us; a server that also accepts TLS
// 1.2 under a TLS 1.3 policy, or a CBC suite under a TLS 1.2 policy, would pass it. Floor probes
// offer only what the policy forbids and expect the server to refuse. Pure: what to offer for a
// policy, how a probe's end is classified, and what that means for the verdict.
import type { SecureVersion } from 'node:tls';
import { effectiveTLS, type TLS12CipherSuite, type TLSSettings } from '../api/v1alpha1/index.js';

/** OpenSSL names of the suites a KeyPolicy can allow (IANA names), for `ciphers` strings. */
export const OPENSSL_SUITE_NAMES: Record<TLS12CipherSuite, string> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
};

/** An OpenSSL `ciphers` string offering exactly these TLS 1.2 suites (TLS 1.3 keeps its defaults). */
export function opensslSuites(suites: readonly TLS12CipherSuite[]): string {
  return suites.map((s) => OPENSSL_SUITE_NAMES[s]).join(':');
}

/**
 * Every suite this OpenSSL knows, at security level 0 so that legacy versions and weak suites can
 * be offered at all: a probe must be able to say what an old client would.
 */
const EVERYTHING = 'ALL:COMPLEMENTOFALL';
const LEVEL0 = '@SECLEVEL=0';

/** One extra handshake that offers only what the policy forbids. */
export interface FloorProbe {
  /** What is offered, for messages: e.g. "TLS below TLS1.3". */
  offer: string;
  minVersion: SecureVersion;
  maxVersion: SecureVersion;
  ciphers: string;
  /** Why accepting it violates the policy, given what was negotiated. */
  violation: 'version' | 'suite';
}

/** The probes for a policy: everything below its minimum version, and on TLS 1.2 every other suite. */
export function floorProbes(policy: TLSSettings): FloorProbe[] {
  const effective = effectiveTLS(policy);
  if (effective.minVersion === 'TLS1.3') {
    return [{ offer: 'TLS below TLS1.3', minVersion: 'TLSv1', maxVersion: 'TLSv1.2', ciphers: `${EVERYTHING}:${LEVEL0}`, violation: 'version' }];
  }
  const allowed = effective.cipherSuites.map((s) => `!${OPENSSL_SUITE_NAMES[s]}`).join(':');
  return [
    { offer: 'TLS below TLS1.2', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: `${EVERYTHING}:${LEVEL0}`, violation: 'version' },
    { offer: 'TLS 1.2 cipher suites outside the policy', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: `${EVERYTHING}${allowed ? `:${allowed}` : ''}:${LEVEL0}`, violation: 'suite' },
  ];
}

/** How a probe ended, as seen by the client. */
export type ProbeOutcome =
  /** The handshake completed on our side: the server accepted what we offered. */
  | { kind: 'completed'; protocol?: string; cipher?: string }
  /** The server answered the offer with a TLS alert before choosing a suite: it refused. */
  | { kind: 'refused'; reason: string }
  /** No verdict: timeout, reset, or an alert after the server had already chosen a suite. */
  | { kind: 'inconclusive'; reason: string }
  /** This verifier's TLS library cannot make the offer (e.g. TLS 1.0 compiled out). */
  | { kind: 'unavailable'; reason: string };

/** Errors raised by the local library before anything is sent: the offer cannot be made here. */
const LOCAL_CODES = new Set(['ERR_SSL_NO_PROTOCOLS_AVAILABLE', 'ERR_SSL_NO_CIPHERS_AVAILABLE', 'ERR_SSL_NO_CIPHER_MATCH', 'ERR_TLS_INVALID_PROTOCOL_VERSION']);

/**
 * Classifies a failed probe handshake. `chosenSuite` is the suite the server's hello picked, if
 * it got that far: an alert after that (e.g. about the client certificate) does not show that the
 * server refuses the offer — under TLS 1.2 it already accepted the version and suite.
 */
export function classifyProbeError(code: string | undefined, message: string, chosenSuite?: string): ProbeOutcome {
  const reason = code ?? message;
  if (code && LOCAL_CODES.has(code)) return { kind: 'unavailable', reason };
  const alert = code?.startsWith('ERR_SSL_') && /ALERT/.test(code);
  if (alert && !chosenSuite) return { kind: 'refused', reason };
  if (alert) return { kind: 'inconclusive', reason: `the server chose ${chosenSuite}, then ended the handshake (${reason})` };
  // A reset or a close is no refusal: a middlebox, an overloaded server or a crash looks the same.
  return { kind: 'inconclusive', reason };
}

/** What a probe means for the endpoint: a policy violation, a check that could not be made, or nothing. */
export interface ProbeJudgement {
  problem?: string;
  /** The verifier itself cannot make this probe: reported, not counted against the endpoint. */
  unchecked?: string;
}

export function judgeProbe(probe: FloorProbe, outcome: ProbeOutcome, policy: TLSSettings): ProbeJudgement {
  const min = effectiveTLS(policy).minVersion;
  switch (outcome.kind) {
    case 'refused':
      return {};
    case 'completed': {
      const what = `${outcome.protocol ?? 'an unknown version'} with ${outcome.cipher ?? 'an unknown suite'}`;
      return probe.violation === 'version'
        ? { problem: `accepts ${what}, below the policy minimum ${min}` }
        : { problem: `accepts ${what}, a cipher suite the TLS policy does not allow` };
    }
    case 'inconclusive':
      return { problem: `could not check that the server refuses ${probe.offer}: ${outcome.reason}` };
    case 'unavailable':
      return { unchecked: `${probe.offer} not checked: this verifier cannot offer it (${outcome.reason})` };
  }
}
