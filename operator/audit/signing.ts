import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

// Ed25519 signatures over audit hashes. The chain's SHA-256 links already pin every entry to the
// head; a signature adds who wrote them: someone who can write the operator's ConfigMaps but not
// read its signing-key Secret can no longer rewrite chain and head consistently. A signature (not
// an HMAC) so that auditors verify with the public key alone and never need the operator's secret.
// Only hashes are signed: the hash already covers the entry's canonical form.

const ENTRY_DOMAIN = 'lockstep.audit.entry-signature.v1';
const HEAD_DOMAIN = 'lockstep.audit.head-signature.v1';
const OUTBOX_DOMAIN = 'lockstep.audit.outbox-signature.v1';

export interface AuditSigningKey {
  readonly keyId: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** First 16 bytes (hex) of SHA-256 over the SPKI DER: names the key without revealing anything. */
export function auditKeyId(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 32);
}

export function generateAuditSigningKey(): AuditSigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { keyId: auditKeyId(publicKey), privateKey, publicKey };
}

export function signingKeyFromPem(privatePem: string): AuditSigningKey {
  const privateKey = createPrivateKey(privatePem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('audit signing key must be Ed25519');
  const publicKey = createPublicKey(privateKey);
  return { keyId: auditKeyId(publicKey), privateKey, publicKey };
}

export function privateKeyPem(key: AuditSigningKey): string {
  return key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function publicKeyPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

export function publicKeyFromPem(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error('audit verification key must be Ed25519');
  return key;
}

const message = (domain: string, body: string): Buffer => Buffer.from(`${domain}\n${body}`, 'utf8');

export function signEntryHash(key: AuditSigningKey, hash: string): string {
  return sign(null, message(ENTRY_DOMAIN, hash), key.privateKey).toString('base64');
}

export function entrySignatureValid(publicKey: KeyObject, hash: string, signature: string): boolean {
  try {
    return verify(null, message(ENTRY_DOMAIN, hash), publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** `body` is the head's canonical JSON without its signature. */
export function signHeadBody(key: AuditSigningKey, body: string): string {
  return sign(null, message(HEAD_DOMAIN, body), key.privateKey).toString('base64');
}

export function headSignatureValid(publicKey: KeyObject, body: string, signature: string): boolean {
  try {
    return verify(null, message(HEAD_DOMAIN, body), publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** Pending events parked in a key Secret (keypolicy/audit-outbox.ts), bound to that Secret. */
export function signOutboxBody(key: AuditSigningKey, body: string): string {
  return sign(null, message(OUTBOX_DOMAIN, body), key.privateKey).toString('base64');
}

export function outboxSignatureValid(publicKey: KeyObject, body: string, signature: string): boolean {
  try {
    return verify(null, message(OUTBOX_DOMAIN, body), publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}
