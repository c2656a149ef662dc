// Whether a Secret is an envelope store the operator wrote, for which service and KeyPolicy.
// Anyone with Secret rights in a namespace can create a Secret with Lockstep's labels and a JWE
// header naming any kid, so a store is trusted only when it sits at the name derived from its
// service, carries that service's labels (and no owner but that service), and its integrity tag
// verifies under the KEK its data key is wrapped with. Pure: the callers decide what to report.
import type { V1Secret } from '@kubernetes/client-node';
import { ENCRYPTED_SERVICE, LABEL_COMPONENT, LABEL_ENCRYPTED_SERVICE, LABEL_KEY_POLICY } from '../api/v1alpha1/index.js';
import { inspectWrappedDataKey } from '../crypto/datakey.js';
import type { KeySet, ManagedKey } from '../crypto/keyset.js';
import { storeTag, storeTagMatches, type StoreTagInput } from '../crypto/store-mac.js';
import { LABEL_KEY_POLICY_NAMESPACE } from '../keypolicy/names.js';
import { WRAPPED_DEK_KEY, envelopeStoreName } from './envelope-store.js';

/** On an envelope store: its integrity tag (crypto/store-mac.ts). Not secret. */
export const ANNOTATION_STORE_INTEGRITY = 'lockstep.dev/store-integrity';

export interface StoreExpectation {
  readonly namespace: string;
  readonly service: string;
  readonly policy: { readonly namespace: string; readonly name: string };
  /** The service's uid when it exists: an owner reference to anything else is not ours. */
  readonly serviceUid?: string;
}

export type UntrustedReason = 'NotOperatorWritten' | 'UnknownKey' | 'IntegrityMismatch' | 'NoIntegrityTag';

export type StoreVerdict =
  | { readonly trusted: true; readonly legacy?: false; readonly kid: string; readonly wrapped: string }
  /** Right place and labels, no tag (written before tags existed): only opening its data key can tell. */
  | { readonly trusted: false; readonly legacy: true; readonly kid: string; readonly wrapped: string }
  | {
    readonly trusted: false; readonly legacy?: false; readonly reason: UntrustedReason; readonly message: string;
    /** With IntegrityMismatch: the data key the store names (it may still be the operator's, under tampered envelopes). */
    readonly kid?: string; readonly wrapped?: string;
  };

const untrusted = (reason: UntrustedReason, message: string): StoreVerdict => ({ trusted: false, reason, message });

export function tagInput(expected: StoreExpectation, data: Readonly<Record<string, string>>): StoreTagInput {
  return { namespace: expected.namespace, store: envelopeStoreName(expected.service), service: expected.service, policy: expected.policy, data };
}

/** The tag for a store about to be written with `data`, under the KEK its data key is wrapped with. */
export function tagFor(kek: ManagedKey, expected: StoreExpectation, data: Readonly<Record<string, string>>): string {
  return storeTag(kek, tagInput(expected, data));
}

export function verifyEnvelopeStore(secret: V1Secret, expected: StoreExpectation, kek: KeySet): StoreVerdict {
  const name = secret.metadata?.name ?? '';
  const where = `${secret.metadata?.namespace ?? ''}/${name}`;
  const labels = secret.metadata?.labels ?? {};
  if (secret.metadata?.namespace !== expected.namespace || name !== envelopeStoreName(expected.service)) {
    return untrusted('NotOperatorWritten', `Secret ${where} is not at the store name of EncryptedService ${expected.namespace}/${expected.service}`);
  }
  if (labels[LABEL_COMPONENT] !== 'secrets' || labels[LABEL_ENCRYPTED_SERVICE] !== expected.service) {
    return untrusted('NotOperatorWritten', `Secret ${where} does not carry the labels the operator gives the envelope store of ${expected.service}`);
  }
  if (labels[LABEL_KEY_POLICY] !== expected.policy.name || labels[LABEL_KEY_POLICY_NAMESPACE] !== expected.policy.namespace) {
    return untrusted('NotOperatorWritten', `Secret ${where} is not labelled for KeyPolicy ${expected.policy.namespace}/${expected.policy.name}`);
  }
  const foreignOwner = (secret.metadata?.ownerReferences ?? []).find((o) =>
    o.kind !== ENCRYPTED_SERVICE.kind || o.name !== expected.service || (expected.serviceUid !== undefined && o.uid !== expected.serviceUid));
  if (foreignOwner) {
    return untrusted('NotOperatorWritten', `Secret ${where} is owned by ${foreignOwner.kind} ${foreignOwner.name}, not by EncryptedService ${expected.service}`);
  }
  const raw = secret.data?.[WRAPPED_DEK_KEY];
  let kid: string;
  let wrapped: string;
  try {
    wrapped = Buffer.from(raw ?? '', 'base64').toString('utf8');
    kid = inspectWrappedDataKey(wrapped).kid;
  } catch {
    return untrusted('NotOperatorWritten', `Secret ${where} holds no readable wrapped data key`);
  }
  const key = kek.keys.find((k) => k.kid === kid);
  if (!key) return untrusted('UnknownKey', `Secret ${where} names KEK ${kid}, which KeyPolicy ${expected.policy.namespace}/${expected.policy.name} does not hold`);
  const tag = secret.metadata?.annotations?.[ANNOTATION_STORE_INTEGRITY];
  if (tag === undefined) return { trusted: false, legacy: true, kid, wrapped };
  if (!storeTagMatches(key, tagInput(expected, secret.data ?? {}), tag)) {
    return { ...untrusted('IntegrityMismatch', `Secret ${where}: integrity tag does not verify (not written by the operator, or changed since)`), kid, wrapped };
  }
  return { trusted: true, kid, wrapped };
}
