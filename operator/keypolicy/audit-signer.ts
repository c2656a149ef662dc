// The operator's audit signing key: an Ed25519 private key in a Secret in the operator's
// namespace (created once, never logged, never in status), its public half in a ConfigMap of
// the same name beside it, where `lockstep audit verify` reads it. The key is not rotated by the
// operator: replacing it (delete both objects) makes earlier signatures verifiable only with the
// old public key (`lockstep audit verify --public-key FILE`).
import type { CoreV1Api, V1ConfigMap } from '@kubernetes/client-node';
import type { KeyObject } from 'node:crypto';
import { LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../api/v1alpha1/index.js';
import {
  generateAuditSigningKey, privateKeyPem, publicKeyFromPem, publicKeyPem, signingKeyFromPem, type AuditSigningKey,
} from '../audit/signing.js';
import { isAlreadyExists, isNotFound } from '../runtime/api-error.js';
import { AUDIT_SIGNING_KEY_NAME } from './names.js';

const PRIVATE_KEY = 'ed25519.pem';
export const PUBLIC_KEY = 'public.pem';
const KEY_ID = 'keyId';
const labels = { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_COMPONENT]: 'audit' };

async function readPrivate(core: CoreV1Api, namespace: string): Promise<AuditSigningKey | undefined> {
  try {
    const secret = await core.readNamespacedSecret({ namespace, name: AUDIT_SIGNING_KEY_NAME });
    const pem = secret.data?.[PRIVATE_KEY];
    if (!pem) throw new Error(`Secret ${namespace}/${AUDIT_SIGNING_KEY_NAME} has no ${PRIVATE_KEY}`);
    return signingKeyFromPem(Buffer.from(pem, 'base64').toString('utf8'));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Loads the signing key, creating it on first use, and (re)publishes its public half. */
export async function loadSigningKey(core: CoreV1Api, namespace: string): Promise<AuditSigningKey> {
  let key = await readPrivate(core, namespace);
  if (!key) {
    const fresh = generateAuditSigningKey();
    try {
      await core.createNamespacedSecret({
        namespace,
        body: {
          apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: AUDIT_SIGNING_KEY_NAME, namespace, labels },
          data: { [PRIVATE_KEY]: Buffer.from(privateKeyPem(fresh), 'utf8').toString('base64') },
        },
      });
      key = fresh;
    } catch (err) {
      // Another replica made one first: use theirs.
      if (!isAlreadyExists(err)) throw err;
      key = await readPrivate(core, namespace);
      if (!key) throw new Error(`audit signing key ${namespace}/${AUDIT_SIGNING_KEY_NAME} vanished while reading it`);
    }
  }
  const desired: V1ConfigMap = {
    apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: AUDIT_SIGNING_KEY_NAME, namespace, labels },
    data: { [PUBLIC_KEY]: publicKeyPem(key.publicKey), [KEY_ID]: key.keyId },
  };
  try {
    const live = await core.readNamespacedConfigMap({ namespace, name: AUDIT_SIGNING_KEY_NAME });
    if (live.data?.[PUBLIC_KEY] !== desired.data?.[PUBLIC_KEY] || live.data?.[KEY_ID] !== key.keyId) {
      await core.replaceNamespacedConfigMap({ namespace, name: AUDIT_SIGNING_KEY_NAME, body: { ...desired, metadata: { ...desired.metadata, ...(live.metadata?.resourceVersion ? { resourceVersion: live.metadata.resourceVersion } : {}) } } });
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await core.createNamespacedConfigMap({ namespace, body: desired }).catch((e: unknown) => { if (!isAlreadyExists(e)) throw e; });
  }
  return key;
}

/** The published public key, for verifiers; undefined when none is published. */
export async function readPublishedKey(core: CoreV1Api, namespace: string): Promise<{ key: KeyObject; keyId: string } | undefined> {
  try {
    const cm = await core.readNamespacedConfigMap({ namespace, name: AUDIT_SIGNING_KEY_NAME });
    const pem = cm.data?.[PUBLIC_KEY];
    return pem ? { key: publicKeyFromPem(pem), keyId: cm.data?.[KEY_ID] ?? '' } : undefined;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
