// Verification that a rotation reached the wire: connect to every endpoint of a service over
// TLS, presenting a client certificate (servers that require mTLS answer only then), and check
// that the new certificate is served, that it chains to the namespace's published trust bundle
// and names the service, and that the negotiated protocol and cipher suite meet the KeyPolicy's
// TLS policy; then probe the floor (tls-floor.ts): the endpoint must refuse versions below the
// policy and suites outside it. Nothing here logs or returns key material.
import { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import { TLS12_CIPHER_SUITES, type TLSSettings } from '../api/v1alpha1/index.js';
import { classifyProbeError, floorProbes, judgeProbe, type FloorProbe, type ProbeJudgement, type ProbeOutcome } from './tls-floor.js';

export interface Endpoint {
  address: string;
  port: number;
}

export interface TlsExpectation {
  /** Serial (uppercase hex, as node:crypto prints it) the endpoint must serve; any when undefined. */
  serial?: string;
  /** During a CA rotation: PEM of the root the served certificate must be signed by. */
  issuerRoot?: string;
  /** PEM roots of the published bundle. */
  roots: readonly string[];
  /** DNS name the served certificate must carry, also sent as SNI. */
  servername: string;
  policy: TLSSettings;
}

export interface ClientIdentity {
  cert: string;
  key: string;
}

/** What one handshake showed (no key material). */
export interface HandshakeFacts {
  serial?: string;
  /** Chain verification against the roots: undefined when it verified. */
  chainError?: string;
  /** Hostname check: undefined when the certificate names the service. */
  nameError?: string;
  /** Set when an issuerRoot was expected and did not sign the served certificate. */
  issuerError?: string;
  /** e.g. TLSv1.3 */
  protocol?: string;
  /** IANA name of the negotiated suite, e.g. TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256. */
  cipher?: string;
}

const PROTOCOL_RANK: Record<string, number> = { 'TLSv1': 10, 'TLSv1.1': 11, 'TLSv1.2': 12, 'TLSv1.3': 13 };
const POLICY_RANK: Record<string, number> = { 'TLS1.2': 12, 'TLS1.3': 13 };

/** Problems with a handshake against what the rotation expects; empty when it passes. */
export function judgeHandshake(facts: HandshakeFacts, expected: TlsExpectation): string[] {
  const problems: string[] = [];
  if (expected.serial !== undefined && facts.serial !== expected.serial) problems.push(`serves certificate ${facts.serial ?? '(none)'}, want the new ${expected.serial}`);
  if (facts.chainError) problems.push(`certificate does not chain to the published trust bundle (${facts.chainError})`);
  if (facts.nameError) problems.push(`certificate does not name ${expected.servername} (${facts.nameError})`);
  if (facts.issuerError) problems.push(facts.issuerError);
  const min = expected.policy.minVersion ?? 'TLS1.2';
  const rank = PROTOCOL_RANK[facts.protocol ?? ''] ?? 0;
  if (rank < (POLICY_RANK[min] ?? 12)) problems.push(`negotiated ${facts.protocol ?? 'no protocol'}, policy requires at least ${min}`);
  // TLS 1.3 suites are not configurable in the policy (all are AEAD); 1.2 suites must be allowed.
  if (facts.protocol === 'TLSv1.2') {
    const allowed: readonly string[] = expected.policy.cipherSuites ?? TLS12_CIPHER_SUITES;
    if (!facts.cipher || !allowed.includes(facts.cipher)) problems.push(`negotiated cipher suite ${facts.cipher ?? '(unknown)'} is not allowed by the TLS policy`);
  }
  return problems;
}

/**
 * How long to wait, after a TLS 1.3 handshake completed on the client's side, for the server's
 * verdict on the client certificate. TLS 1.3 finishes the client's handshake before the server
 * has read the client's certificate; a rejection arrives afterwards, as an alert. A session
 * ticket or any byte from the server ends the wait early: the server sends those only after it
 * accepted the client's Finished.
 */
export const TLS13_VERDICT_MS = 750;

/**
 * One TLS handshake; resolves with what it showed, or rejects when no handshake completes or
 * the server rejects the client afterwards (TLS 1.3). Under TLS 1.2 the server's verdict on the
 * client certificate is part of the handshake itself.
 */
export function handshake(
  endpoint: Endpoint, expected: TlsExpectation, client: ClientIdentity, timeoutMs: number, verdictMs = TLS13_VERDICT_MS,
): Promise<HandshakeFacts> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let settled = false;
    const finish = (err: Error | undefined, facts?: HandshakeFacts) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        socket.end();
        resolve(facts ?? {});
      }
    };
    const socket = tls.connect({
      host: endpoint.address,
      port: endpoint.port,
      servername: expected.servername,
      ca: [...expected.roots],
      cert: client.cert,
      key: client.key,
      // Verified below so that a failure is reported with its reason instead of a reset.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    });
    let timer = setTimeout(() => finish(new Error(`no TLS handshake within ${timeoutMs}ms`)), timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const facts = handshakeFacts(socket, expected);
      if (facts.protocol !== 'TLSv1.3') {
        finish(undefined, facts);
        return;
      }
      const accepted = () => finish(undefined, facts);
      timer = setTimeout(accepted, Math.max(0, Math.min(verdictMs, timeoutMs - (Date.now() - started))));
      socket.once('session', accepted);
      socket.on('data', accepted);
      socket.once('end', () => finish(new Error('the server rejected the client after the handshake: it closed the connection without a word')));
      socket.resume();
    });
    socket.once('error', (err) => {
      const afterHandshake = socket.getProtocol() === 'TLSv1.3' && socket.getPeerX509Certificate() !== undefined;
      finish(afterHandshake ? new Error(`the server rejected the client after the handshake: ${err.message}`) : err);
    });
  });
}

function handshakeFacts(socket: tls.TLSSocket, expected: TlsExpectation): HandshakeFacts {
  const peer = socket.getPeerX509Certificate();
  const facts: HandshakeFacts = {};
  if (peer) {
    facts.serial = peer.serialNumber.toUpperCase();
    if (!peer.checkHost(expected.servername, { subject: 'never' })) facts.nameError = 'no DNS subject alternative name matches';
    if (expected.issuerRoot) {
      const root = new X509Certificate(expected.issuerRoot);
      if (!(peer.checkIssued(root) && peer.verify(root.publicKey))) facts.issuerError = `certificate is not issued by the new root ${root.serialNumber.toUpperCase()}`;
    }
  }
  if (!socket.authorized) facts.chainError = String(socket.authorizationError ?? 'not authorized');
  const protocol = socket.getProtocol();
  if (protocol) facts.protocol = protocol;
  const cipher = socket.getCipher() as tls.CipherNameAndProtocol & { standardName?: string };
  if (cipher?.standardName) facts.cipher = cipher.standardName;
  return facts;
}

/**
 * One floor probe: a handshake offering only `probe`'s versions and suites, with the client
 * identity of the main handshake (a server requiring mTLS would otherwise refuse for the missing
 * certificate, not for the offer). It counts as accepted once the handshake completed on our
 * side: under TLS 1.2 and below the server has judged the client certificate by then, and its
 * verdict on the certificate is not the question anyway. Never rejects.
 */
export function runProbe(
  endpoint: Endpoint, probe: FloorProbe, expected: TlsExpectation, client: ClientIdentity, timeoutMs: number,
): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let socket: tls.TLSSocket;
    try {
      socket = tls.connect({
        host: endpoint.address,
        port: endpoint.port,
        servername: expected.servername,
        cert: client.cert,
        key: client.key,
        rejectUnauthorized: false,
        minVersion: probe.minVersion,
        maxVersion: probe.maxVersion,
        ciphers: probe.ciphers,
      });
    } catch (err) {
      // The secure context could not be built: nothing was sent, this library cannot offer it.
      resolve({ kind: 'unavailable', reason: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
      return;
    }
    let settled = false;
    const finish = (outcome: ProbeOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: 'inconclusive', reason: `no answer within ${timeoutMs}ms` }), timeoutMs);
    socket.once('secureConnect', () => {
      const cipher = socket.getCipher() as tls.CipherNameAndProtocol & { standardName?: string };
      finish({ kind: 'completed', ...(socket.getProtocol() ? { protocol: socket.getProtocol()! } : {}), ...(cipher?.standardName ? { cipher: cipher.standardName } : {}) });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      // Set only once the server's hello picked a suite; read before the socket is torn down.
      const chosen = (socket.getCipher() as (tls.CipherNameAndProtocol & { standardName?: string }) | undefined)?.standardName;
      finish(classifyProbeError(err.code, err.message, chosen));
    });
    socket.once('close', () => finish({ kind: 'inconclusive', reason: 'the server closed the connection during the handshake' }));
  });
}

/** Every floor probe for the policy, at once (each bounded by `timeoutMs`), judged. */
export async function probeFloor(
  endpoint: Endpoint, expected: TlsExpectation, client: ClientIdentity, timeoutMs: number,
): Promise<ProbeJudgement[]> {
  return Promise.all(floorProbes(expected.policy).map(async (probe) => judgeProbe(probe, await runProbe(endpoint, probe, expected, client, timeoutMs), expected.policy)));
}

export interface EndpointVerdict {
  endpoint: Endpoint;
  problems: string[];
  /**
   * Floor probes this verifier could not make (its TLS library cannot offer the version): not
   * counted against the endpoint, and not a pass either — say so wherever the verdict is shown.
   */
  unchecked?: string[];
}

/**
 * Checks every endpoint; each verdict lists what is wrong there (empty when it passed). The floor
 * is probed only after the main handshake completed: before that the endpoint has failed anyway.
 */
export async function verifyEndpoints(
  endpoints: readonly Endpoint[], expected: TlsExpectation, client: ClientIdentity, timeoutMs = 5_000,
): Promise<EndpointVerdict[]> {
  return Promise.all(endpoints.map(async (endpoint): Promise<EndpointVerdict> => {
    let facts: HandshakeFacts;
    try {
      facts = await handshake(endpoint, expected, client, timeoutMs);
    } catch (err) {
      return { endpoint, problems: [`TLS handshake failed: ${(err as Error).message}`] };
    }
    const floor = await probeFloor(endpoint, expected, client, timeoutMs);
    const problems = [...judgeHandshake(facts, expected), ...floor.flatMap((j) => (j.problem ? [j.problem] : []))];
    const unchecked = floor.flatMap((j) => (j.unchecked ? [j.unchecked] : []));
    return { endpoint, problems, ...(unchecked.length > 0 ? { unchecked } : {}) };
  }));
}

/** Serial of a PEM certificate (the first in a chain), uppercase hex. */
export function serialOf(pem: string): string {
  return new X509Certificate(pem).serialNumber.toUpperCase();
}
