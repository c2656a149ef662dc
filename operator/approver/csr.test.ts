import { describe, expect, it } from '@jest/globals';
import { OID, csrDer, parseCsr } from './csr.js';
import { DerError } from './der.js';
import { buildCsr } from './test-csr.js';

// Made by `openssl req -new` (an encoder other than ours); the key was discarded.
const OPENSSL_CSR = `-----BEGIN CERTIFICATE REQUEST-----
MIIBPDCB4wIBADAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBQagodo0kbSz
02H4MZoSQTFiDehe88GmKRmtZDwEFcmQgwLanagIYXtnPN+viDREk5LO3nvRI7NU
q/Cw53VsUqCBgDB+BgkqhkiG9w0BCQ4xcTBvMD4GA1UdEQQ3MDWCDGFwaS5zaG9w
LnN2Y4Ylc3BpZmZlOi8vY2x1c3Rlci5sb2NhbC9ucy9zaG9wL3NhL2FwaTAOBgNV
HQ8BAf8EBAMCBaAwHQYDVR0lBBYwFAYIKwYBBQUHAwEGCCsGAQUFBwMCMAoGCCqG
SM49BAMCA0gAMEUCIQCZXAhiQ7iIrg6/DBkxkdGiWTcK3AEUTADTh9YRCBBNpAIg
W1coqRj/XHUH3ZpX02Ve0xdR4mQgxcT5QB2dwJ35WTE=
-----END CERTIFICATE REQUEST-----
`;

describe('parseCsr', () => {
  it('reads what openssl wrote', () => {
    const csr = parseCsr(csrDer(OPENSSL_CSR));
    expect(csr).toEqual({
      subject: [],
      dnsNames: ['api.shop.svc'],
      uris: ['spiffe://cluster.local/ns/shop/sa/api'],
      ipAddresses: [],
      emailAddresses: [],
      otherNames: 0,
      keyUsages: ['digital signature', 'key encipherment'],
      extKeyUsages: [OID.serverAuth, OID.clientAuth],
      isCA: false,
      otherExtensions: [],
      publicKey: { algorithm: 'ECDSA', size: 256 },
      signatureValid: true,
    });
  });

  it('reads subject, IP SANs, the CA flag and RSA and Ed25519 keys', () => {
    const rsa = parseCsr(csrDer(buildCsr({ commonName: 'x', ipAddresses: ['10.0.0.1'], isCA: true, key: { algorithm: 'RSA', size: 2048 } })));
    expect(rsa.subject).toEqual(['2.5.4.3=x']);
    expect(rsa.ipAddresses).toEqual(['10.0.0.1']);
    expect(rsa.isCA).toBe(true);
    expect(rsa.publicKey).toEqual({ algorithm: 'RSA', size: 2048 });
    expect(rsa.signatureValid).toBe(true);
    const ed = parseCsr(csrDer(buildCsr({ dnsNames: ['a'], key: { algorithm: 'Ed25519' } })));
    expect(ed.publicKey).toEqual({ algorithm: 'Ed25519' });
    expect(ed.signatureValid).toBe(true);
    expect(parseCsr(csrDer(buildCsr({ dnsNames: ['a'], key: { algorithm: 'ECDSA', size: 384 } }))).publicKey).toEqual({ algorithm: 'ECDSA', size: 384 });
  });

  it('reports a signature that does not verify', () => {
    expect(parseCsr(csrDer(buildCsr({ dnsNames: ['a'], badSignature: true }))).signatureValid).toBe(false);
  });

  it('refuses truncated, padded and non-PEM input', () => {
    const der = csrDer(OPENSSL_CSR);
    expect(() => parseCsr(der.subarray(0, der.length - 1))).toThrow(DerError);
    expect(() => parseCsr(Buffer.concat([der, Buffer.from([0])]))).toThrow(DerError);
    expect(() => parseCsr(Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]))).toThrow(DerError);
    expect(() => csrDer('not a request')).toThrow(DerError);
    // A tampered SAN breaks the signature rather than the parse.
    const tampered = Buffer.from(der);
    tampered.write('x', der.indexOf('shop'), 'latin1');
    expect(parseCsr(tampered).signatureValid).toBe(false);
  });
});
