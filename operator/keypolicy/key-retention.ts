// Why a KeyPolicy's keys outlive it. The key Secret carries no owner reference (the garbage
// collector would take every KEK with the policy, by hand, by an Argo CD prune or by the CRDs'
// removal), and while any ciphertext is still under one of its keys it carries a finalizer, so
// that not even a namespace deletion removes it before the data it opens. Deleting the policy
// itself waits for the same condition, whatever its deletionPolicy. Pure.
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { GROUP, KEY_POLICY } from '../api/v1alpha1/index.js';
import { inspectWrappedDataKey } from '../crypto/datakey.js';
import { inspectSealedValue } from '../crypto/seal.js';
import type { KeySets } from './key-plan.js';

/** On the key Secret: uid of the KeyPolicy the keys were last used by (a re-created policy differs). */
export const ANNOTATION_KEY_POLICY_UID = 'lockstep.dev/key-policy-uid';
/** On the key Secret while any ciphertext is under one of its keys. */
export const KEYS_IN_USE_FINALIZER = 'lockstep.dev/keys-in-use';
/** How many holders a message names before it only counts. */
const NAMED = 5;

export type KeyDeletionPolicy = 'Retain' | 'Delete';

export interface StoreCiphertexts {
  /** namespace/name of the envelope store. */
  readonly id: string;
  /** Its wrapped data keys (current and, during a data key rotation, previous). */
  readonly wrapped: readonly string[];
}

export interface ServiceCiphertexts {
  /** namespace/name of the EncryptedService. */
  readonly id: string;
  readonly sealed: readonly string[];
}

export interface KeyHolders {
  readonly stores: readonly string[];
  readonly services: readonly string[];
  readonly sealedValues: number;
  /** kids still holding data, sorted. */
  readonly kids: readonly string[];
}

function kidOf(inspect: (text: string) => { kid: string }, text: string): string | undefined {
  try {
    return inspect(text).kid;
  } catch {
    return undefined;
  }
}

/**
 * What still needs this policy's keys: stores whose data key is wrapped under one of its live
 * KEKs, sealed values under one of its live sealing keys. Without readable key sets every
 * ciphertext that names a kid counts (nothing can tell it is not ours).
 */
export function keyHolders(sets: KeySets | undefined, stores: readonly StoreCiphertexts[], services: readonly ServiceCiphertexts[]): KeyHolders {
  const kek = sets ? new Set(sets.kek.keys.map((k) => k.kid)) : undefined;
  const seal = sets ? new Set(sets.seal.keys.map((k) => k.kid)) : undefined;
  const kids = new Set<string>();
  const holdingStores: string[] = [];
  for (const store of stores) {
    const held = store.wrapped.map((w) => kidOf(inspectWrappedDataKey, w)).filter((kid): kid is string => kid !== undefined && (!kek || kek.has(kid)));
    if (held.length === 0) continue;
    holdingStores.push(store.id);
    for (const kid of held) kids.add(kid);
  }
  const holdingServices: string[] = [];
  let sealedValues = 0;
  for (const service of services) {
    const held = service.sealed.map((s) => kidOf(inspectSealedValue, s)).filter((kid): kid is string => kid !== undefined && (!seal || seal.has(kid)));
    if (held.length === 0) continue;
    holdingServices.push(service.id);
    sealedValues += held.length;
    for (const kid of held) kids.add(kid);
  }
  return { stores: holdingStores.sort(), services: holdingServices.sort(), sealedValues, kids: [...kids].sort() };
}

export function inUse(holders: KeyHolders): boolean {
  return holders.stores.length > 0 || holders.sealedValues > 0;
}

function named(ids: readonly string[]): string {
  const shown = ids.slice(0, NAMED).join(', ');
  return ids.length > NAMED ? `${shown}, and ${ids.length - NAMED} more` : shown;
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** "2 envelope stores (a, b) and 3 sealed values in 1 EncryptedService (c)": names and counts, never values. */
export function describeHolders(holders: KeyHolders): string {
  const parts: string[] = [];
  if (holders.stores.length > 0) parts.push(`${plural(holders.stores.length, 'envelope store', 'envelope stores')} (${named(holders.stores)})`);
  if (holders.sealedValues > 0) {
    parts.push(`${plural(holders.sealedValues, 'sealed value', 'sealed values')} in ${plural(holders.services.length, 'EncryptedService', 'EncryptedServices')} (${named(holders.services)})`);
  }
  return parts.join(' and ');
}

/** The condition message of a KeyPolicy whose deletion waits, with what the user can do. */
export function deletionBlockedMessage(namespace: string, name: string, holders: KeyHolders, policy: KeyDeletionPolicy): string {
  const keys = policy === 'Delete' ? 'its keys would be deleted' : 'its keys are kept, but nothing would rotate or re-wrap them';
  return `deletion waits: ${describeHolders(holders)} are still under keys ${named(holders.kids)} of this policy, and ${keys}. `
    + 'Delete those services and envelope stores (or move them to another policy) first. To delete anyway: '
    + `kubectl -n ${namespace} patch keypolicy ${name} --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]' `
    + `(the key Secret ${name}-keys is then kept whatever deletionPolicy says; take a lockstep backup first).`;
}

function isPolicyOwner(ref: V1OwnerReference): boolean {
  return ref.kind === KEY_POLICY.kind && ref.apiVersion.split('/')[0] === GROUP;
}

export interface KeySecretMetadataChange {
  readonly metadata: V1ObjectMeta;
  /** The uid of an earlier KeyPolicy of this name whose keys are taken over, when there was one. */
  readonly adoptedFrom?: string;
}

/**
 * The key Secret's metadata as it must be: no KeyPolicy owner reference (Secrets written before
 * keys outlived their policy carry one), the current policy's uid, and the in-use finalizer
 * exactly while something holds the keys. undefined when nothing changes.
 */
export function keySecretMetadata(live: V1ObjectMeta, policyUid: string, inUse: boolean): KeySecretMetadataChange | undefined {
  const owners = live.ownerReferences ?? [];
  const keptOwners = owners.filter((ref) => !isPolicyOwner(ref));
  const previousUid = live.annotations?.[ANNOTATION_KEY_POLICY_UID];
  const finalizers = live.finalizers ?? [];
  const hasFinalizer = finalizers.includes(KEYS_IN_USE_FINALIZER);
  // The API server refuses new finalizers on an object being deleted; an existing one may only go.
  const holding = inUse && (hasFinalizer || !live.deletionTimestamp);
  // The owner a legacy Secret names is the earlier incarnation, when the annotation is missing.
  const earlierUid = previousUid ?? owners.find(isPolicyOwner)?.uid;
  const adopted = earlierUid !== undefined && earlierUid !== policyUid;
  if (keptOwners.length === owners.length && previousUid === policyUid && hasFinalizer === holding) return undefined;
  const { ownerReferences: _owners, ...rest } = live;
  const metadata: V1ObjectMeta = {
    ...rest,
    ...(keptOwners.length > 0 ? { ownerReferences: keptOwners } : {}),
    annotations: { ...live.annotations, [ANNOTATION_KEY_POLICY_UID]: policyUid },
    finalizers: holding ? (hasFinalizer ? finalizers : [...finalizers, KEYS_IN_USE_FINALIZER]) : finalizers.filter((f) => f !== KEYS_IN_USE_FINALIZER),
  };
  return { metadata, ...(adopted ? { adoptedFrom: earlierUid } : {}) };
}
