// Builds PKCS#10 requests for the approver's unit tests, including ones no honest client sends
// (a CA flag, a foreign SAN, a broken signature), so each rule can be seen to refuse them.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { OID } from './csr.js';
import { TAG, contextTag } from './der.js';

function encode(tag: number, value: Buffer): Buffer {
  const len = value.length;
  let header: number[];
  if (len < 0x80) header = [tag, len];
  else {
    const bytes: number[] = [];
    for (let n = len; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
    header = [tag, 0x80 | bytes.length, ...bytes];
  }
  return Buffer.concat([Buffer.from(header), value]);
}

const seq = (...items: Buffer[]): Buffer => encode(TAG.SEQUENCE, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => encode(TAG.SET, Buffer.concat(items));

function oid(text: string): Buffer {
  const arcs = text.split('.').map(Number);
  const body: number[] = [40 * (arcs[0] as number) + (arcs[1] as number)];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift(0x80 | (n & 0x7f));
    body.push(...chunk);
  }
  return encode(TAG.OID, Buffer.from(body));
}

const extension = (id: string, value: Buffer): Buffer => seq(oid(id), encode(TAG.OCTET_STRING, value));

export interface CsrOptions {
  commonName?: string;
  dnsNames?: string[];
  uris?: string[];
  ipAddresses?: string[];
  keyUsages?: string[];
  extKeyUsages?: string[];
  isCA?: boolean;
  key?: { algorithm: 'ECDSA'; size: 256 | 384 } | { algorithm: 'RSA'; size: number } | { algorithm: 'Ed25519' };
  /** Flips a bit of the signature. */
  badSignature?: boolean;
}

const KU = ['digital signature', 'content commitment', 'key encipherment', 'data encipherment', 'key agreement', 'cert sign'];

function keyUsageExtension(usages: string[]): Buffer {
  let bits = 0;
  for (const u of usages) bits |= 0x80 >> KU.indexOf(u);
  return extension(OID.keyUsage, encode(TAG.BIT_STRING, Buffer.from([0, bits])));
}

function keyPair(spec: CsrOptions['key']): { publicKey: KeyObject; privateKey: KeyObject; hash: string | null; sigAlg: string } {
  const k = spec ?? { algorithm: 'ECDSA', size: 256 };
  if (k.algorithm === 'RSA') return { ...generateKeyPairSync('rsa', { modulusLength: k.size }), hash: 'sha256', sigAlg: '1.2.840.113549.1.1.11' };
  if (k.algorithm === 'Ed25519') return { ...generateKeyPairSync('ed25519'), hash: null, sigAlg: '1.3.101.112' };
  const namedCurve = k.size === 384 ? 'secp384r1' : 'prime256v1';
  return { ...generateKeyPairSync('ec', { namedCurve }), hash: 'sha256', sigAlg: '1.2.840.10045.4.3.2' };
}

/** A PEM certificate request with the options' contents, signed by a fresh key. */
export function buildCsr(options: CsrOptions): string {
  const { publicKey, privateKey, hash, sigAlg } = keyPair(options.key);
  const subject = options.commonName
    ? seq(set(seq(oid('2.5.4.3'), encode(TAG.UTF8_STRING, Buffer.from(options.commonName)))))
    : seq();
  const sans = [
    ...(options.dnsNames ?? []).map((d) => encode(contextTag(2, false), Buffer.from(d))),
    ...(options.uris ?? []).map((u) => encode(contextTag(6, false), Buffer.from(u))),
    ...(options.ipAddresses ?? []).map((ip) => encode(contextTag(7, false), Buffer.from(ip.split('.').map(Number)))),
  ];
  const extensions = [
    ...(sans.length > 0 ? [extension(OID.subjectAltName, seq(...sans))] : []),
    ...(options.keyUsages ? [keyUsageExtension(options.keyUsages)] : []),
    ...(options.extKeyUsages ? [extension(OID.extKeyUsage, seq(...options.extKeyUsages.map(oid)))] : []),
    ...(options.isCA ? [extension(OID.basicConstraints, seq(encode(TAG.BOOLEAN, Buffer.from([0xff]))))] : []),
  ];
  const attributes = encode(contextTag(0, true), extensions.length > 0 ? seq(oid(OID.extensionRequest), set(seq(...extensions))) : Buffer.alloc(0));
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const info = seq(encode(TAG.INTEGER, Buffer.from([0])), subject, spki, attributes);
  const signature = sign(hash, info, privateKey);
  if (options.badSignature) signature[signature.length - 1] = (signature[signature.length - 1] as number) ^ 1;
  const der = seq(info, seq(oid(sigAlg)), encode(TAG.BIT_STRING, Buffer.concat([Buffer.from([0]), signature])));
  const body = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${body}\n-----END CERTIFICATE REQUEST-----\n`;
}
