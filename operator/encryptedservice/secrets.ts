// The secrets of an EncryptedService (spec.secrets): envelope-encrypted application Secrets under
// the service's data key, and sealed values the operator decrypts into Secrets.
//
// All-or-nothing: every ciphertext is opened before anything is written, so a bad sealed value
// (another namespace or name, tampered, unknown kid) or a store that no longer opens leaves every
// existing Secret exactly as it was, and is reported as SecretsReady=False, an Event and an audit
// entry. Plaintext exists only in memory during the pass; the unwrapped data key only in the DEK
// cache. Messages name Secrets, keys and kids — never values.
import type { CoreV1Api, KubernetesObject, V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import type { Problem } from './policy.js';
import {
  API_VERSION, ANNOTATION_KID, ENCRYPTED_SERVICE, EncryptedServiceConditions as C, LABEL_ENCRYPTED_SERVICE, LABEL_KEY_POLICY, Reasons, type Reason,
  type EncryptedService, type GeneratedObjectRef, type KeyPolicy,
} from '../api/v1alpha1/index.js';
import type { AuditEvent } from '../audit/chain.js';
import type { DekCache } from '../crypto/dek-cache.js';
import { generateDataKey, inspectWrappedDataKey, rewrapDataKey, wrapDataKey, type DataKey } from '../crypto/datakey.js';
import { decryptValue, encryptValue, envelopeDataKeyId } from '../crypto/envelope.js';
import { isDecryptError, isKeySetError, type DecryptError } from '../crypto/errors.js';
import { activeKey } from '../crypto/keyset.js';
import { inspectSealedValue, openSealed } from '../crypto/seal.js';
import type { Applier } from '../kube/apply.js';
import type { ConditionInput } from '../kube/conditions.js';
import { refusable } from '../kube/refusal.js';
import { isAlreadyExists, isNotFound } from '../runtime/api-error.js';
import type { EventRecorder } from '../runtime/events.js';
import type { Logger } from '../runtime/logger.js';
import { auditFingerprint, type AuditRecorder } from '../keypolicy/audit-trail.js';
import type { KeySets } from '../keypolicy/key-plan.js';
import { keyStoreProblem } from '../keypolicy/hsm-sessions.js';
import type { KeyRing } from '../keypolicy/key-ring.js';
import { LABEL_KEY_POLICY_NAMESPACE, keySecretName } from '../keypolicy/names.js';
import { childLabels, ownerReference } from './children.js';
import { ANNOTATION_DATA_KEY_ID, PREVIOUS_DEK_KEY, dataKeyAction, type DataKeyAction } from './data-key-rotation.js';
import { envelopeStoreData, envelopeStoreName, readEnvelopeStore, type Envelopes } from './envelope-store.js';
import { planEnvelope } from './envelope-plan.js';
import { ANNOTATION_STORE_INTEGRITY, tagFor, verifyEnvelopeStore, type StoreExpectation } from './store-integrity.js';

export interface SecretsOutcome {
  conditions: ConditionInput[];
  generated: GeneratedObjectRef[];
  problems: Problem[];
  /** kids the service's data key and sealed values are under. */
  keyIds: string[];
}

export interface ServiceSecretsOptions {
  /** Direct reads (application Secrets are not in the operator's label-selected cache) and guarded writes. */
  core: CoreV1Api;
  applier: Applier;
  keyRing: KeyRing;
  dekCache: DekCache;
  audit: AuditRecorder;
  events: EventRecorder;
  logger: Logger;
  /** Trust (and tag) stores without an integrity tag whose data key opens: the upgrade from untagged stores. */
  adoptUntaggedStores?: boolean;
  now?: () => Date;
}

interface Failure {
  secret: string;
  key?: string;
  reason: Reason;
  kid?: string;
  message: string;
}

/** The service's KeyPolicy is being deleted, and the service has no data key yet. */
const KEY_POLICY_DELETING = Reasons.KeyPolicyDeleting;
/** Failures that are no failed decryption: reported under their own reason, not audited as one. */
const NOT_DECRYPTION = new Set<string>([Reasons.SecretConflict, Reasons.SecretTooLarge, KEY_POLICY_DELETING]);
/** The API server refuses a Secret whose keys and values add up to more than this. */
export const SECRET_DATA_LIMIT = 1024 * 1024;

/** Bytes of a Secret's data as the API server counts them: every key and value. */
export function secretDataSize(data: Readonly<Record<string, Buffer>>): number {
  return Object.entries(data).reduce((n, [key, value]) => n + key.length + value.length, 0);
}

const ok = (reason: Reason, message: string): ConditionInput => ({ type: C.SecretsReady, status: 'True', reason, message });
const notOk = (reason: Reason, message: string): ConditionInput => ({ type: C.SecretsReady, status: 'False', reason, message });

function decode(data: Record<string, string> | undefined): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
}

function encode(data: Record<string, Buffer>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v.toString('base64')]));
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

interface CurrentDataKey {
  key: DataKey;
  wrapped: string;
  kid: string;
  changed: boolean;
}

interface RotatedDataKey extends CurrentDataKey {
  /** The key kept for rollback; its unwrapped form only when envelopes may still be under it. */
  previous?: { key?: DataKey; wrapped: string };
  /** Annotations recording the rotate / restore value acted on. */
  record: Record<string, string>;
}

interface StoreWrite {
  secret: V1Secret | undefined;
  wrapped: string;
  previousWrapped?: string;
  envelopes: Envelopes;
  changed: boolean;
  kid: string;
  record: Record<string, string>;
}

function inspectSafely(wrapped: string): string | undefined {
  try {
    return inspectWrappedDataKey(wrapped).kid;
  } catch {
    return undefined;
  }
}

function secretRef(namespace: string, name: string): GeneratedObjectRef {
  return { apiVersion: 'v1', kind: 'Secret', namespace, name };
}

export class ServiceSecrets {
  private readonly log: Logger;
  private readonly now: () => Date;
  /** Last reported failure set per service, so a persisting failure is audited once, not per retry. */
  private readonly reported = new Map<string, string>();
  /**
   * The resourceVersion each materialised Secret had after this process last wrote it. An apply
   * sent again with unchanged data (seen under load) is a no-op to the API server, which keeps the
   * resourceVersion: that is how such a repeat is told from a real unseal (audited once, not once
   * per apply).
   */
  private readonly unsealedVersions = new Map<string, string>();

  constructor(private readonly o: ServiceSecretsOptions) {
    this.log = o.logger.child('secrets');
    this.now = o.now ?? (() => new Date());
  }

  async reconcile(es: EncryptedService, policy: KeyPolicy): Promise<SecretsOutcome> {
    const envelope = es.spec.secrets?.envelope ?? [];
    const sealed = es.spec.secrets?.sealed ?? [];
    const outcome: SecretsOutcome = { conditions: [], generated: [], problems: [], keyIds: [] };
    if (envelope.length === 0 && sealed.length === 0) {
      this.reported.delete(es.metadata.uid ?? '');
      outcome.conditions.push(ok(Reasons.NotConfigured, 'no secrets declared'));
      return outcome;
    }
    const namespace = es.metadata.namespace ?? '';
    const name = es.metadata.name ?? '';

    const sets = await this.keySets(policy);
    if ('problem' in sets) {
      outcome.conditions.push(notOk(Reasons.KeyPolicyNotReady, sets.problem));
      outcome.problems.push({ reason: Reasons.KeyPolicyNotReady, message: sets.problem });
      return outcome;
    }
    const keys = sets.sets;
    const failures: Failure[] = [];
    const audit: AuditEvent[] = [];
    const now = this.now();
    const kids = new Set<string>();

    // 1. Open every sealed value.
    const materialise: { name: string; type: string; data: Record<string, Buffer> }[] = [];
    for (const s of sealed) {
      const data: Record<string, Buffer> = {};
      for (const [key, jwe] of Object.entries(s.encryptedData ?? {})) {
        try {
          data[key] = await openSealed(keys.seal, jwe, { namespace, name: s.name, key });
          // Only a value that opened names a kid in use: status.keyIds is what the KeyPolicy
          // counts for retirement, and a forged header must not keep a key alive.
          kids.add(inspectSealedValue(jwe).kid);
        } catch (err) {
          failures.push(this.failure(err, s.name, key));
        }
      }
      materialise.push({ name: s.name, type: s.type ?? 'Opaque', data });
    }

    // 2. The data key and every envelope.
    let store: StoreWrite | undefined;
    const restores: { name: string; restored: string[]; data: Record<string, Buffer> }[] = [];
    const missing: string[] = [];
    if (envelope.length > 0) {
      const liveStore = await this.read(namespace, envelopeStoreName(name));
      const verdict = liveStore ? verifyEnvelopeStore(liveStore, this.expectation(es, policy), keys.kek) : undefined;
      // A kid the policy does not hold is left to the data key check, which says which (unknown or retired).
      const untagged = verdict?.legacy === true && !this.o.adoptUntaggedStores
        ? { reason: 'NoIntegrityTag', message: `Secret ${namespace}/${envelopeStoreName(name)} has no integrity tag (stripped, or written by an operator before tags; LOCKSTEP_ADOPT_UNTAGGED_STORES=true adopts those)` }
        : undefined;
      const untrusted = untagged ?? (verdict && !verdict.trusted && !verdict.legacy && verdict.reason !== 'UnknownKey' ? verdict : undefined);
      let content: ReturnType<typeof readEnvelopeStore> | undefined;
      if (untrusted) {
        failures.push({
          secret: envelopeStoreName(name), reason: Reasons.EnvelopeStoreUntrusted,
          message: `envelope store ${envelopeStoreName(name)} is not trusted (${untrusted.reason}): ${untrusted.message}; it was not read or overwritten: delete it or restore the operator's store from backup`,
        });
      } else {
        try {
          content = readEnvelopeStore(liveStore);
        } catch (err) {
          failures.push({ secret: envelopeStoreName(name), reason: 'Malformed', message: `envelope store ${envelopeStoreName(name)} is unreadable: ${(err as Error).message}` });
        }
      }
      const storedPrevious = liveStore?.data?.[PREVIOUS_DEK_KEY];
      const previousWrapped = storedPrevious ? Buffer.from(storedPrevious, 'base64').toString('utf8') : undefined;
      const action = dataKeyAction(es.metadata.annotations, liveStore?.metadata?.annotations, previousWrapped !== undefined);
      // A policy being deleted waits for its keys' users to go: it gets no new ones meanwhile.
      const closing = content !== undefined && content.wrappedDataKey === undefined && policy.metadata.deletionTimestamp !== undefined;
      if (closing) failures.push({ secret: envelopeStoreName(name), reason: KEY_POLICY_DELETING, message: `KeyPolicy ${policy.metadata.namespace ?? ''}/${policy.metadata.name ?? ''} is being deleted: no new data key is made under its keys` });
      const current = content && !closing ? await this.dataKey(keys, es, content, failures, audit, now) : undefined;
      const dataKey = current ? await this.rotatedDataKey(keys, es, current, previousWrapped, action, failures, audit, now) : undefined;
      if (content && dataKey) {
        // During a data key rotation or restore, envelopes are still under the other key until re-encrypted below.
        const other = dataKey.previous?.key;
        const keyFor = (envelope: string): DataKey => (other && envelopeDataKeyId(envelope) === other.id ? other : dataKey.key);
        const envelopes: Envelopes = {};
        // A store written before integrity tags gets its tag once its data key has opened.
        let changed = dataKey.changed || !liveStore || verdict?.legacy === true;
        for (const declared of envelope) {
          const app = await this.read(namespace, declared.name);
          const binding = (key: string) => ({ namespace, name: declared.name, key });
          try {
            const plan = planEnvelope(declared, app ? decode(app.data) : undefined, content.envelopes[declared.name] ?? {}, {
              encrypt: (key, plaintext) => encryptValue(dataKey.key, plaintext, binding(key)),
              decrypt: (key, value) => decryptValue(keyFor(value), value, binding(key)),
            });
            const current: Record<string, string> = { ...plan.envelopes };
            for (const [key, value] of Object.entries(current)) {
              if (envelopeDataKeyId(value) === dataKey.key.id) continue;
              current[key] = encryptValue(dataKey.key, decryptValue(keyFor(value), value, binding(key)), binding(key));
              changed = true;
            }
            envelopes[declared.name] = current;
            if (plan.stored.length > 0) changed = true;
            missing.push(...(plan.absent && plan.missing.length === 0 ? [declared.name] : plan.missing.map((k) => `${declared.name}[${k}]`)));
            const live = app ? decode(app.data) : {};
            const labelled = app?.metadata?.labels?.[LABEL_ENCRYPTED_SERVICE] === name;
            const restored = Object.keys(plan.restore).sort();
            // Labelled so that a change to the Secret reaches this service's reconcile. Every
            // protected value goes in the apply, not only restored ones: server-side apply drops
            // values this field manager set before and leaves out now.
            if (restored.length > 0 || (app && !labelled)) {
              const data = Object.fromEntries(Object.keys(plan.envelopes).map((k) => [k, plan.restore[k] ?? live[k] ?? Buffer.alloc(0)]));
              restores.push({ name: declared.name, restored, data });
            }
          } catch (err) {
            failures.push(this.failure(err, envelopeStoreName(name), undefined, `envelope of ${declared.name}`));
          }
        }
        const undeclared = Object.keys(content.envelopes).filter((n) => !envelope.some((e) => e.name === n));
        if (undeclared.length > 0) changed = true;
        store = {
          secret: liveStore, wrapped: dataKey.wrapped, envelopes, changed, kid: dataKey.kid, record: dataKey.record,
          ...(dataKey.previous ? { previousWrapped: dataKey.previous.wrapped } : {}),
        };
        kids.add(dataKey.kid);
      }
    }
    outcome.keyIds = [...kids].sort();

    // 3. Conflicts: never take over a Secret someone else wrote; never send one the API refuses.
    const liveSealed = new Map<string, V1Secret | undefined>();
    for (const m of materialise) {
      const size = secretDataSize(m.data);
      if (size > SECRET_DATA_LIMIT) {
        failures.push({ secret: m.name, reason: Reasons.SecretTooLarge, message: `Secret ${m.name} would hold ${size} bytes, more than the ${SECRET_DATA_LIMIT} (1 MiB) a Secret can: split its values into several sealed Secrets` });
        continue;
      }
      const live = await this.read(namespace, m.name);
      liveSealed.set(m.name, live);
      if (live && live.metadata?.labels?.[LABEL_ENCRYPTED_SERVICE] !== name) {
        failures.push({ secret: m.name, reason: Reasons.SecretConflict, message: `Secret ${m.name} exists and was not written by this EncryptedService; delete it or rename the sealed secret` });
      } else if (live && live.type !== m.type) {
        failures.push({ secret: m.name, reason: Reasons.SecretConflict, message: `Secret ${m.name} has type ${live.type ?? 'Opaque'}, the spec asks for ${m.type}; a Secret's type cannot change: delete it to let the operator recreate it` });
      }
    }

    if (failures.length > 0) {
      // Nothing is written, so the create or re-wrap events gathered so far did not happen.
      await this.reportFailures(es, policy, failures, now);
      const reason = failures.some((f) => f.reason === Reasons.EnvelopeStoreUntrusted)
        ? Reasons.EnvelopeStoreUntrusted
        : failures.some((f) => !NOT_DECRYPTION.has(f.reason)) ? Reasons.DecryptionFailed : failures.find((f) => f.reason !== Reasons.SecretConflict)?.reason ?? Reasons.SecretConflict;
      const message = `${failures.map((f) => f.message).join('; ')}; no Secret was written or changed`;
      outcome.conditions.push(notOk(reason, message));
      outcome.problems.push({ reason, message });
      return outcome;
    }
    this.reported.delete(es.metadata.uid ?? '');

    // Data key changes and unsealing are audited or not done: with a trail that does not match
    // its head, nothing that would record a key event is written (failures above are only counted).
    if (audit.length > 0 || materialise.length > 0) {
      const broken = await this.o.audit.check(this.policyIdentity(policy));
      if (broken) {
        const message = `no Secret was written: ${broken}`;
        outcome.conditions.push(notOk(Reasons.AuditChainBroken, message));
        outcome.problems.push({ reason: Reasons.AuditChainBroken, message });
        return outcome;
      }
    }

    // 4. Write: the store first (a crash then loses nothing), then the Secrets.
    const owners = this.owners(es);
    if (store) {
      await this.writeStore(es, policy, keys, store, owners);
      outcome.generated.push(secretRef(namespace, envelopeStoreName(name)));
    }
    for (const r of restores) {
      await this.o.applier.apply({
        apiVersion: 'v1', kind: 'Secret',
        metadata: { name: r.name, namespace, labels: childLabels(es, 'secrets') },
        ...(Object.keys(r.data).length > 0 ? { data: encode(r.data) } : {}),
      } as KubernetesObject);
      if (r.restored.length > 0) {
        this.o.events.record(this.regarding(es), 'Normal', 'SecretRestored', `restored ${r.restored.join(', ')} of Secret ${r.name} from its envelopes`);
      }
    }
    for (const m of materialise) {
      const desired: V1Secret = {
        apiVersion: 'v1', kind: 'Secret', type: m.type,
        metadata: { name: m.name, namespace, labels: childLabels(es, 'secrets'), ...(owners.length ? { ownerReferences: owners } : {}) },
        data: encode(m.data),
      };
      const live = liveSealed.get(m.name);
      // The applier skips when live holds everything desired; a key dropped from the spec is
      // still in live, so equal key sets are required before the live object may count as a match.
      const sameKeys = live !== undefined && sameMembers(Object.keys(live.data ?? {}), Object.keys(desired.data ?? {}));
      const result = await this.o.applier.apply(desired as KubernetesObject, sameKeys ? live : undefined);
      const key = `${namespace}/${m.name}`;
      const version = result.object.metadata?.resourceVersion;
      const repeated = version !== undefined && (version === live?.metadata?.resourceVersion || version === this.unsealedVersions.get(key));
      if (version !== undefined) this.unsealedVersions.set(key, version);
      if (result.changed && !repeated) {
        audit.push({ type: 'unseal', time: now, subject: { namespace, name: m.name, kind: 'Secret' }, details: { encryptedService: name, keys: Object.keys(m.data).length } });
      }
      outcome.generated.push(secretRef(namespace, m.name));
    }
    await this.o.audit.record(this.policyIdentity(policy), audit, policy.spec.audit?.segmentSize ?? 256);

    if (missing.length > 0) {
      const message = `Secret ${missing.join(', ')} not found, and not in the envelope store to restore from: create it (usually the deploy pipeline does) or remove it from spec.secrets.envelope`;
      outcome.conditions.push(notOk('SecretNotFound', message));
      outcome.problems.push({ reason: 'SecretNotFound', message });
      return outcome;
    }
    const parts = [
      ...(envelope.length > 0 ? [`${envelope.length} Secrets envelope-encrypted under data key wrapped by ${store?.kid ?? ''}`] : []),
      ...(sealed.length > 0 ? [`${sealed.length} sealed Secrets materialised`] : []),
    ];
    outcome.conditions.push(ok(Reasons.SecretsEncrypted, parts.join('; ')));
    return outcome;
  }

  // --- keys

  private async keySets(policy: KeyPolicy): Promise<{ sets: KeySets } | { problem: string }> {
    const namespace = policy.metadata.namespace ?? '';
    const name = keySecretName(policy.metadata.name ?? '');
    const secret = await this.read(namespace, name);
    if (!secret) return { problem: `KeyPolicy ${namespace}/${policy.metadata.name ?? ''} has no keys yet (Secret ${name})` };
    try {
      return { sets: await this.o.keyRing.open(secret, policy) };
    } catch (err) {
      // keyStore PKCS11: the HSM is unreachable, refuses or is not granted. The KeyPolicy's
      // status has the details; nothing is written here meanwhile, and no data key is made.
      const store = keyStoreProblem(err);
      if (store) return { problem: `KeyPolicy ${namespace}/${policy.metadata.name ?? ''} cannot use its HSM now (${store.reason}); see its status` };
      const why = isKeySetError(err) ? err.reason : 'unreadable';
      return { problem: `key Secret ${namespace}/${name} of the KeyPolicy cannot be used (${why})` };
    }
  }

  /** The service's data key: unwrapped through the cache, re-wrapped under the active KEK, or made once. */
  private async dataKey(
    keys: KeySets,
    es: EncryptedService,
    content: { wrappedDataKey: string | undefined; envelopes: Envelopes },
    failures: Failure[],
    audit: AuditEvent[],
    now: Date,
  ): Promise<CurrentDataKey | undefined> {
    const binding = { namespace: es.metadata.namespace ?? '', name: es.metadata.name ?? '' };
    const storeName = envelopeStoreName(binding.name);
    const subject = { namespace: binding.namespace, name: binding.name, kind: ENCRYPTED_SERVICE.kind };
    if (content.wrappedDataKey === undefined) {
      if (Object.keys(content.envelopes).length > 0) {
        failures.push({ secret: storeName, reason: 'DataKeyMissing', message: `envelope store ${storeName} holds values but no data key: restore it from backup` });
        return undefined;
      }
      const key = generateDataKey();
      const wrapped = await wrapDataKey(keys.kek, key, binding);
      const kid = activeKey(keys.kek).kid;
      audit.push({ type: 'create', time: now, subject: { ...subject, kid }, details: { purpose: 'dek', dataKeyId: key.id } });
      return { key, wrapped, kid, changed: true };
    }
    try {
      // A cache hit was authenticated when it was unwrapped; only a key under an older KEK pays
      // for a new wrap (the background re-wrap after a rotation).
      const key = await this.o.dekCache.unwrap(keys.kek, content.wrappedDataKey, binding);
      const fromKid = inspectWrappedDataKey(content.wrappedDataKey).kid;
      const toKid = activeKey(keys.kek).kid;
      if (fromKid === toKid) return { key, wrapped: content.wrappedDataKey, kid: toKid, changed: false };
      const wrapped = await wrapDataKey(keys.kek, key, binding);
      // The new wrapped form holds the same key: cache it so the next pass skips the unwrap.
      await this.o.dekCache.getOrLoad(wrapped, binding, async () => key);
      audit.push({ type: 'rewrap', time: now, subject: { ...subject, kid: toKid }, details: { fromKid, dataKeyId: key.id } });
      return { key, wrapped, kid: toKid, changed: true };
    } catch (err) {
      failures.push(this.failure(err, storeName, undefined, 'data key'));
      return undefined;
    }
  }

  /**
   * The data key after what the rotate / restore annotations ask (data-key-rotation.ts): a fresh
   * key with the current one kept as previous, the previous one back, or the current one as it
   * is. A kept previous key follows KEK rotations like the current one, so a rollback can open it.
   */
  private async rotatedDataKey(
    keys: KeySets,
    es: EncryptedService,
    current: CurrentDataKey,
    previousWrapped: string | undefined,
    action: DataKeyAction,
    failures: Failure[],
    audit: AuditEvent[],
    now: Date,
  ): Promise<RotatedDataKey | undefined> {
    const binding = { namespace: es.metadata.namespace ?? '', name: es.metadata.name ?? '' };
    const subject = { namespace: binding.namespace, name: binding.name, kind: ENCRYPTED_SERVICE.kind, kid: current.kid };
    const replaced = { key: current.key, wrapped: current.wrapped };
    try {
      if (action.kind === 'rotate') {
        const key = generateDataKey();
        const wrapped = await wrapDataKey(keys.kek, key, binding);
        audit.push({ type: 'create', time: now, subject, details: { purpose: 'dek', dataKeyId: key.id, replaces: current.key.id } });
        return { key, wrapped, kid: current.kid, changed: true, previous: replaced, record: action.record };
      }
      if (action.kind === 'restore' && previousWrapped !== undefined) {
        const key = await this.o.dekCache.unwrap(keys.kek, previousWrapped, binding);
        const wrapped = inspectWrappedDataKey(previousWrapped).kid === current.kid ? previousWrapped : await wrapDataKey(keys.kek, key, binding);
        audit.push({ type: 'create', time: now, subject, details: { purpose: 'dek', dataKeyId: key.id, replaces: current.key.id, restored: 'true' } });
        return { key, wrapped, kid: current.kid, changed: true, previous: replaced, record: action.record };
      }
    } catch (err) {
      failures.push(this.failure(err, envelopeStoreName(binding.name), undefined, 'previous data key'));
      return undefined;
    }
    const record = action.kind === 'record' ? action.record : {};
    let changed = current.changed || action.kind === 'record';
    let previous: { wrapped: string } | undefined = previousWrapped === undefined ? undefined : { wrapped: previousWrapped };
    if (previousWrapped !== undefined && inspectSafely(previousWrapped) !== current.kid) {
      try {
        previous = { wrapped: (await rewrapDataKey(keys.kek, previousWrapped, binding)).wrapped };
      } catch (err) {
        if (!isDecryptError(err) && !isKeySetError(err)) throw err;
        // Rollback material that no longer opens is worth nothing: dropped, the current key is untouched.
        this.log.warn('previous data key dropped: it no longer opens', { namespace: binding.namespace, name: binding.name, reason: err.reason });
        previous = undefined;
      }
      changed = true;
    }
    return { ...current, changed, record, ...(previous ? { previous } : {}) };
  }

  private async writeStore(
    es: EncryptedService,
    policy: KeyPolicy,
    keys: KeySets,
    store: StoreWrite,
    owners: V1OwnerReference[],
  ): Promise<void> {
    const namespace = es.metadata.namespace ?? '';
    const name = envelopeStoreName(es.metadata.name ?? '');
    const data: Record<string, string> = {
      ...envelopeStoreData({ wrappedDataKey: store.wrapped, envelopes: store.envelopes }),
      ...(store.previousWrapped !== undefined ? { [PREVIOUS_DEK_KEY]: Buffer.from(store.previousWrapped, 'utf8').toString('base64') } : {}),
    };
    const kek = keys.kek.keys.find((k) => k.kid === store.kid);
    if (!kek) throw new Error(`KEK ${store.kid} vanished while writing envelope store ${namespace}/${name}; retrying`);
    const metadata = {
      name, namespace,
      // The policy labels let the KeyPolicy count (and re-wrap) this store even after the service is gone.
      labels: { ...childLabels(es, 'secrets'), [LABEL_KEY_POLICY]: policy.metadata.name ?? '', [LABEL_KEY_POLICY_NAMESPACE]: policy.metadata.namespace ?? '' },
      annotations: {
        [ANNOTATION_KID]: store.kid, [ANNOTATION_DATA_KEY_ID]: inspectWrappedDataKey(store.wrapped).dataKeyId, ...store.record,
        [ANNOTATION_STORE_INTEGRITY]: tagFor(kek, this.expectation(es, policy), data),
      },
      ...(owners.length ? { ownerReferences: owners } : {}),
    };
    if (!store.secret) {
      try {
        const body = { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata, data };
        await refusable(body, () => this.o.core.createNamespacedSecret({ namespace, body }));
      } catch (err) {
        // Created concurrently: its data key is the one that counts; start over with it.
        if (isAlreadyExists(err)) throw new Error(`envelope store ${namespace}/${name} appeared while creating it; retrying`);
        throw err;
      }
      return;
    }
    if (!store.changed) return;
    // resourceVersion guards the data key: a concurrent writer makes this fail and retry.
    const body = { ...store.secret, metadata: { ...store.secret.metadata, ...metadata, annotations: { ...store.secret.metadata?.annotations, ...metadata.annotations } }, data };
    await refusable({ ...body, apiVersion: 'v1', kind: 'Secret' }, () => this.o.core.replaceNamespacedSecret({ namespace, name, body }));
  }

  // --- failures

  private failure(err: unknown, secret: string, key?: string, what?: string): Failure {
    if (isDecryptError(err)) {
      const where = what ?? `sealed value ${secret}[${key ?? ''}]`;
      return { secret, ...(key ? { key } : {}), reason: err.reason, ...(err.kid ? { kid: err.kid } : {}), message: `${where}: ${describe(err)}` };
    }
    if (isKeySetError(err)) {
      return { secret, ...(key ? { key } : {}), reason: err.reason, message: `${what ?? `${secret}[${key ?? ''}]`}: ${err.message}` };
    }
    throw err;
  }

  private async reportFailures(es: EncryptedService, policy: KeyPolicy, failures: Failure[], now: Date): Promise<void> {
    const uid = es.metadata.uid ?? '';
    const fingerprint = auditFingerprint([uid, es.metadata.generation ?? 0, ...failures.map((f) => `${f.secret}/${f.key ?? ''}/${f.reason}/${f.kid ?? ''}`).sort()]);
    if (this.reported.get(uid) === fingerprint) return;
    this.reported.set(uid, fingerprint);
    const namespace = es.metadata.namespace ?? '';
    // After a restart the memory is empty; the trail itself says whether this was recorded.
    if (await this.o.audit.audited(this.policyIdentity(policy), 'failed-decrypt', fingerprint)) return;
    const audit: AuditEvent[] = [];
    for (const f of failures) {
      if (NOT_DECRYPTION.has(f.reason)) continue;
      audit.push({
        type: 'failed-decrypt', time: now,
        subject: { namespace, name: f.secret, kind: 'Secret', ...(f.kid ? { kid: f.kid } : {}) },
        details: { reason: f.reason, encryptedService: es.metadata.name ?? '', ...(f.key ? { entry: f.key } : {}), fingerprint },
      });
    }
    const eventReason = (f: Failure) => (NOT_DECRYPTION.has(f.reason) || f.reason === Reasons.EnvelopeStoreUntrusted ? f.reason : Reasons.DecryptionFailed);
    for (const f of failures) this.o.events.record(this.regarding(es), 'Warning', eventReason(f), f.message);
    this.log.warn('secrets not written', { namespace, name: es.metadata.name, failures: failures.map((f) => ({ secretName: f.secret, entry: f.key, reason: f.reason, kid: f.kid })) });
    await this.o.audit.record(this.policyIdentity(policy), audit, policy.spec.audit?.segmentSize ?? 256);
  }

  private expectation(es: EncryptedService, policy: KeyPolicy): StoreExpectation {
    return {
      namespace: es.metadata.namespace ?? '', service: es.metadata.name ?? '',
      policy: { namespace: policy.metadata.namespace ?? '', name: policy.metadata.name ?? '' },
      ...(es.metadata.uid ? { serviceUid: es.metadata.uid } : {}),
    };
  }

  private owners(es: EncryptedService): V1OwnerReference[] {
    // Retain keeps data-bearing objects when the service goes: no owner reference to collect them.
    return es.spec.deletionPolicy === 'Delete' ? [ownerReference(es)] : [];
  }

  private async read(namespace: string, name: string): Promise<V1Secret | undefined> {
    try {
      return await this.o.core.readNamespacedSecret({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private regarding(es: EncryptedService): KubernetesObject {
    return { ...es, apiVersion: API_VERSION, kind: ENCRYPTED_SERVICE.kind };
  }

  private policyIdentity(policy: KeyPolicy) {
    return {
      namespace: policy.metadata.namespace ?? '', name: policy.metadata.name ?? '', uid: policy.metadata.uid ?? '',
      statusHead: policy.status?.auditHead, segmentSize: policy.spec.audit?.segmentSize ?? 256,
    };
  }
}

const REASON_TEXT: Record<string, string> = {
  Malformed: 'not a Lockstep ciphertext',
  Tampered: 'failed authentication (tampered, or made for another key)',
  WrongBinding: 'made for another namespace, Secret or key',
  UnknownKey: 'sealed for a key this policy does not have (seal it again for this policy: kubectl lockstep seal)',
  RetiredKey: 'sealed for a retired key (seal it again for this policy: kubectl lockstep seal)',
  WrongAlgorithm: 'uses an algorithm this policy does not allow',
};

function describe(err: DecryptError): string {
  return `${REASON_TEXT[err.reason] ?? err.reason}${err.kid ? ` [kid ${err.kid}]` : ''} (${err.reason})`;
}
