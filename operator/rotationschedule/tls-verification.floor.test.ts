// The TLS floor against real TLS servers on loopback: a server must refuse what the KeyPolicy
// forbids, not only prefer what it allows. Certificates are made with openssl for each run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TLS12_CIPHER_SUITES, type TLSSettings } from '../api/v1alpha1/index.js';
import { floorProbes, OPENSSL_SUITE_NAMES, opensslSuites } from './tls-floor.js';
import { runProbe, verifyEndpoints, type TlsExpectation } from './tls-verification.js';

let dir = '';
const pem = (name: string) => readFileSync(join(dir, name), 'utf8');
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lockstep-floor-'));
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=root', '-keyout', 'root.key', '-out', 'root.crt');
  for (const [name, ext] of [['server', 'subjectAltName=DNS:api.ns.svc\nextendedKeyUsage=serverAuth\n'], ['client', 'subjectAltName=URI:spiffe://cluster.local/ns/ns/sa/api\nextendedKeyUsage=clientAuth\n']]) {
    writeFileSync(join(dir, `${name}.ext`), ext!);
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'root.crt', '-CAkey', 'root.key', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Closable { port: number; close(): Promise<void> }

/** An mTLS server (application data answered) with the given protocol limits and suites. */
async function server(options: Pick<tls.TlsOptions, 'minVersion' | 'maxVersion' | 'ciphers'>): Promise<Closable> {
  const srv = tls.createServer({
    cert: pem('server.crt'), key: pem('server.key'), ca: [pem('root.crt')], requestCert: true, rejectUnauthorized: true, ...options,
  }, (socket) => socket.on('error', () => undefined).once('data', () => socket.end('ok\n')));
  srv.on('tlsClientError', () => undefined);
  return listening(srv);
}

async function listening(srv: net.Server): Promise<Closable> {
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as AddressInfo).port, close: () => new Promise((r) => srv.close(() => r())) };
}

const expected = (policy: TLSSettings): TlsExpectation => ({ roots: [pem('root.crt')], servername: 'api.ns.svc', policy });
const client = () => ({ cert: pem('client.crt'), key: pem('client.key') });
const AEAD_ECDHE = opensslSuites(TLS12_CIPHER_SUITES);

async function problemsAgainst(options: Pick<tls.TlsOptions, 'minVersion' | 'maxVersion' | 'ciphers'>, policy: TLSSettings): Promise<string[]> {
  const s = await server(options);
  try {
    const [verdict] = await verifyEndpoints([{ address: '127.0.0.1', port: s.port }], expected(policy), client(), 5_000);
    return verdict!.problems;
  } finally {
    await s.close();
  }
}

describe('verifyEndpoints: the server must refuse what the policy forbids', () => {
  it('TLS1.3 policy: a server that also accepts TLS 1.2 fails', async () => {
    const problems = await problemsAgainst({ minVersion: 'TLSv1.2' }, { minVersion: 'TLS1.3' });
    expect(problems.join('; ')).toMatch(/accepts TLSv1\.2 with TLS_\w+, below the policy minimum TLS1\.3/);
  });

  it('TLS1.3 policy: a server limited to TLS 1.3 passes', async () => {
    expect(await problemsAgainst({ minVersion: 'TLSv1.3' }, { minVersion: 'TLS1.3' })).toEqual([]);
  });

  it('TLS1.2 policy: a server that also accepts an ECDHE CBC suite fails', async () => {
    const problems = await problemsAgainst({ minVersion: 'TLSv1.2', ciphers: `${AEAD_ECDHE}:ECDHE-ECDSA-AES128-SHA` }, { minVersion: 'TLS1.2' });
    expect(problems.join('; ')).toMatch(/accepts TLSv1\.2 with TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, a cipher suite the TLS policy does not allow/);
  });

  it('TLS1.2 policy: a server on Node\'s default suites fails (it accepts CBC and CCM suites)', async () => {
    const problems = await problemsAgainst({ minVersion: 'TLSv1.2' }, { minVersion: 'TLS1.2' });
    expect(problems.join('; ')).toMatch(/accepts TLSv1\.2 with TLS_ECDHE_ECDSA_WITH_\w+, a cipher suite the TLS policy does not allow/);
  });

  it('TLS1.2 policy: a server limited to the ECDHE GCM/ChaCha suites passes', async () => {
    expect(await problemsAgainst({ minVersion: 'TLSv1.2', ciphers: AEAD_ECDHE }, { minVersion: 'TLS1.2' })).toEqual([]);
  });

  it('TLS1.2 policy: a server that also speaks TLS 1.0 fails', async () => {
    const problems = await problemsAgainst({ minVersion: 'TLSv1', ciphers: `${AEAD_ECDHE}:ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0` }, { minVersion: 'TLS1.2' });
    expect(problems.join('; ')).toMatch(/accepts TLSv1(\.1)? with TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, below the policy minimum TLS1\.2/);
  });

  it('a narrower suite list: an AEAD suite the policy leaves out fails', async () => {
    const problems = await problemsAgainst({ minVersion: 'TLSv1.2', ciphers: AEAD_ECDHE }, { minVersion: 'TLS1.2', cipherSuites: ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'] });
    expect(problems.join('; ')).toMatch(/accepts TLSv1\.2 with TLS_ECDHE_ECDSA_WITH_(AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256), a cipher suite the TLS policy does not allow/);
  });
});

describe('runProbe: what counts as refused', () => {
  const [below, suites] = floorProbes({ minVersion: 'TLS1.2' });

  it('a protocol-version alert is a refusal', async () => {
    const s = await server({ minVersion: 'TLSv1.2', ciphers: AEAD_ECDHE });
    try {
      expect(await runProbe({ address: '127.0.0.1', port: s.port }, below!, expected({}), client(), 5_000)).toEqual({ kind: 'refused', reason: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
      expect(await runProbe({ address: '127.0.0.1', port: s.port }, suites!, expected({}), client(), 5_000)).toEqual({ kind: 'refused', reason: 'ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE' }); // OpenSSL 3.5 (Node 24); 3.0 said SSLV3_ALERT
    } finally {
      await s.close();
    }
  });

  it('a server that chose a forbidden suite and then refused the client certificate has not refused the suite', async () => {
    // Client certificates from another root: the server picks the CBC suite, then says no.
    const srv = tls.createServer({ cert: pem('server.crt'), key: pem('server.key'), ca: [pem('server.crt')], requestCert: true, rejectUnauthorized: true });
    srv.on('tlsClientError', () => undefined);
    const s = await listening(srv);
    try {
      const outcome = await runProbe({ address: '127.0.0.1', port: s.port }, suites!, expected({}), client(), 5_000);
      expect(outcome.kind).toBe('inconclusive');
    } finally {
      await s.close();
    }
  });

  it('a timeout is no refusal', async () => {
    const sockets: net.Socket[] = [];
    const s = await listening(net.createServer((socket) => sockets.push(socket.on('error', () => undefined))));
    try {
      expect(await runProbe({ address: '127.0.0.1', port: s.port }, below!, expected({}), client(), 300)).toEqual({ kind: 'inconclusive', reason: 'no answer within 300ms' });
    } finally {
      for (const socket of sockets) socket.destroy();
      await s.close();
    }
  });

  it('a connection reset is no refusal', async () => {
    const s = await listening(net.createServer((socket) => socket.on('error', () => undefined).once('data', () => socket.resetAndDestroy())));
    try {
      expect(await runProbe({ address: '127.0.0.1', port: s.port }, below!, expected({}), client(), 5_000)).toEqual({ kind: 'inconclusive', reason: 'ECONNRESET' });
    } finally {
      await s.close();
    }
  });

  it('an offer this TLS library cannot make is reported as unavailable, never as refused', async () => {
    const s = await server({});
    try {
      const outcome = await runProbe({ address: '127.0.0.1', port: s.port }, { ...below!, ciphers: 'NO-SUCH-SUITE' }, expected({}), client(), 5_000);
      expect(outcome.kind).toBe('unavailable');
    } finally {
      await s.close();
    }
  });
});

describe('OPENSSL_SUITE_NAMES', () => {
  it('names the same suites as OpenSSL does', () => {
    const names = Object.values(OPENSSL_SUITE_NAMES).join(':');
    const out = execFileSync('openssl', ['ciphers', '-stdname', names], { encoding: 'utf8' });
    const pairs = out.trim().split('\n').map((l) => l.split(/\s+-\s+|\s+/)).map(([std, ossl]) => [ossl, std]);
    const fromOpenssl = Object.fromEntries(pairs.filter(([o]) => Object.values(OPENSSL_SUITE_NAMES).includes(o!)));
    for (const [iana, ossl] of Object.entries(OPENSSL_SUITE_NAMES)) expect(fromOpenssl[ossl]).toBe(iana);
  });
});
