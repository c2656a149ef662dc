// The network side of continuous verification: per endpoint, the certificate it presents, a
// handshake with the service's own identity (judged by the rotation verifier's rules), a
// handshake with no client certificate (must be refused), and a plaintext HTTP request (must get
// no plaintext answer). Returns observations for judge.ts; never returns or logs key material.
import * as net from 'node:net';
import * as tls from 'node:tls';
import {
  handshake, probeFloor, judgeHandshake,
  type ClientIdentity, type Endpoint, type TlsExpectation,
} from '../rotationschedule/tls-verification.js';
import type { EndpointObservation, ServedCertificate } from './judge.js';

/**
 * No certificate: node:tls loads a certificate and key only when they are non-empty, so the
 * client answers a certificate request with an empty Certificate message. handshake() then
 * resolves only when the server accepted that (under TLS 1.3, after its verdict).
 */
export const NO_CLIENT_CERTIFICATE: ClientIdentity = { cert: '', key: '' };

/** The leaf the endpoint presents, read during a handshake with the service's own identity. */
export function servedCertificate(endpoint: Endpoint, servername: string, client: ClientIdentity, timeoutMs: number): Promise<ServedCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: endpoint.address, port: endpoint.port, servername, cert: client.cert, key: client.key,
      // Only reads what is presented; trust is judged by handshake() and the judge.
      rejectUnauthorized: false, minVersion: 'TLSv1.2',
    });
    const timer = setTimeout(() => done(new Error(`no TLS handshake within ${timeoutMs}ms`)), timeoutMs);
    const done = (err?: Error) => {
      clearTimeout(timer);
      // A TLS 1.2 server that refuses the client certificate has still presented its own.
      const peer = socket.getPeerX509Certificate();
      socket.destroy();
      if (!peer) {
        reject(err ?? new Error('no certificate presented'));
        return;
      }
      const uris = (peer.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
      resolve({ serial: peer.serialNumber.toUpperCase(), notAfterMs: Date.parse(peer.validTo), uris });
    };
    socket.once('secureConnect', () => done());
    socket.once('error', (err) => done(err));
  });
}

/** The status line of a plaintext answer to a plaintext HTTP request, or undefined when the
 * endpoint answered with TLS, closed, or said nothing within the timeout. */
export function plaintextAnswer(endpoint: Endpoint, host: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: endpoint.address, port: endpoint.port });
    let received = Buffer.alloc(0);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(judgePlaintext(received));
    };
    const timer = setTimeout(done, timeoutMs);
    socket.once('connect', () => socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    socket.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      if (received.length >= 64 || received.includes('\r\n')) done();
    });
    socket.once('end', done);
    socket.once('error', done);
  });
}

/**
 * Whether bytes received for a plaintext request are a plaintext answer: an HTTP status line.
 * 400 is what TLS-only HTTP servers (Go's net/http, nginx) send back to a plaintext request on a
 * TLS port, refusing it; anything else — 200, 301, 404 — means the port serves plaintext.
 */
export function judgePlaintext(received: Buffer): string | undefined {
  const text = received.subarray(0, 64).toString('latin1');
  const line = /^HTTP\/\d(?:\.\d)? (\d{3})[^\r\n]*/.exec(text);
  if (!line || line[1] === '400') return undefined;
  return line[0];
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Everything one endpoint shows; probes run one after another so an endpoint sees one connection at a time. */
export async function observeEndpoint(endpoint: Endpoint, expected: TlsExpectation, client: ClientIdentity, timeoutMs: number): Promise<EndpointObservation> {
  let served: ServedCertificate;
  try {
    served = await servedCertificate(endpoint, expected.servername, client, timeoutMs);
  } catch (err) {
    return { endpoint, unreachable: `no TLS session: ${errorText(err)}` };
  }
  const observation: EndpointObservation = { endpoint, served };
  try {
    const facts = await handshake(endpoint, expected, client, timeoutMs);
    const untrusted = [
      ...(facts.chainError ? [`certificate does not chain to the namespace trust bundle (${facts.chainError})`] : []),
      ...(facts.nameError ? [`certificate does not name ${expected.servername}`] : []),
    ];
    if (untrusted.length > 0) observation.untrusted = untrusted;
    // Only the negotiated protocol and suite: chain and name are reported above, the serial by the judge.
    const policy = judgeHandshake({ ...(facts.protocol ? { protocol: facts.protocol } : {}), ...(facts.cipher ? { cipher: facts.cipher } : {}) }, expected);
    // Below the floor and with forbidden suites: the best handshake says nothing about what else the server accepts.
    for (const judged of await probeFloor(endpoint, expected, client, timeoutMs)) if (judged.problem) policy.push(judged.problem);
    if (policy.length > 0) observation.policy = policy;
  } catch (err) {
    observation.untrusted = [`the handshake with the service's own certificate failed: ${errorText(err)}`];
  }
  observation.clientCertRequired = await handshake(endpoint, expected, NO_CLIENT_CERTIFICATE, timeoutMs).then(() => false, () => true);
  const answer = await plaintextAnswer(endpoint, expected.servername, timeoutMs);
  if (answer !== undefined) observation.plaintextAnswer = answer;
  return observation;
}

/** Observes every endpoint, at most `limit` at a time. */
export async function observeEndpoints(
  endpoints: readonly Endpoint[], expected: TlsExpectation, client: ClientIdentity, timeoutMs: number, limit = 8,
): Promise<EndpointObservation[]> {
  const out: EndpointObservation[] = new Array(endpoints.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < endpoints.length; i = next++) out[i] = await observeEndpoint(endpoints[i]!, expected, client, timeoutMs);
  };
  await Promise.all(Array.from({ length: Math.min(limit, endpoints.length) }, worker));
  return out;
}
