// Builds an X.509 v2 CRL (RFC 5280 section 5) signed with a CA's key: node:crypto verifies and
// signs but cannot build one, and no dependency is needed for the few fields a CRL has. Pure:
// the CA certificate, its key and the revoked serials in, the DER (and PEM) out.
import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { children, readOnly, type Der } from '../approver/der.js';
import {
  bitString, enumerated, explicit, implicitPrimitive, integer, nullValue, octetString, oid, sequence, serialInteger, time,
} from './der-writer.js';

/** RFC 5280 5.3.1 CRLReason values a revocation may carry. */
export const REVOCATION_REASONS = {
  unspecified: 0, keyCompromise: 1, cACompromise: 2, affiliationChanged: 3, superseded: 4, cessationOfOperation: 5,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

export function isRevocationReason(value: string): value is RevocationReason {
  return Object.hasOwn(REVOCATION_REASONS, value);
}

export interface RevokedEntry {
  /** Certificate serial, hex (X509Certificate.serialNumber). */
  serial: string;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface CrlInput {
  /** The issuing CA's certificate (PEM): its subject becomes the CRL's issuer. */
  caCertPem: string;
  /** The CA's private key (PEM or KeyObject). Never returned or reported. */
  caKey: string | KeyObject;
  revoked: readonly RevokedEntry[];
  thisUpdate: Date;
  nextUpdate: Date;
  /** Monotonic cRLNumber: a relying party keeps the highest one it saw. */
  crlNumber: number | bigint;
}

const OID = {
  subjectKeyIdentifier: '2.5.29.14',
  cRLNumber: '2.5.29.20',
  reasonCode: '2.5.29.21',
  authorityKeyIdentifier: '2.5.29.35',
};

/** What the CRL needs from the CA certificate: its subject (exact DER) and key identifier. */
export function caFacts(caCertPem: string): { subject: Buffer; keyId: Buffer } {
  const body = caCertPem.match(/-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/)?.[1];
  if (!body) throw new Error('the CA certificate is not PEM');
  const [tbs] = children(readOnly(Buffer.from(body.replace(/\s+/g, ''), 'base64')));
  if (!tbs) throw new Error('the CA certificate has no tbsCertificate');
  const fields = children(tbs);
  // [0] version is present in every v3 certificate; skip it so indexes are those of RFC 5280.
  const rest = fields[0]?.tag === 0xa0 ? fields.slice(1) : fields;
  const subject = rest[4];
  const spki = rest[5];
  if (!subject || !spki) throw new Error('the CA certificate is truncated');
  const extensions = rest.find((f) => f.tag === 0xa3);
  const ski = extensions ? subjectKeyIdentifier(extensions) : undefined;
  // RFC 5280 4.2.1.2 method 1 when the CA carries no SKI: SHA-1 of the subjectPublicKey bits.
  const keyBits = children(spki)[1];
  const keyId = ski ?? createHash('sha1').update(keyBits ? keyBits.value.subarray(1) : spki.raw).digest();
  return { subject: Buffer.from(subject.raw), keyId };
}

function subjectKeyIdentifier(extensions: Der): Buffer | undefined {
  const wanted = oid(OID.subjectKeyIdentifier);
  const list = children(extensions)[0];
  for (const ext of list ? children(list) : []) {
    const [id, ...more] = children(ext);
    if (!id || !id.raw.equals(wanted)) continue;
    const value = more[more.length - 1];
    return value ? Buffer.from(readOnly(value.value).value) : undefined;
  }
  return undefined;
}

/** The signature algorithm for the CA key, as node:crypto's digest name and the AlgorithmIdentifier. */
function signatureAlgorithm(key: KeyObject): { digest: string | null; identifier: Buffer } {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const [digest, id] = curve === 'secp384r1' ? ['sha384', '1.2.840.10045.4.3.3'] : curve === 'secp521r1' ? ['sha512', '1.2.840.10045.4.3.4'] : ['sha256', '1.2.840.10045.4.3.2'];
      return { digest: digest!, identifier: sequence(oid(id!)) };
    }
    case 'rsa':
      return { digest: 'sha256', identifier: sequence(oid('1.2.840.113549.1.1.11'), nullValue()) };
    case 'ed25519':
      return { digest: null, identifier: sequence(oid('1.3.101.112')) };
    default:
      throw new Error(`CA key type ${key.asymmetricKeyType ?? 'unknown'} cannot sign a CRL here`);
  }
}

const extension = (id: string, value: Buffer): Buffer => sequence(oid(id), octetString(value));

/** The CRL, DER-encoded. Entries are sorted by serial so the same list gives the same bytes. */
export function buildCrl(input: CrlInput): Buffer {
  if (input.nextUpdate.getTime() <= input.thisUpdate.getTime()) throw new RangeError('nextUpdate must be after thisUpdate');
  const key = typeof input.caKey === 'string' ? createPrivateKey(input.caKey) : input.caKey;
  const { subject, keyId } = caFacts(input.caCertPem);
  const algorithm = signatureAlgorithm(key);
  const entries = [...input.revoked]
    .sort((a, b) => normalSerial(a.serial).localeCompare(normalSerial(b.serial)))
    .map((e) => sequence(
      serialInteger(e.serial),
      time(e.revokedAt),
      sequence(extension(OID.reasonCode, enumerated(REVOCATION_REASONS[e.reason]))),
    ));
  const tbs = sequence(
    integer(1), // v2: the CRL carries extensions
    algorithm.identifier,
    subject,
    time(input.thisUpdate),
    time(input.nextUpdate),
    ...(entries.length > 0 ? [sequence(...entries)] : []),
    explicit(0, sequence(
      extension(OID.authorityKeyIdentifier, sequence(implicitPrimitive(0, keyId))),
      extension(OID.cRLNumber, integer(input.crlNumber)),
    )),
  );
  const signature = sign(algorithm.digest, tbs, key);
  return sequence(tbs, algorithm.identifier, bitString(signature));
}

export function crlPem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN X509 CRL-----\n${lines.join('\n')}\n-----END X509 CRL-----\n`;
}

/** Serials compared as numbers written in hex: upper case, no leading zeros, no colons. */
export function normalSerial(serial: string): string {
  return serial.replace(/:/g, '').toUpperCase().replace(/^0+(?=.)/, '');
}
