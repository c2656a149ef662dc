// Opens (and keeps) the PKCS#11 sessions KeyPolicies with keyStore PKCS11 use. The config Secret
// is read from the API server on every call — it is small, and a fixed PIN or module path must
// take effect without a restart — and a session is reused while the config is the same. Nothing
// here creates or reads a key; the PIN goes only to C_Login (pkcs11-config.ts keeps it redacted).
import { createHash } from 'node:crypto';
import type { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import { Reasons, type Reason } from '../api/v1alpha1/index.js';
import { KeyStoreError, isKeyStoreError } from '../crypto/key-store-errors.js';
import { parsePkcs11Secret, type Pkcs11Config } from '../crypto/pkcs11-config.js';
import { Pkcs11Session, loadPkcs11js, type Pkcs11Loader } from '../crypto/pkcs11-session.js';
import { isNotFound } from '../runtime/api-error.js';
import { hsmGrant } from './hsm-grant.js';

export interface HsmSessionsOptions {
  core: Pick<CoreV1Api, 'readNamespacedSecret'>;
  operatorNamespace: string;
  load?: Pkcs11Loader;
}

/** Thrown when a policy names an HSM config its namespace is not granted. */
export class HsmNotAllowedError extends Error {
  override readonly name = 'HsmNotAllowedError';
}

export class HsmSessions {
  readonly #open = new Map<string, { fingerprint: string; session: Pkcs11Session }>();

  constructor(private readonly o: HsmSessionsOptions) {}

  /** The logged-in session for `configSecretName`, after the grant check. Throws KeyStoreError or HsmNotAllowedError. */
  async session(policyNamespace: string, configSecretName: string): Promise<Pkcs11Session> {
    const secret = await this.readConfig(configSecretName);
    const grant = hsmGrant(policyNamespace, this.o.operatorNamespace, configSecretName, secret.metadata?.annotations);
    if (!grant.allowed) throw new HsmNotAllowedError(grant.message);
    const config = parsePkcs11Secret(secret.data ?? {});
    const fingerprint = fingerprintOf(config);
    const cached = this.#open.get(configSecretName);
    if (cached?.fingerprint === fingerprint) return probed(cached.session);
    const session = await Pkcs11Session.open(config, this.o.load ?? loadPkcs11js);
    cached?.session.close();
    this.#open.set(configSecretName, { fingerprint, session });
    return session;
  }

  private async readConfig(name: string): Promise<V1Secret> {
    try {
      return await this.o.core.readNamespacedSecret({ namespace: this.o.operatorNamespace, name });
    } catch (err) {
      if (isNotFound(err)) throw new KeyStoreError('Misconfigured', `HSM config Secret ${this.o.operatorNamespace}/${name} does not exist`);
      throw err;
    }
  }
}

/**
 * A session kept from an earlier reconcile may have been logged out or closed meanwhile (the
 * token was away). Checking costs one C_GetSessionInfo; a session that fails the check is
 * forgotten by Pkcs11Session, so the second check opens a new one and logs in. Without this, a
 * policy whose reconcile needs no token call would stay Ready on a token it can no longer use.
 */
function probed(session: Pkcs11Session): Pkcs11Session {
  try {
    session.assertLoggedIn();
  } catch (err) {
    if (!isKeyStoreError(err) || !err.retryable) throw err;
    session.assertLoggedIn();
  }
  return session;
}

// Which config a session was opened with, without keeping the PIN itself around in another form.
function fingerprintOf(config: Pkcs11Config): string {
  return createHash('sha256')
    .update(JSON.stringify([config.modulePath, config.tokenLabel ?? '', String(config.slot ?? ''), config.pin.reveal()]))
    .digest('base64url');
}

/** A KEK store failure as a condition reason and message (messages carry no PIN or key bytes). */
export function keyStoreProblem(err: unknown): { reason: Reason; message: string } | undefined {
  if (err instanceof HsmNotAllowedError) return { reason: Reasons.KeyStoreNotAllowed, message: err.message };
  if (!isKeyStoreError(err)) return undefined;
  const reason = err.reason === 'Unavailable' ? Reasons.KeyStoreUnavailable : err.reason === 'KeyMissing' ? Reasons.KeyMissing : Reasons.KeyStoreMisconfigured;
  const advice = err.reason === 'Unavailable' ? 'retrying; no key is made meanwhile' : err.reason === 'KeyMissing' ? 'restore the token; no key is made in its place' : 'fix the HSM config Secret or the HSM';
  return { reason, message: `HSM key store: ${err.message} (${advice})` };
}
