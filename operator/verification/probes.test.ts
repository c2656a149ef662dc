// The probes against real TLS servers on loopback: mutual TLS enforced or not (TLS 1.3 and
// 1.2), plaintext refused or answered on the TLS port, and the certificate presented.
// Certificates are made with openssl for each run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TLS12_CIPHER_SUITES } from '../api/v1alpha1/index.js';
import { opensslSuites } from '../rotationschedule/tls-floor.js';
import type { TlsExpectation } from '../rotationschedule/tls-verification.js';
import { judgePlaintext, observeEndpoint, plaintextAnswer } from './probes.js';

let dir = '';
const pem = (name: string) => readFileSync(join(dir, name), 'utf8');
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
const SPIFFE = 'spiffe://cluster.local/ns/ns/sa/api';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lockstep-verify-'));
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=root', '-keyout', 'root.key', '-out', 'root.crt');
  writeFileSync(join(dir, 'api.ext'), `subjectAltName=DNS:api.ns.svc,URI:${SPIFFE}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=api', '-keyout', 'api.key', '-out', 'api.csr');
  openssl('x509', '-req', '-in', 'api.csr', '-CA', 'root.crt', '-CAkey', 'root.key', '-CAcreateserial', '-days', '1', '-extfile', 'api.ext', '-out', 'api.crt');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Options { requireClientCert: boolean; maxVersion: tls.SecureVersion; plaintext?: boolean; ciphers?: string }

/** A TLS server answering after the client's first bytes; with `plaintext`, the same port also
 * answers plain HTTP (first byte not a TLS handshake record). */
async function server(o: Options): Promise<{ port: number; close(): Promise<void> }> {
  const secure = tls.createServer({
    cert: pem('api.crt'), key: pem('api.key'), ca: [pem('root.crt')], requestCert: o.requireClientCert, rejectUnauthorized: o.requireClientCert, maxVersion: o.maxVersion,
    // What the default TLS policy allows (Node's defaults also accept CCM and CBC suites under TLS 1.2).
    ciphers: o.ciphers ?? opensslSuites(TLS12_CIPHER_SUITES),
  }, (socket) => socket.on('error', () => undefined).once('data', () => socket.end('ok\n')));
  secure.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
  // The TLS server reads from the socket's handle, so a sniffed connection is relayed to it.
  const front = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', (first: Buffer) => {
      if (o.plaintext && first[0] !== 0x16) {
        socket.end('HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n');
        return;
      }
      const inner = net.connect((secure.address() as AddressInfo).port, '127.0.0.1');
      inner.on('error', () => socket.destroy());
      inner.write(first);
      socket.pipe(inner).pipe(socket);
    });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  return { port: (front.address() as AddressInfo).port, close: async () => {
    await new Promise((r) => front.close(() => r(undefined)));
    await new Promise((r) => secure.close(() => r(undefined)));
  } };
}

const expected = (): TlsExpectation => ({ roots: [pem('root.crt')], servername: 'api.ns.svc', policy: { minVersion: 'TLS1.2' } });
const client = () => ({ cert: pem('api.crt'), key: pem('api.key') });
const observe = (port: number) => observeEndpoint({ address: '127.0.0.1', port }, expected(), client(), 3_000);

describe('observeEndpoint', () => {
  it('reports a TLS 1.3 server that also accepts a TLS 1.2 CBC suite the policy forbids', async () => {
    const s = await server({ requireClientCert: true, maxVersion: 'TLSv1.3', ciphers: `${opensslSuites(TLS12_CIPHER_SUITES)}:ECDHE-ECDSA-AES128-SHA` });
    try {
      expect((await observe(s.port)).policy).toEqual([expect.stringMatching(/^accepts TLSv1\.2 with TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA/)]);
    } finally {
      await s.close();
    }
  });

  it.each<tls.SecureVersion>(['TLSv1.3', 'TLSv1.2'])('%s: a server requiring client certificates and refusing plaintext shows no problem', async (maxVersion) => {
    const s = await server({ requireClientCert: true, maxVersion });
    try {
      const o = await observe(s.port);
      expect(o).toMatchObject({ clientCertRequired: true, served: { serial: expect.stringMatching(/^[0-9A-F]+$/), uris: [SPIFFE] } });
      expect(o.unreachable).toBeUndefined();
      expect(o.untrusted).toBeUndefined();
      expect(o.policy).toBeUndefined();
      expect(o.plaintextAnswer).toBeUndefined();
      expect(o.served!.notAfterMs).toBeGreaterThan(Date.now());
    } finally {
      await s.close();
    }
  });

  it.each<tls.SecureVersion>(['TLSv1.3', 'TLSv1.2'])('%s: a server that does not require client certificates is caught', async (maxVersion) => {
    const s = await server({ requireClientCert: false, maxVersion });
    try {
      expect((await observe(s.port)).clientCertRequired).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('a port that also answers plaintext HTTP is caught', async () => {
    const s = await server({ requireClientCert: true, maxVersion: 'TLSv1.3', plaintext: true });
    try {
      const o = await observe(s.port);
      expect(o.plaintextAnswer).toBe('HTTP/1.1 200 OK');
      expect(o.clientCertRequired).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('a TLS 1.2 floor is a policy problem under a TLS 1.3 policy', async () => {
    const s = await server({ requireClientCert: true, maxVersion: 'TLSv1.2' });
    try {
      const o = await observeEndpoint({ address: '127.0.0.1', port: s.port }, { ...expected(), policy: { minVersion: 'TLS1.3' } }, client(), 3_000);
      expect(o.policy?.join()).toMatch(/TLS1.3/);
    } finally {
      await s.close();
    }
  });

  it('a closed port is unreachable', async () => {
    const s = await server({ requireClientCert: true, maxVersion: 'TLSv1.3' });
    await s.close();
    expect((await observe(s.port)).unreachable).toMatch(/ECONNREFUSED/);
  });
});

describe('plaintext', () => {
  it('a TLS server gives no plaintext answer', async () => {
    const s = await server({ requireClientCert: true, maxVersion: 'TLSv1.3' });
    try {
      expect(await plaintextAnswer({ address: '127.0.0.1', port: s.port }, 'api.ns.svc', 2_000)).toBeUndefined();
    } finally {
      await s.close();
    }
  });

  it('counts an HTTP answer as plaintext, except the 400 TLS-only servers send back', () => {
    expect(judgePlaintext(Buffer.from('HTTP/1.1 404 Not Found\r\n'))).toBe('HTTP/1.1 404 Not Found');
    expect(judgePlaintext(Buffer.from('HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n'))).toBeUndefined();
    expect(judgePlaintext(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]))).toBeUndefined();
    expect(judgePlaintext(Buffer.alloc(0))).toBeUndefined();
  });
});
