// Key rotation through a RotationSchedule: the KeyPolicy's KEK (and its sealing key) and each
// service's data key. The KeyPolicy and EncryptedService reconcilers own the keys; this module
// only asks them through operator-internal annotations — `lockstep.dev/rotation-request` /
// `lockstep.dev/reactivate-kid` on the KeyPolicy, `lockstep.dev/rotate-data-key` /
// `lockstep.dev/restore-data-key` on the EncryptedService — each value acting once, so asking
// again after a crash changes nothing. Never the user's `lockstep.dev/rotate-now`: a value a user
// or GitOps tool manages is theirs. Each annotation is server-side applied under a field manager
// of its own (`lockstep-rotationschedule-<name>`): ownership shows who asked, a user's apply of
// other annotations never removes it, and applying one never removes another.
// Verification opens everything a target holds with the keys as stored, and a probe made under the new keys.
import * as k8s from '@kubernetes/client-node';
import type { V1Secret } from '@kubernetes/client-node';
import { ENCRYPTED_SERVICE, GROUP, KEY_POLICY, VERSION, type SealedSecret } from '../api/v1alpha1/index.js';
import { generateDataKey, inspectWrappedDataKey, unwrapDataKey, wrapDataKey } from '../crypto/datakey.js';
import { decryptValue, envelopeDataKeyId } from '../crypto/envelope.js';
import { isDecryptError, isKeySetError } from '../crypto/errors.js';
import { activeKey, publicJwks } from '../crypto/keyset.js';
import { inspectSealedValue, openSealed, sealValue } from '../crypto/seal.js';
import { ANNOTATION_DATA_KEY_ROTATED_FOR, ANNOTATION_RESTORE_DATA_KEY, ANNOTATION_ROTATE_DATA_KEY, PREVIOUS_DEK_KEY } from '../encryptedservice/data-key-rotation.js';
import { readEnvelopeStore } from '../encryptedservice/envelope-store.js';
import type { KeySets } from '../keypolicy/key-plan.js';
import { keptInHsm, keySetsFromSecret, type KeyRing } from '../keypolicy/key-ring.js';
import type { KeyPolicy } from '../api/v1alpha1/index.js';
import { keySecretName } from '../keypolicy/names.js';
import { ANNOTATION_REACTIVATE_KID } from '../keypolicy/reactivation.js';
import { ANNOTATION_ROTATION_REQUEST } from '../keypolicy/rotation-request.js';
import { isNotFound } from '../runtime/api-error.js';

/** The value a rotation asks with (KeyPolicy rotate-now, data key rotate/restore): derived from the rotation id, so it is the same after a crash. */
export const keyRotationValue = (rotationId: string): string => `rotationschedule-${rotationId}`;

/** The field manager that owns one request annotation: `lockstep.dev/rotation-request` -> `lockstep-rotationschedule-rotation-request`. */
export const requestFieldManager = (annotation: string): string => `lockstep-rotationschedule-${annotation.replace(/^lockstep\.dev\//, '')}`;

export interface DataKeyInput {
  sets: KeySets;
  namespace: string;
  name: string;
  store: V1Secret | undefined;
  /** The rotate-data-key value this rotation asked with. */
  value: string;
  /** The application Secrets by name, as the workload reads them. */
  appSecrets: ReadonlyMap<string, V1Secret | undefined>;
}

/**
 * Problems (never values) with a service's data key after a data key rotation: the rotation asked
 * for was made, every envelope is under the new data key and opens to exactly what the
 * application Secret holds, and the replaced key is kept and opens (so a rollback can restore it).
 */
export async function verifyDataKey(input: DataKeyInput): Promise<string[]> {
  const storeName = input.store?.metadata?.name ?? '';
  if (!input.store) return ['no envelope store'];
  if (input.store.metadata?.annotations?.[ANNOTATION_DATA_KEY_ROTATED_FOR] !== input.value) return [`data key in ${storeName} not rotated yet`];
  const problems: string[] = [];
  const binding = { namespace: input.namespace, name: input.name };
  let content: ReturnType<typeof readEnvelopeStore>;
  try {
    content = readEnvelopeStore(input.store);
  } catch {
    return [`envelope store ${storeName} is unreadable`];
  }
  try {
    const dataKey = await unwrapDataKey(input.sets.kek, content.wrappedDataKey ?? '', binding);
    const previous = input.store.data?.[PREVIOUS_DEK_KEY];
    if (!previous) problems.push(`${storeName} keeps no previous data key to roll back to`);
    else if ((await unwrapDataKey(input.sets.kek, Buffer.from(previous, 'base64').toString('utf8'), binding)).id === dataKey.id) problems.push(`data key in ${storeName} was not replaced`);
    for (const [secret, values] of Object.entries(content.envelopes)) {
      const app = input.appSecrets.get(secret);
      for (const [key, envelope] of Object.entries(values)) {
        if (envelopeDataKeyId(envelope) !== dataKey.id) {
          problems.push(`envelope ${secret}[${key}] is not under the new data key`);
          continue;
        }
        const plaintext = decryptValue(dataKey, envelope, { namespace: input.namespace, name: secret, key });
        const live = app?.data?.[key];
        if (live === undefined || !Buffer.from(live, 'base64').equals(plaintext)) problems.push(`envelope ${secret}[${key}] does not match Secret ${secret}`);
      }
    }
  } catch (err) {
    if (!isDecryptError(err) && !isKeySetError(err)) throw err;
    problems.push(`${storeName} does not open under the new data key (${err.reason})`);
  }
  return problems;
}

export interface ServiceKeyInput {
  sets: KeySets;
  /** The KEK the service's data key must now be wrapped under. */
  expectedKid: string;
  namespace: string;
  name: string;
  /** The envelope store, when the service declares envelope secrets. */
  store?: V1Secret;
  sealed: readonly SealedSecret[];
}

/**
 * Problems (never values) with the keys of one service after a KEK rotation: the data key must be
 * wrapped under the new KEK and open, every envelope value must open under it (old data still
 * opens), every sealed value must open (sealed under old keys, still decrypt-only), and a probe
 * data key wrapped and a probe value sealed under the new keys must open.
 */
export async function verifyServiceKeys(input: ServiceKeyInput): Promise<string[]> {
  const problems: string[] = [];
  const kek = activeKey(input.sets.kek).kid;
  if (kek !== input.expectedKid) problems.push(`active KEK is ${kek}, expected ${input.expectedKid}`);
  const attempt = async (what: string, f: () => Promise<unknown>) => {
    try {
      await f();
    } catch (err) {
      if (!isDecryptError(err) && !isKeySetError(err)) throw err;
      problems.push(`${what} does not open (${err.reason})`);
    }
  };
  if (input.store) {
    const storeName = input.store.metadata?.name ?? '';
    let content: ReturnType<typeof readEnvelopeStore> | undefined;
    try {
      content = readEnvelopeStore(input.store);
    } catch {
      problems.push(`envelope store ${storeName} is unreadable`);
    }
    const wrapped = content?.wrappedDataKey;
    if (content && wrapped === undefined) problems.push(`envelope store ${storeName} holds no data key`);
    if (content && wrapped !== undefined) {
      await attempt(`the data key in ${storeName}`, async () => {
        const under = inspectWrappedDataKey(wrapped).kid;
        if (under !== input.expectedKid) {
          problems.push(`data key in ${storeName} is still wrapped under ${under}, not ${input.expectedKid}`);
          return;
        }
        const dataKey = await unwrapDataKey(input.sets.kek, wrapped, { namespace: input.namespace, name: input.name });
        for (const [secret, values] of Object.entries(content.envelopes)) {
          for (const [key, value] of Object.entries(values)) {
            await attempt(`envelope ${secret}[${key}]`, async () => decryptValue(dataKey, value, { namespace: input.namespace, name: secret, key }));
          }
        }
      });
    }
  }
  for (const sealed of input.sealed) {
    for (const [key, jwe] of Object.entries(sealed.encryptedData ?? {})) {
      await attempt(`sealed value ${sealed.name}[${key}]`, async () => openSealed(input.sets.seal, jwe, { namespace: input.namespace, name: sealed.name, key }));
    }
  }
  await attempt('a probe data key wrapped under the new KEK', async () => {
    const binding = { namespace: input.namespace, name: input.name };
    const probe = generateDataKey();
    const wrapped = await wrapDataKey(input.sets.kek, probe, binding);
    if ((await unwrapDataKey(input.sets.kek, wrapped, binding)).id !== probe.id) problems.push('a probe data key came back as another key');
  });
  await attempt('a probe value sealed to the new sealing key', async () => {
    const binding = { namespace: input.namespace, name: `${input.name}-probe`, key: 'probe' };
    const sealKid = activeKey(input.sets.seal).kid;
    const sealed = await sealValue(publicJwks(input.sets.seal), 'probe', binding, { kid: sealKid });
    if (inspectSealedValue(sealed).kid !== sealKid || (await openSealed(input.sets.seal, sealed, binding)).toString('utf8') !== 'probe') {
      problems.push('a probe value sealed to the new sealing key did not open to what was sealed');
    }
  });
  return problems;
}

/** The API side: annotations on KeyPolicies, direct reads of key and store Secrets. */
export class KeyRotation {
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;

  constructor(writer: k8s.KubeConfig, private readonly keyRing?: KeyRing) {
    this.custom = writer.makeApiClient(k8s.CustomObjectsApi);
    this.core = writer.makeApiClient(k8s.CoreV1Api);
  }

  /** Asks the KeyPolicy to rotate (once per value). */
  requestKekRotation(namespace: string, policy: string, value: string): Promise<void> {
    return this.annotate(KEY_POLICY, namespace, policy, ANNOTATION_ROTATION_REQUEST, value);
  }

  /** Asks the KeyPolicy to make `kid` its active KEK again (rollback; once per value). */
  requestReactivation(namespace: string, policy: string, kid: string): Promise<void> {
    return this.annotate(KEY_POLICY, namespace, policy, ANNOTATION_REACTIVATE_KID, kid);
  }

  async keySets(namespace: string, policy: string): Promise<{ sets: KeySets; secret: V1Secret } | undefined> {
    const secret = await this.secret(namespace, keySecretName(policy));
    if (!secret) return undefined;
    // KEKs in an HSM: the verification step wraps and unwraps through the token, as services do.
    if (keptInHsm(secret) && this.keyRing) {
      const live = (await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: KEY_POLICY.plural, namespace, name: policy })) as KeyPolicy;
      return { sets: await this.keyRing.open(secret, live), secret };
    }
    return { sets: keySetsFromSecret(secret), secret };
  }

  async secret(namespace: string, name: string): Promise<V1Secret | undefined> {
    try {
      return await this.core.readNamespacedSecret({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Asks the service for a fresh data key (once per value). */
  requestDataKeyRotation(namespace: string, service: string, value: string): Promise<void> {
    return this.annotate(ENCRYPTED_SERVICE, namespace, service, ANNOTATION_ROTATE_DATA_KEY, value);
  }

  /** Asks the service to undo the data key rotation made for `value` (rollback). */
  requestDataKeyRestore(namespace: string, service: string, value: string): Promise<void> {
    return this.annotate(ENCRYPTED_SERVICE, namespace, service, ANNOTATION_RESTORE_DATA_KEY, value);
  }

  private async annotate(type: { kind: string; plural: string }, namespace: string, name: string, key: string, value: string): Promise<void> {
    const live = (await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: type.plural, namespace, name })) as { metadata?: { uid?: string; annotations?: Record<string, string> } };
    if (live.metadata?.annotations?.[key] === value) return;
    await this.custom.patchNamespacedCustomObject(
      {
        group: GROUP, version: VERSION, plural: type.plural, namespace, name,
        // The uid makes the apply fail rather than create the object if it was deleted (and
        // perhaps re-created) since it was read.
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: type.kind, metadata: { name, namespace, uid: live.metadata?.uid, annotations: { [key]: value } } },
        fieldManager: requestFieldManager(key),
        // The annotation is the operator's; force takes it over from a writer that set it by hand
        // (or from the merge patches of earlier versions), never touching any other field.
        force: true,
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply),
    );
  }
}
