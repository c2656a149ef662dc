import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildCrl, caFacts, crlPem, normalSerial } from './crl.js';
import { encodeLength, oid, serialInteger, time } from './der-writer.js';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const withOpenssl = hasOpenssl() ? describe : describe.skip;

describe('der writer', () => {
  it('encodes lengths in the minimal form', () => {
    expect(encodeLength(5)).toEqual(Buffer.from([5]));
    expect(encodeLength(127)).toEqual(Buffer.from([127]));
    expect(encodeLength(128)).toEqual(Buffer.from([0x81, 0x80]));
    expect(encodeLength(300)).toEqual(Buffer.from([0x82, 0x01, 0x2c]));
  });
  it('encodes OIDs with multi-byte arcs', () => {
    expect(oid('1.2.840.10045.4.3.2').toString('hex')).toBe('06082a8648ce3d040302');
    expect(oid('2.5.29.20').toString('hex')).toBe('0603551d14');
  });
  it('encodes serials as positive minimal integers', () => {
    expect(serialInteger('01').toString('hex')).toBe('020101');
    expect(serialInteger('80').toString('hex')).toBe('02020080');
    expect(serialInteger('00FF').toString('hex')).toBe('020200ff');
    expect(() => serialInteger('xyz')).toThrow();
  });
  it('uses UTCTime before 2050 and GeneralizedTime after', () => {
    expect(time(new Date('2026-12-01T04:05:06.789Z')).toString('ascii', 2)).toBe('261201040506Z');
    expect(time(new Date('2051-01-01T00:00:00Z'))[0]).toBe(0x18);
  });
  it('normalises serials for comparison', () => {
    expect(normalSerial('00:ab:cd')).toBe('ABCD');
    expect(normalSerial('0')).toBe('0');
  });
});

withOpenssl('buildCrl, read back by openssl', () => {
  let dir: string;
  const ca = (name: string, keyArgs: string[]) => {
    const key = join(dir, `${name}.key`);
    const crt = join(dir, `${name}.crt`);
    execFileSync('openssl', ['req', '-x509', '-new', ...keyArgs, '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', `/O=Lockstep test/CN=${name}`], { stdio: 'ignore' });
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(crt, 'utf8'), crt };
  };
  const openssl = (args: string[]) => execFileSync('openssl', args, { encoding: 'utf8' });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'lockstep-crl-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const [label, keyArgs] of [
    ['ECDSA P-256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ['ECDSA P-384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']],
    ['RSA 2048', ['-newkey', 'rsa:2048']],
    ['Ed25519', ['-newkey', 'ed25519']],
  ] as const) {
    it(`${label}: the signature verifies with the CA and the entries read back`, () => {
      const root = ca(label.replace(/\W/g, ''), [...keyArgs]);
      const der = buildCrl({
        caCertPem: root.cert, caKey: root.key, crlNumber: 7,
        thisUpdate: new Date('2026-12-01T04:00:00Z'), nextUpdate: new Date('2026-12-02T04:00:00Z'),
        revoked: [
          { serial: '0A1B2C3D4E5F', revokedAt: new Date('2026-12-01T03:59:00Z'), reason: 'keyCompromise' },
          { serial: 'FF01', revokedAt: new Date('2026-12-01T03:58:00Z'), reason: 'superseded' },
        ],
      });
      const file = join(dir, `${label.replace(/\W/g, '')}.crl.pem`);
      writeFileSync(file, crlPem(der));
      const run = spawnSync('openssl', ['crl', '-in', file, '-noout', '-text', '-CAfile', root.crt, '-verify'], { encoding: 'utf8' });
      expect(run.stderr).toMatch(/verify OK/);
      const text = run.stdout;
      expect(text).toMatch(/Version 2/);
      expect(text).toMatch(/Issuer: O ?= ?Lockstep test, CN ?= ?/);
      expect(text).toMatch(/Last Update: Dec +1 04:00:00 2026 GMT/);
      expect(text).toMatch(/Next Update: Dec +2 04:00:00 2026 GMT/);
      expect(text).toMatch(/X509v3 CRL Number: *\n *7/);
      expect(text).toMatch(/Serial Number: 0A1B2C3D4E5F\n *Revocation Date: Dec +1 03:59:00 2026 GMT\n *CRL entry extensions:\n *X509v3 CRL Reason Code: *\n *Key Compromise/);
      expect(text).toMatch(/Serial Number: FF01[\s\S]*Superseded/);
      const keyId = caFacts(root.cert).keyId.toString('hex').toUpperCase().match(/../g)!.join(':');
      expect(text).toContain(keyId);
    });
  }

  it('a CRL signed by another CA does not verify against this one', () => {
    const a = ca('rootA', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const b = ca('rootB', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    // b's key, a's name: what a forged CRL looks like to a relying party.
    const der = buildCrl({ caCertPem: a.cert, caKey: b.key, crlNumber: 1, thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 3_600_000), revoked: [] });
    const file = join(dir, 'forged.crl.pem');
    writeFileSync(file, crlPem(der));
    // openssl exits 0 either way: what it prints is the verdict.
    const run = spawnSync('openssl', ['crl', '-in', file, '-noout', '-CAfile', a.crt, '-verify'], { encoding: 'utf8' });
    expect(`${run.stdout}${run.stderr}`).toMatch(/verify failure/);
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/verify OK/);
  });

  it('an empty list omits revokedCertificates and still verifies', () => {
    const root = ca('empty', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const der = buildCrl({ caCertPem: root.cert, caKey: root.key, crlNumber: 1, thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 3_600_000), revoked: [] });
    const file = join(dir, 'empty.crl.pem');
    writeFileSync(file, crlPem(der));
    expect(openssl(['crl', '-in', file, '-noout', '-text', '-CAfile', root.crt, '-verify'])).toMatch(/No Revoked Certificates/);
    expect(new X509Certificate(root.cert).ca).toBe(true);
  });

  it('refuses a nextUpdate that is not after thisUpdate', () => {
    const root = ca('order', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const at = new Date();
    expect(() => buildCrl({ caCertPem: root.cert, caKey: root.key, crlNumber: 1, thisUpdate: at, nextUpdate: at, revoked: [] })).toThrow(/nextUpdate/);
  });
});
