// handshake() against real TLS servers on loopback: the server's verdict on the client
// certificate must count. Under TLS 1.3 the client's handshake completes before the server has
// judged its certificate, so a rotation that breaks client trust would pass a check that stops
// at 'secureConnect'. Certificates are made with openssl for each run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { handshake, type TlsExpectation } from './tls-verification.js';

let dir = '';
const pem = (name: string) => readFileSync(join(dir, name), 'utf8');
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });

function root(name: string): void {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.crt`);
}
function leaf(name: string, ca: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lockstep-tls-'));
  root('root-a');
  root('root-b');
  leaf('server', 'root-a', 'subjectAltName=DNS:api.ns.svc\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'root-a', 'subjectAltName=URI:spiffe://cluster.local/ns/ns/sa/api\nextendedKeyUsage=clientAuth\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A server requiring client certificates that chain to `clientRoots`. */
async function server(clientRoots: string[], maxVersion: tls.SecureVersion): Promise<{ port: number; close(): Promise<void> }> {
  const srv = tls.createServer({
    cert: pem('server.crt'), key: pem('server.key'), ca: clientRoots, requestCert: true, rejectUnauthorized: true, maxVersion,
  }, (socket) => socket.on('data', () => undefined).on('error', () => undefined));
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as AddressInfo).port, close: () => new Promise((r) => srv.close(() => r())) };
}

const expected = (): TlsExpectation => ({ roots: [pem('root-a.crt')], servername: 'api.ns.svc', policy: { minVersion: 'TLS1.2' } });
const client = () => ({ cert: pem('client.crt'), key: pem('client.key') });

describe('handshake: the server judges the client certificate', () => {
  it.each<tls.SecureVersion>(['TLSv1.3', 'TLSv1.2'])('%s: a server that trusts the client accepts; the facts are reported', async (version) => {
    const s = await server([pem('root-a.crt')], version);
    try {
      const facts = await handshake({ address: '127.0.0.1', port: s.port }, expected(), client(), 5_000);
      expect(facts.protocol).toBe(version);
      expect(facts.chainError).toBeUndefined();
      expect(facts.nameError).toBeUndefined();
    } finally {
      await s.close();
    }
  });

  it.each<tls.SecureVersion>(['TLSv1.3', 'TLSv1.2'])('%s: a server that does not trust the client certificate fails the check', async (version) => {
    const s = await server([pem('root-b.crt')], version);
    try {
      const attempt = handshake({ address: '127.0.0.1', port: s.port }, expected(), client(), 5_000);
      // TLS 1.2: the handshake itself fails. TLS 1.3: it completes, then the server says no.
      await expect(attempt).rejects.toThrow(version === 'TLSv1.3' ? /rejected the client after the handshake/ : /./);
    } finally {
      await s.close();
    }
  });
});
