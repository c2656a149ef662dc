// The offline recovery key pair that backups are encrypted to. The private half is made on the
// operator's workstation (`lockstep recovery-key`) and never goes near the cluster: backup needs
// only the public half, and refuses a file holding private members where a public key is expected,
// so the habit of passing the private key around never forms.
import { randomBytes } from 'node:crypto';
import jose from 'node-jose';

export type RecoveryAlgorithm = 'RSA-OAEP-256' | 'ECDH-ES+A256KW';
export const RECOVERY_ALGORITHMS: readonly RecoveryAlgorithm[] = ['RSA-OAEP-256', 'ECDH-ES+A256KW'];

export interface RecoveryPublicKey {
  readonly kty: 'RSA' | 'EC';
  readonly kid: string;
  readonly use: 'enc';
  readonly alg: RecoveryAlgorithm;
  readonly [member: string]: string;
}

/** The private JWK: public members plus d (and the RSA CRT members). */
export type RecoveryPrivateKey = RecoveryPublicKey;

const PUBLIC_MEMBERS = { RSA: ['n', 'e'], EC: ['crv', 'x', 'y'] } as const;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];
const KID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A recovery-key problem the user can act on; the message never carries key members. */
export class RecoveryKeyError extends Error {
  override readonly name = 'RecoveryKeyError';
}

export async function generateRecoveryKey(alg: RecoveryAlgorithm, now: Date): Promise<{ privateKey: RecoveryPrivateKey; publicKey: RecoveryPublicKey }> {
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '').toLowerCase();
  const kid = `recovery-${stamp}-${randomBytes(4).toString('hex')}`;
  const [kty, size] = alg === 'RSA-OAEP-256' ? ['RSA', 4096] as const : ['EC', 'P-384'] as const;
  const key = await jose.JWK.createKeyStore().generate(kty, size, { kid, alg, use: 'enc' });
  const privateKey = key.toJSON(true) as RecoveryPrivateKey;
  return { privateKey, publicKey: publicHalf(privateKey) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJwk(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new RecoveryKeyError(`${what} is not JSON`);
  }
  // A JWK Set with one key is accepted too: that is what most tools write.
  if (isRecord(value) && Array.isArray(value['keys'])) {
    if (value['keys'].length !== 1) throw new RecoveryKeyError(`${what} must hold exactly one key`);
    value = value['keys'][0];
  }
  if (!isRecord(value)) throw new RecoveryKeyError(`${what} is not a JWK`);
  const { kty, kid, alg } = value;
  if (kty !== 'RSA' && kty !== 'EC') throw new RecoveryKeyError(`${what}: kty must be RSA or EC`);
  if (typeof kid !== 'string' || !KID.test(kid)) throw new RecoveryKeyError(`${what}: kid missing or malformed`);
  if (alg !== (kty === 'RSA' ? 'RSA-OAEP-256' : 'ECDH-ES+A256KW')) throw new RecoveryKeyError(`${what}: alg must be RSA-OAEP-256 (RSA) or ECDH-ES+A256KW (EC)`);
  for (const member of PUBLIC_MEMBERS[kty]) {
    if (typeof value[member] !== 'string') throw new RecoveryKeyError(`${what}: missing public member ${member}`);
  }
  return value;
}

function publicHalf(key: Record<string, unknown>): RecoveryPublicKey {
  const kty = key['kty'] as 'RSA' | 'EC';
  const out: Record<string, string> = { kty, kid: key['kid'] as string, use: 'enc', alg: key['alg'] as string };
  for (const member of PUBLIC_MEMBERS[kty]) out[member] = key[member] as string;
  return out as RecoveryPublicKey;
}

/** The recipient of a backup. A private key here is refused: it belongs offline. */
export function parseRecoveryPublicKey(text: string): RecoveryPublicKey {
  const jwk = parseJwk(text, 'recovery public key');
  if (PRIVATE_MEMBERS.some((member) => member in jwk)) {
    throw new RecoveryKeyError('the recovery public key file holds a private key: give the public half (lockstep recovery-key writes both); keep the private half offline');
  }
  return publicHalf(jwk);
}

export function parseRecoveryPrivateKey(text: string): RecoveryPrivateKey {
  const jwk = parseJwk(text, 'recovery private key');
  if (typeof jwk['d'] !== 'string') throw new RecoveryKeyError('the recovery private key file holds no private key (d)');
  return jwk as RecoveryPrivateKey;
}

/** RFC 7638 thumbprint (SHA-256, base64url): names the key pair without revealing anything. */
export async function recoveryKeyThumbprint(key: RecoveryPublicKey): Promise<string> {
  const joseKey = await jose.JWK.asKey(publicHalf(key), 'json');
  return Buffer.from(await joseKey.thumbprint('SHA-256')).toString('base64url');
}
