// What a PKCS#10 certificate request (RFC 2986) asks for: subject, SANs, key usages, CA flag and
// public key, and whether its self-signature holds. Pure; node:crypto checks the key and
// signature, the DER walk is der.ts.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import {
  DerError, TAG, children, contextTag, decodeBitString, decodeBoolean, decodeOid, decodeString, expectTag, readOnly,
  type Der,
} from './der.js';

export interface ParsedCsr {
  /** Subject attributes as OID=value, in order; empty for the requests Lockstep makes. */
  subject: string[];
  dnsNames: string[];
  uris: string[];
  ipAddresses: string[];
  emailAddresses: string[];
  /** SAN forms other than DNS, URI, IP and email (otherName, directoryName, ...), by tag. */
  otherNames: number;
  /** keyUsage names (RFC 5280 order), undefined when the extension is absent. */
  keyUsages: string[] | undefined;
  /** extendedKeyUsage OIDs, undefined when absent. */
  extKeyUsages: string[] | undefined;
  /** basicConstraints cA. */
  isCA: boolean;
  /** Extension OIDs other than SAN, key usage, extended key usage and basic constraints. */
  otherExtensions: string[];
  publicKey: PublicKeyInfo;
  signatureValid: boolean;
}

export interface PublicKeyInfo {
  algorithm: 'ECDSA' | 'RSA' | 'Ed25519' | 'other';
  /** ECDSA curve size in bits, or RSA modulus length. */
  size?: number;
}

export const OID = {
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  basicConstraints: '2.5.29.19',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

const KEY_USAGE_BITS = [
  'digital signature', 'content commitment', 'key encipherment', 'data encipherment', 'key agreement',
  'cert sign', 'crl sign', 'encipher only', 'decipher only',
];

const SIGNATURE_HASH: Record<string, string | null> = {
  '1.2.840.10045.4.3.2': 'sha256', '1.2.840.10045.4.3.3': 'sha384', '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256', '1.2.840.113549.1.1.12': 'sha384', '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null,
};

const CURVE_BITS: Record<string, number> = { prime256v1: 256, secp384r1: 384, secp521r1: 521 };

/** The DER inside a PEM `CERTIFICATE REQUEST` block (cert-manager's spec.request, base64-decoded). */
export function csrDer(pem: string): Buffer {
  const m = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]+)-----END (NEW )?CERTIFICATE REQUEST-----/.exec(pem);
  if (!m) throw new DerError('no PEM CERTIFICATE REQUEST block');
  return Buffer.from((m[2] ?? '').replace(/\s+/g, ''), 'base64');
}

export function parseCsr(der: Buffer): ParsedCsr {
  const [info, sigAlg, sig, ...rest] = children(expectTag(readOnly(der), TAG.SEQUENCE, 'CertificationRequest'));
  if (rest.length > 0) throw new DerError('CertificationRequest: unexpected trailing fields');
  const [version, subject, spki, attributes, ...extra] = children(expectTag(info, TAG.SEQUENCE, 'CertificationRequestInfo'));
  if (extra.length > 0) throw new DerError('CertificationRequestInfo: unexpected trailing fields');
  expectTag(version, TAG.INTEGER, 'version');
  const publicKey = publicKeyOf(expectTag(spki, TAG.SEQUENCE, 'subjectPKInfo'));
  const out: ParsedCsr = {
    subject: subjectOf(expectTag(subject, TAG.SEQUENCE, 'subject')),
    dnsNames: [], uris: [], ipAddresses: [], emailAddresses: [], otherNames: 0,
    keyUsages: undefined, extKeyUsages: undefined, isCA: false, otherExtensions: [],
    publicKey: publicKey.info,
    signatureValid: false,
  };
  for (const attribute of attributes ? children(expectTag(attributes, contextTag(0, true), 'attributes')) : []) {
    const [type, values] = children(expectTag(attribute, TAG.SEQUENCE, 'attribute'));
    if (decodeOid(expectTag(type, TAG.OID, 'attribute type')) !== OID.extensionRequest) continue;
    for (const extensions of children(expectTag(values, TAG.SET, 'attribute values'))) {
      for (const extension of children(expectTag(extensions, TAG.SEQUENCE, 'extensions'))) readExtension(extension, out);
    }
  }
  const [algOid] = children(expectTag(sigAlg, TAG.SEQUENCE, 'signatureAlgorithm'));
  const hash = SIGNATURE_HASH[decodeOid(expectTag(algOid, TAG.OID, 'signature algorithm'))];
  const { bytes, unused } = decodeBitString(expectTag(sig, TAG.BIT_STRING, 'signature'));
  if (hash !== undefined && unused === 0 && publicKey.key) {
    try {
      out.signatureValid = verify(hash, (info as Der).raw, publicKey.key, bytes);
    } catch {
      out.signatureValid = false;
    }
  }
  return out;
}

function subjectOf(name: Der): string[] {
  const out: string[] = [];
  for (const rdn of children(name)) {
    for (const atv of children(expectTag(rdn, TAG.SET, 'relative distinguished name'))) {
      const [type, value] = children(expectTag(atv, TAG.SEQUENCE, 'attribute type and value'));
      out.push(`${decodeOid(expectTag(type, TAG.OID, 'attribute type'))}=${value ? decodeString(value) : ''}`);
    }
  }
  return out;
}

function publicKeyOf(spki: Der): { info: PublicKeyInfo; key?: KeyObject } {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki.raw, format: 'der', type: 'spki' });
  } catch {
    return { info: { algorithm: 'other' } };
  }
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const size = CURVE_BITS[details.namedCurve ?? ''];
      return { info: size ? { algorithm: 'ECDSA', size } : { algorithm: 'other' }, key };
    }
    case 'rsa':
      return { info: { algorithm: 'RSA', ...(details.modulusLength ? { size: details.modulusLength } : {}) }, key };
    case 'ed25519':
      return { info: { algorithm: 'Ed25519' }, key };
    default:
      return { info: { algorithm: 'other' }, key };
  }
}

function readExtension(extension: Der, out: ParsedCsr): void {
  const parts = children(expectTag(extension, TAG.SEQUENCE, 'extension'));
  const oid = decodeOid(expectTag(parts[0], TAG.OID, 'extension id'));
  const valueEl = parts[parts.length - 1];
  if (parts.length === 3) decodeBoolean(expectTag(parts[1], TAG.BOOLEAN, 'critical'));
  else if (parts.length !== 2) throw new DerError('extension: unexpected fields');
  const value = readOnly(expectTag(valueEl, TAG.OCTET_STRING, 'extension value').value);
  switch (oid) {
    case OID.subjectAltName:
      for (const name of children(expectTag(value, TAG.SEQUENCE, 'subjectAltName'))) readGeneralName(name, out);
      return;
    case OID.keyUsage: {
      const { bytes, unused } = decodeBitString(value);
      const usages: string[] = [];
      for (let bit = 0; bit < bytes.length * 8 - unused; bit++) {
        if (((bytes[bit >> 3] as number) >> (7 - (bit & 7))) & 1) usages.push(KEY_USAGE_BITS[bit] ?? `bit ${bit}`);
      }
      out.keyUsages = usages;
      return;
    }
    case OID.extKeyUsage:
      out.extKeyUsages = children(expectTag(value, TAG.SEQUENCE, 'extKeyUsage')).map(decodeOid);
      return;
    case OID.basicConstraints: {
      const [ca] = children(expectTag(value, TAG.SEQUENCE, 'basicConstraints'));
      out.isCA = ca?.tag === TAG.BOOLEAN ? decodeBoolean(ca) : false;
      return;
    }
    default:
      out.otherExtensions.push(oid);
  }
}

function readGeneralName(name: Der, out: ParsedCsr): void {
  switch (name.tag) {
    case contextTag(1, false):
      out.emailAddresses.push(name.value.toString('latin1'));
      return;
    case contextTag(2, false):
      out.dnsNames.push(name.value.toString('latin1'));
      return;
    case contextTag(6, false):
      out.uris.push(name.value.toString('latin1'));
      return;
    case contextTag(7, false):
      out.ipAddresses.push(name.value.length === 4 ? [...name.value].join('.') : name.value.toString('hex'));
      return;
    default:
      out.otherNames += 1;
  }
}
