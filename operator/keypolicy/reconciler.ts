// Converges one KeyPolicy: its key sets (created once, then only extended by rotation and
// shrunk by retirement — never replaced), the public JWKS for `lockstep seal`, the managed CA,
// and status. Every key event is appended to the policy's audit trail.
//
// The key Secret is read from the API server, not the cache, and written with its
// resourceVersion: a stale read must never lead to generating a second "first" key set or to
// dropping a key another writer just added. It outlives the policy (key-retention.ts): a policy
// re-created under the same name picks up the stored keys, and deletion waits while they are used.
import type { CoreV1Api, KubernetesObject, V1ConfigMap, V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import {
  ANNOTATION_ACTIVE_CA_SECRET, ANNOTATION_KID, API_VERSION, ROTATED_CA_SECRET, FINALIZER, GROUP, KEY_POLICY, KeyPolicyConditions as C, PUBLIC_JWKS_KEY, Reasons, type Reason,
  VERSION, effectiveKeyWrap, keyPolicyNamespaceOf, publicJwksConfigMapName, withKeyPolicyDefaults,
  type EncryptedService, type KeyPolicy, type KeyPolicyStatus,
} from '../api/v1alpha1/index.js';
import type { AuditEvent } from '../audit/chain.js';
import { createKeySet, activeKey, publicJwks } from '../crypto/keyset.js';
import { inspectWrappedDataKey, rewrapDataKey } from '../crypto/datakey.js';
import { jwkThumbprint } from '../crypto/thumbprint.js';
import { isDecryptError, isKeySetError } from '../crypto/errors.js';
import { WRAPPED_DEK_KEY, readEnvelopeStore } from '../encryptedservice/envelope-store.js';
import { ANNOTATION_STORE_INTEGRITY, tagFor, verifyEnvelopeStore } from '../encryptedservice/store-integrity.js';
import type { Applier } from '../kube/apply.js';
import { WrittenConditions, type ConditionInput } from '../kube/conditions.js';
import { setConditionsWithKstatus } from '../kube/kstatus.js';
import { isSubset } from '../kube/subset.js';
import { isAlreadyExists, isNotFound } from '../runtime/api-error.js';
import type { EventRecorder } from '../runtime/events.js';
import type { Informer } from '../runtime/informer.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import type { Result } from '../runtime/workqueue.js';
import { accessDenied, tlsWeakening } from '../encryptedservice/policy.js';
import { ANNOTATION_AUDIT_PENDING, fingerprinted, openPending, sealPending } from './audit-outbox.js';
import { auditFingerprint, type AuditRecorder } from './audit-trail.js';
import {
  generationSettings, retentionSettings, retireBoth, rotateBoth, rotationDecision, rotationPeriodMs,
  type KeyChange, type KeySets,
} from './key-plan.js';
import { KeyRing, hsmKeyOwner, hsmKeySets, keySecretData } from './key-ring.js';
import { kekBackendOf } from '../crypto/kek-view.js';
import { KeySetError } from '../crypto/errors.js';
import { Pkcs11KekBackend } from '../crypto/pkcs11-kek-backend.js';
import { keyStoreProblem } from './hsm-sessions.js';
import { HSM_KEK_ALGORITHM } from './status.js';
import { buildManagedCA, managedCARefs, type CertManagerResource } from './managed-ca.js';
import { ANNOTATION_REACTIVATE_KID, ANNOTATION_REACTIVATED_FOR, pendingReactivation, reactivateBoth } from './reactivation.js';
import { onDemandRotation } from './rotation-request.js';
import { ANNOTATION_KEY_POLICY_UID, KEYS_IN_USE_FINALIZER, deletionBlockedMessage, inUse, keyHolders, keySecretMetadata, type KeyHolders } from './key-retention.js';
import { PREVIOUS_DEK_KEY } from '../encryptedservice/data-key-rotation.js';
import { keyPolicyLabels, keySecretName, legacyManagedCANames, managedCAIssuerName, ownedByPolicy } from './names.js';
import { keyStatuses, type KeyUsage } from './status.js';
import { StoreCensus } from './store-census.js';
import type { DependencyCheck } from '../runtime/dependency.js';

const CERT_MANAGER_GROUP = 'cert-manager.io';

type ReadyObject = KubernetesObject & { status?: { conditions?: { type: string; status: string; message?: string }[] } };

export interface KeyPolicyCaches {
  keyPolicies: Informer<KeyPolicy>;
  encryptedServices: Informer<EncryptedService>;
  secrets: Informer<V1Secret>;
  configMaps: Informer<V1ConfigMap>;
  certificates: Informer<ReadyObject>;
  clusterIssuers: Informer<ReadyObject>;
}

export interface KeyPolicyReconcilerOptions {
  caches: KeyPolicyCaches;
  applier: Applier;
  /** Direct reads and guarded writes of the key Secret (through the leader-guarded client). */
  core: CoreV1Api;
  keyRing: KeyRing;
  audit: AuditRecorder;
  events: EventRecorder;
  metrics: OperatorMetrics;
  logger: Logger;
  /** Re-wrap (and so tag) untagged stores whose data key opens: the upgrade from untagged stores. */
  adoptUntaggedStores?: boolean;
  /** Where cert-manager looks for ClusterIssuer Secrets (its --cluster-resource-namespace). */
  clusterResourceNamespace: string;
  /**
   * Reads an object from the API server, undefined when it does not exist. The caches hold only
   * what Lockstep labels, so an object someone else made under a managed CA name is found here.
   * Custom resources only (cert-manager's Certificates and ClusterIssuers).
   */
  read?: (ref: KubernetesObject) => Promise<KubernetesObject | undefined>;
  /** Whether cert-manager is served: a managed CA waits for it (with a condition that says so). */
  certManager?: DependencyCheck<typeof Reasons.CertManagerMissing>;
  now?: () => Date;
}

/** Re-check cadence of a deletion that waits for the keys' users to go (their changes also trigger one). */
const DELETION_RECHECK_MS = 10_000;
/** Re-check cadence while the audit trail is broken (an administrator may restore it). */
const AUDIT_RECHECK_MS = 30_000;
/** Re-check cadence while data keys wait to be re-wrapped by their services' reconciles. */
const REWRAP_RECHECK_MS = 5_000;
/** Timers longer than this are re-armed: setTimeout overflows past ~24.8 days. */
const MAX_REQUEUE_MS = 3_600_000;

/** The managed CA's (or the named default ClusterIssuer's) state for status; undefined when there is nothing to report. */
type ManagedCAState = { ready: boolean; message: string; reason?: Reason } | undefined;

const objectKeyOf = (policy: KeyPolicy): string => `${policy.metadata.namespace ?? ''}/${policy.metadata.name ?? ''}`;

const cond = (type: string, ok: boolean, reason: Reason, message: string): ConditionInput => ({
  type, status: ok ? 'True' : 'False', reason, message,
});

export class KeyPolicyReconciler {
  private readonly log: Logger;
  private readonly now: () => Date;
  /** Per EncryptedService uid: the violation last audited, and by which policy. */
  private readonly violationsReported = new Map<string, string>();
  private readonly violationOwner = new Map<string, string>();
  private readonly census: StoreCensus;
  private readonly written = new WrittenConditions();

  constructor(private readonly o: KeyPolicyReconcilerOptions) {
    this.log = o.logger.child('keypolicy');
    this.census = new StoreCensus({
      secrets: o.caches.secrets, events: o.events, metrics: o.metrics, logger: o.logger,
      ...(o.adoptUntaggedStores ? { adoptUntaggedStores: true } : {}),
    });
    this.now = o.now ?? (() => new Date());
  }

  async reconcile(key: string): Promise<Result | void> {
    const cached = this.o.caches.keyPolicies.getByKey(key);
    if (!cached) return;
    const policy: KeyPolicy = { ...cached, spec: withKeyPolicyDefaults(cached.spec) };
    try {
      return await this.reconcilePolicy(policy);
    } catch (err) {
      const problem = keyStoreProblem(err);
      if (!problem || policy.metadata.deletionTimestamp) throw err;
      // The HSM is unreachable, refuses, lacks a key, or is not granted: say so and retry (the
      // workqueue backs off). Never a new key in place of one the token should hold.
      await this.writeStatus(policy, [
        cond(C.KeysReady, false, problem.reason, problem.message), cond(C.Ready, false, problem.reason, problem.message),
        cond(C.Degraded, true, problem.reason, problem.message),
      ], { ...(policy.status ?? {}), lastError: problem.message });
      if (problem.reason === Reasons.KeyStoreNotAllowed) return { requeueAfter: AUDIT_RECHECK_MS };
      throw err;
    }
  }

  private async reconcilePolicy(policy: KeyPolicy): Promise<Result | void> {
    const namespace = policy.metadata.namespace ?? '';
    const name = policy.metadata.name ?? '';
    if (policy.metadata.deletionTimestamp) return this.finalize(policy);

    const managedCA = buildManagedCA(policy, this.o.clusterResourceNamespace);
    // Every policy: deletion waits until nothing is under its keys (finalize).
    await this.ensureFinalizer(policy);

    // Key changes are audited or not made: while the trail does not match its signed head,
    // no key is created, rotated, rolled back or retired (events already in the key Secret's
    // outbox stay there), and the policy says why until an administrator recovers the trail.
    const broken = await this.o.audit.check(this.identity(policy));
    if (broken) {
      const { conditions: _c, auditHead: _a, observedGeneration: _o, lastError: _e, ...kept } = policy.status ?? {};
      await this.writeStatus(policy, [
        cond(C.AuditTrailReady, false, Reasons.AuditChainBroken, broken), cond(C.Ready, false, Reasons.AuditChainBroken, broken),
        cond(C.Degraded, true, Reasons.AuditChainBroken, broken),
      ], { ...kept, lastError: broken });
      return { requeueAfter: AUDIT_RECHECK_MS };
    }

    const audit: AuditEvent[] = [];
    let sets: KeySets;
    let secret: V1Secret;
    try {
      ({ sets, secret } = await this.ensureKeys(policy));
    } catch (err) {
      if (!isKeySetError(err)) throw err;
      // A corrupt key Secret is never repaired by generating keys: that would make every
      // existing ciphertext undecryptable. Report, keep retrying (a restore may fix it).
      const message = `key Secret ${keySecretName(name)} cannot be used (${err.reason}): ${err.message}; restore it from backup`;
      await this.writeStatus(policy, [
        cond(C.KeysReady, false, err.reason, message), cond(C.Ready, false, err.reason, message), cond(C.Degraded, true, err.reason, message),
      ], { lastError: message });
      throw err;
    }

    secret = await this.maintainKeySecret(policy, secret, inUse(await this.holders(policy, sets)));
    const usage = await this.census.usage(policy, this.users(policy), sets);
    const retention = retentionSettings(policy.spec);
    const keyWrap = effectiveKeyWrap(policy.spec.keyWrap);
    const now = this.now();
    const onDemand = onDemandRotation(policy.metadata.annotations, secret.metadata?.annotations);
    const decision = rotationDecision({
      kek: sets.kek, keyWrap, periodMs: rotationPeriodMs(policy.spec), requested: onDemand.pending, handled: undefined, now,
    });
    let change: KeyChange | undefined;
    const keyEvents: AuditEvent[] = [];
    const reactivateRequest = policy.metadata.annotations?.[ANNOTATION_REACTIVATE_KID] ?? '';
    const reactivate = pendingReactivation(reactivateRequest, secret.metadata?.annotations?.[ANNOTATION_REACTIVATED_FOR]);
    let reactivated = false;
    if (reactivate !== undefined) {
      try {
        if (kekBackendOf(sets.kek)) throw new KeySetError('InvalidTransition', 'rollback is not supported yet with keyStore PKCS11');
        change = reactivateBoth(sets, reactivate, now);
      } catch (err) {
        if (!isKeySetError(err)) throw err;
        // Not retried: only a new value can change the answer; the value is recorded as handled below.
        this.o.events.record(this.regarding(policy), 'Warning', 'ReactivationFailed', `cannot make ${reactivate} active again: ${err.message}`);
      }
      keyEvents.push(...(change?.activated ?? []).map((kid, i): AuditEvent => ({
        type: 'rotate', time: now, subject: { namespace, name, kind: KEY_POLICY.kind, kid },
        details: { trigger: 'rollback', previousKid: change?.deactivated[i] ?? '' },
      })));
      // A rollback supersedes an on-demand rotation not made yet (it would undo the rollback).
      const pending = [...await this.pending(policy, secret, audit, now), ...keyEvents.map(fingerprinted)];
      secret = await this.replaceKeys(secret, change?.keySets ?? sets, pending, { ...onDemand.handled, [ANNOTATION_REACTIVATED_FOR]: reactivateRequest });
      if (change) {
        sets = change.keySets;
        reactivated = true;
        this.o.keyRing.forget(namespace, keySecretName(name));
        this.o.events.record(this.regarding(policy), 'Normal', 'KeyReactivated', `rolled back: active KEK ${activeKey(sets.kek).kid}, sealing key ${activeKey(sets.seal).kid} again; data keys are re-wrapped in the background`);
      }
      change = undefined;
    } else if (decision.due) {
      change = await rotateBoth(sets, keyWrap, retention, usage.byKid, now);
      keyEvents.push(...change.activated.map((kid, i): AuditEvent => ({
        type: 'rotate', time: now, subject: { namespace, name, kind: KEY_POLICY.kind, kid },
        details: { trigger: decision.trigger ?? 'period', previousKid: change?.deactivated[i] ?? '' },
      })));
    } else {
      change = retireBoth(sets, retention, usage.byKid, now);
    }
    if (change) {
      keyEvents.push(...change.retired.map((kid): AuditEvent => ({ type: 'retire', time: now, subject: { namespace, name, kind: KEY_POLICY.kind, kid } })));
      const pending = [...await this.pending(policy, secret, audit, now), ...keyEvents.map(fingerprinted)];
      secret = await this.replaceKeys(secret, change.keySets, pending, decision.due ? onDemand.handled : {});
      sets = change.keySets;
      this.o.keyRing.forget(namespace, keySecretName(name));
      if (decision.due) {
        this.o.events.record(this.regarding(policy), 'Normal', 'KeyRotated', `rotated (${decision.trigger}): active KEK ${activeKey(sets.kek).kid}, sealing key ${activeKey(sets.seal).kid}; data keys are re-wrapped in the background`);
        this.o.metrics.kekGenerations.inc({ trigger: decision.trigger ?? 'period' });
      }
      if (change.retired.length > 0) this.o.events.record(this.regarding(policy), 'Normal', 'KeyRetired', `retired ${change.retired.join(', ')}: nothing was wrapped under them`);
    }
    // HSM: retired KEKs leave the token only now that the index saying so is stored.
    if (kekBackendOf(sets.kek) instanceof Pkcs11KekBackend) (kekBackendOf(sets.kek) as Pkcs11KekBackend).destroyPending();
    await this.rewrapOrphans(policy, sets, audit, now);
    audit.push(...await this.violations(policy, now));
    const pending = await this.pending(policy, secret, audit, now);
    const unrecorded: AuditEvent[] = [];
    for (const e of pending) {
      if (!await this.o.audit.audited(this.identity(policy), e.type, String(e.details?.['fingerprint'] ?? ''))) unrecorded.push(e);
    }
    await this.o.audit.record(this.identity(policy), [...unrecorded, ...audit], policy.spec.audit?.segmentSize ?? 256);
    if (secret.metadata?.annotations?.[ANNOTATION_AUDIT_PENDING] !== undefined) secret = await this.clearPending(secret);

    await this.publishJwks(policy, sets);
    const ca = managedCA ? await this.applyManagedCA(policy) : (await this.removeManagedCA(policy)) ?? this.defaultIssuerState(policy);

    // Counted against the sets as they are now: after a change, other kids are the old ones.
    const finalUsage = change || reactivated ? await this.census.usage(policy, this.users(policy), sets) : usage;
    this.census.report(policy, finalUsage.untrusted);
    this.trackKeyAges(policy, sets, change?.retired ?? []);
    const nextRotation = rotationDecision({
      kek: sets.kek, keyWrap, periodMs: rotationPeriodMs(policy.spec), requested: undefined, handled: undefined, now,
    }).nextRotation;
    const conditions = this.conditions(sets, finalUsage, ca);
    const orphans = hsmOrphans(sets);
    if (orphans.length > 0) {
      // A key made in the token whose index was never stored (a crash or a conflict between the
      // two writes). Never used and never deleted by the operator: only a person can tell.
      conditions.push(cond(C.Degraded, true, Reasons.OrphanKeysInToken, `the HSM token holds KEKs of this policy that its key index does not name: ${orphans.join(', ')}; they wrap nothing — delete them in the token once checked`));
    }
    if (secret.metadata?.deletionTimestamp) {
      // Someone deleted the key Secret while data is under its keys: the finalizer keeps it for now.
      const message = `key Secret ${keySecretName(name)} was deleted while ciphertexts are under its keys; the ${KEYS_IN_USE_FINALIZER} finalizer keeps it until they are gone — take a lockstep backup now`;
      conditions.push(cond(C.Degraded, true, Reasons.KeySecretDeleting, message));
    }
    await this.writeStatus(policy, conditions.filter((c, i) => !conditions.slice(i + 1).some((later) => later.type === c.type)), {
      activeKid: activeKey(sets.kek).kid,
      keyStore: kekBackendOf(sets.kek) ? 'PKCS11' : 'Secret',
      sealingKid: activeKey(sets.seal).kid,
      sealingKeyThumbprint: jwkThumbprint(publicJwks(sets.seal).keys[0]!),
      keys: keyStatuses(sets, finalUsage.byKid),
      lastRotation: activeKey(sets.kek).activatedAt.replace(/\.\d{3}Z$/, 'Z'),
      nextRotation: nextRotation.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      keySecretName: keySecretName(name),
      publicJwksConfigMap: publicJwksConfigMapName(name),
      ...(managedCA
        ? { issuer: { kind: 'ClusterIssuer', name: managedCAIssuerName(namespace, name) } }
        : policy.spec.certificates?.defaultIssuer?.issuerRef
          ? { issuer: { kind: policy.spec.certificates.defaultIssuer.issuerRef.kind ?? 'Issuer', name: policy.spec.certificates.defaultIssuer.issuerRef.name } }
          : {}),
    });
    const untilRotation = Math.max(1_000, nextRotation.getTime() - this.now().getTime());
    // A missing issuer or cert-manager wakes the policy through the watches (controller.ts, and
    // the resync when cert-manager's API appears): no need to poll for it.
    const watched = ca?.reason === Reasons.IssuerNotFound || ca?.reason === Reasons.CertManagerMissing;
    const wait = Math.min(untilRotation, MAX_REQUEUE_MS, finalUsage.pendingRewrap > 0 || (ca && !ca.ready && !watched) ? REWRAP_RECHECK_MS : MAX_REQUEUE_MS);
    return { requeueAfter: wait };
  }

  // --- keys

  private async ensureKeys(policy: KeyPolicy): Promise<{ sets: KeySets; secret: V1Secret }> {
    const namespace = policy.metadata.namespace ?? '';
    const name = keySecretName(policy.metadata.name ?? '');
    const live = await this.readSecret(namespace, name);
    if (live) return { sets: await this.o.keyRing.open(live, policy), secret: live };

    const now = this.now();
    const generation = generationSettings(effectiveKeyWrap(policy.spec.keyWrap));
    const options = { now, ...(generation.rsaBits ? { rsaBits: generation.rsaBits } : {}), ...(generation.curve ? { curve: generation.curve } : {}) };
    const seal = await createKeySet('seal', generation.seal, generation.seal === generation.kek ? options : { now });
    // keyStore PKCS11: the first KEK is generated in the token (a crash before the Secret is
    // written leaves an unused key there, reported as an orphan, never adopted).
    const hsm = policy.spec.keyStore?.type === 'PKCS11';
    let sets: KeySets;
    if (hsm) {
      const session = await this.o.keyRing.hsmSession(policy);
      sets = await hsmKeySets(session, await Pkcs11KekBackend.create(session, now, hsmKeyOwner(policy)), seal);
    } else {
      sets = { kek: await createKeySet('kek', generation.kek, options), seal };
    }
    const kekAlgorithm = hsm ? HSM_KEK_ALGORITHM : generation.kek;
    const onDemand = onDemandRotation(policy.metadata.annotations, undefined);
    const subject = { namespace, name: policy.metadata.name ?? '', kind: KEY_POLICY.kind };
    const created = ([
      { type: 'create', time: now, subject: { ...subject, kid: activeKey(sets.kek).kid }, details: { purpose: 'kek', algorithm: kekAlgorithm } },
      { type: 'create', time: now, subject: { ...subject, kid: activeKey(sets.seal).kid }, details: { purpose: 'seal', algorithm: generation.seal } },
    ] satisfies AuditEvent[]).map(fingerprinted);
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name,
        namespace,
        labels: keyPolicyLabels(namespace, policy.metadata.name ?? '', 'keys'),
        annotations: {
          [ANNOTATION_AUDIT_PENDING]: sealPending(created, await this.o.audit.signingKey(), `${namespace}/${name}`),
          // Rotation requests present at creation are satisfied by the fresh keys.
          ...onDemand.handled,
          [ANNOTATION_KEY_POLICY_UID]: policy.metadata.uid ?? '',
        },
        // No owner reference: the keys must outlive the policy (key-retention.ts).
      },
      data: keySecretData(sets),
    };
    let secret: V1Secret;
    try {
      secret = await this.o.core.createNamespacedSecret({ namespace, body });
    } catch (err) {
      // Someone (another replica, an earlier attempt) created it first: use theirs, never ours.
      if (isAlreadyExists(err)) throw new Error(`key Secret ${namespace}/${name} appeared while creating it; retrying with the stored keys`);
      throw err;
    }
    this.o.events.record(this.regarding(policy), 'Normal', Reasons.KeysGenerated, `generated KEK ${activeKey(sets.kek).kid} (${kekAlgorithm}${hsm ? ', in the HSM token' : ''}) and sealing key ${activeKey(sets.seal).kid} (${generation.seal}) in Secret ${name}`);
    this.log.info('keys generated', { namespace, keypolicy: policy.metadata.name, kekKid: activeKey(sets.kek).kid, sealKid: activeKey(sets.seal).kid });
    return { sets, secret };
  }

  private async replaceKeys(
    live: V1Secret, sets: KeySets, pending: readonly AuditEvent[], extra: Record<string, string> = {},
  ): Promise<V1Secret> {
    const namespace = live.metadata?.namespace ?? '';
    const name = live.metadata?.name ?? '';
    const sealed = sealPending(pending, await this.o.audit.signingKey(), `${namespace}/${name}`);
    const annotations: Record<string, string> = { ...(live.metadata?.annotations ?? {}), ...extra, [ANNOTATION_AUDIT_PENDING]: sealed };
    // resourceVersion makes this a compare-and-swap: a concurrent change fails with 409 and the
    // reconcile starts over from what is stored.
    return this.o.core.replaceNamespacedSecret({
      namespace, name,
      body: { ...live, metadata: { ...live.metadata, annotations }, data: keySecretData(sets) },
    });
  }

  /**
   * Key events parked in the key Secret. An annotation the operator did not sign for this Secret
   * (written by whoever may edit Secrets in the namespace) is not appended: it is reported, audited
   * as a policy violation, and overwritten or cleared by the next write of the Secret.
   */
  private async pending(policy: KeyPolicy, secret: V1Secret, audit: AuditEvent[], now: Date): Promise<AuditEvent[]> {
    const namespace = secret.metadata?.namespace ?? '';
    const name = secret.metadata?.name ?? '';
    const opened = openPending(secret.metadata?.annotations?.[ANNOTATION_AUDIT_PENDING], (await this.o.audit.signingKey()).publicKey, `${namespace}/${name}`);
    if (opened.tampered && !audit.some((e) => e.details?.['reason'] === 'AuditOutboxTampered')) {
      this.o.events.record(this.regarding(policy), 'Warning', 'AuditOutboxTampered', `annotation ${ANNOTATION_AUDIT_PENDING} on Secret ${name} was not written by the operator; its events are not recorded`);
      audit.push({ type: 'policy-violation', time: now, subject: { namespace, name, kind: 'Secret' }, details: { reason: 'AuditOutboxTampered', keyPolicy: `${policy.metadata.namespace ?? ''}/${policy.metadata.name ?? ''}` } });
    }
    return opened.events;
  }

  /** The trail has the pending events: drop them from the key Secret (guarded by resourceVersion). */
  private async clearPending(live: V1Secret): Promise<V1Secret> {
    const { [ANNOTATION_AUDIT_PENDING]: _recorded, ...annotations } = live.metadata?.annotations ?? {};
    return this.o.core.replaceNamespacedSecret({
      namespace: live.metadata?.namespace ?? '', name: live.metadata?.name ?? '',
      body: { ...live, metadata: { ...live.metadata, annotations } },
    });
  }

  private async readSecret(namespace: string, name: string): Promise<V1Secret | undefined> {
    try {
      return await this.o.core.readNamespacedSecret({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private users(policy: KeyPolicy): EncryptedService[] {
    return this.o.caches.encryptedServices.list().filter((es) =>
      keyPolicyNamespaceOf(es) === policy.metadata.namespace && es.spec.keyPolicyRef.name === policy.metadata.name);
  }

  /**
   * Re-wraps the data keys of stores no service reconciles any more (the services re-wrap their
   * own). Each write is guarded by resourceVersion, re-verified on the fresh read, and re-tagged;
   * a store that does not open is left alone.
   */
  private async rewrapOrphans(policy: KeyPolicy, sets: KeySets, audit: AuditEvent[], now: Date): Promise<void> {
    const active = activeKey(sets.kek);
    const policyRef = { namespace: policy.metadata.namespace ?? '', name: policy.metadata.name ?? '' };
    for (const { store, orphan, service, wrapped, tampered } of (await this.census.stores(policy, this.users(policy), sets)).trusted) {
      // A re-wrap re-tags: a tampered store would come out looking like the operator's.
      if (!orphan || tampered) continue;
      const namespace = store.metadata?.namespace ?? '';
      try {
        if (inspectWrappedDataKey(wrapped).kid === active.kid) continue;
        const fresh = await this.readSecret(namespace, store.metadata?.name ?? '');
        if (!fresh) continue;
        const expectation = { namespace, service, policy: policyRef };
        const verdict = verifyEnvelopeStore(fresh, expectation, sets.kek);
        if (!verdict.trusted && !(verdict.legacy && this.o.adoptUntaggedStores)) continue;
        // An untagged store's data key is authenticated by the unwrap inside the re-wrap.
        const result = await rewrapDataKey(sets.kek, verdict.wrapped, { namespace, name: service });
        if (!result.changed) continue;
        const data = { ...fresh.data, [WRAPPED_DEK_KEY]: Buffer.from(result.wrapped, 'utf8').toString('base64') };
        await this.o.core.replaceNamespacedSecret({
          namespace, name: fresh.metadata?.name ?? '',
          body: {
            ...fresh,
            metadata: {
              ...fresh.metadata,
              annotations: { ...fresh.metadata?.annotations, [ANNOTATION_KID]: result.toKid, [ANNOTATION_STORE_INTEGRITY]: tagFor(active, expectation, data) },
            },
            data,
          },
        });
        audit.push({ type: 'rewrap', time: now, subject: { namespace, name: service, kind: 'EncryptedService', kid: result.toKid }, details: { fromKid: result.fromKid, orphaned: true } });
      } catch (err) {
        if (!isDecryptError(err) && !isKeySetError(err)) throw err;
        this.log.warn('retained envelope store cannot be re-wrapped', { namespace, store: store.metadata?.name, reason: err.reason });
      }
    }
  }

  /**
   * Services that reference this policy but may not use it, or ask for weaker TLS than it allows,
   * each audited once per generation (the EncryptedService reports them in its own status).
   */
  private async violations(policy: KeyPolicy, now: Date): Promise<AuditEvent[]> {
    const out: AuditEvent[] = [];
    const users = this.users(policy);
    const seen = new Set<string>();
    for (const es of users) {
      const uid = es.metadata.uid ?? '';
      seen.add(uid);
      const denied = accessDenied(es, policy);
      const weakened = denied ? undefined : tlsWeakening(es, policy);
      const reason = denied?.reason ?? (weakened ? 'TLSWeakened' : undefined);
      if (!reason) {
        this.violationsReported.delete(uid);
        continue;
      }
      const fingerprint = auditFingerprint([uid, es.metadata.generation ?? 0, policy.metadata.generation ?? 0, reason]);
      if (this.violationsReported.get(uid) === fingerprint) continue;
      this.violationsReported.set(uid, fingerprint);
      const namespace = policy.metadata.namespace ?? '';
      if (await this.o.audit.audited(this.identity(policy), 'policy-violation', fingerprint)) continue;
      out.push({
        type: 'policy-violation', time: now,
        subject: { namespace: es.metadata.namespace ?? '', name: es.metadata.name ?? '', kind: 'EncryptedService' },
        details: { reason, keyPolicy: `${namespace}/${policy.metadata.name ?? ''}`, fingerprint },
      });
    }
    for (const uid of [...this.violationsReported.keys()]) {
      if (!seen.has(uid) && this.violationOwner.get(uid) === objectKeyOf(policy)) {
        this.violationsReported.delete(uid);
        this.violationOwner.delete(uid);
      }
    }
    for (const uid of seen) this.violationOwner.set(uid, objectKeyOf(policy));
    return out;
  }

  private trackKeyAges(policy: KeyPolicy, sets: KeySets, retired: readonly string[]): void {
    const base = { namespace: policy.metadata.namespace ?? '', keypolicy: policy.metadata.name ?? '' };
    for (const key of [...sets.kek.keys, ...sets.seal.keys]) this.o.metrics.trackKeyAge({ ...base, kid: key.kid }, Date.parse(key.createdAt));
    for (const kid of retired) this.o.metrics.untrackKeyAge({ ...base, kid });
  }

  // --- public JWKS

  private async publishJwks(policy: KeyPolicy, sets: KeySets): Promise<void> {
    const namespace = policy.metadata.namespace ?? '';
    const name = publicJwksConfigMapName(policy.metadata.name ?? '');
    const desired: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name, namespace,
        labels: keyPolicyLabels(namespace, policy.metadata.name ?? '', 'keys'),
        ownerReferences: [this.ownerReference(policy)],
      },
      data: { [PUBLIC_JWKS_KEY]: JSON.stringify(publicJwks(sets.seal)) },
    };
    await this.o.applier.apply(desired, this.o.caches.configMaps.get(namespace, name));
  }

  // --- managed CA

  /**
   * Applies the managed CA, after checking that every name it uses is free or already this
   * policy's: server-side apply would otherwise take over, and the finalizer later delete, an
   * object someone else made. A taken name stops the whole CA (nothing is applied) and is reported.
   */
  private async applyManagedCA(policy: KeyPolicy): Promise<ManagedCAState> {
    const namespace = policy.metadata.namespace ?? '';
    const name = policy.metadata.name ?? '';
    const crn = this.o.clusterResourceNamespace;
    const missing = this.o.certManager?.problem();
    if (missing) return { ready: false, reason: missing.reason, message: `managed CA not applied: ${missing.message}` };
    const legacy = legacyManagedCANames(namespace, name);
    const certificate = (n: string) => ({ apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name: n, namespace: crn } });
    const clusterIssuer = (n: string) => ({ apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: n } });
    const legacyRoot = ownedByPolicy((await this.live(certificate(legacy.root), this.o.caches.certificates.get(crn, legacy.root)))?.metadata, namespace, name);
    const planned = buildManagedCA(policy, crn, { legacyRoot });
    if (!planned) return undefined;
    const rootName = planned.root.metadata?.name ?? '';
    const rootLive = await this.live(planned.root, this.o.caches.certificates.get(crn, rootName));
    // A root issued before roots could sign CRLs keeps its usages: changing them re-issues it, with a new key.
    const usages = (rootLive as CertManagerResource | undefined)?.spec?.['usages'];
    const crlSign = !rootLive || (Array.isArray(usages) && usages.includes('crl sign'));
    const objects = crlSign ? planned : buildManagedCA(policy, crn, { legacyRoot, crlSign })!;
    const issuerName = objects.issuer.metadata?.name ?? '';
    const selfSignedName = objects.selfSigned.metadata?.name ?? '';
    const selfSignedLive = await this.live(objects.selfSigned, this.o.caches.clusterIssuers.get(undefined, selfSignedName));
    const issuerLive = await this.live(objects.issuer, this.o.caches.clusterIssuers.get(undefined, issuerName));
    const rootSecret = this.o.caches.secrets.get(crn, rootName) ?? await this.readSecret(crn, rootName);
    const taken = ([
      [`ClusterIssuer ${selfSignedName}`, selfSignedLive], [`Certificate ${crn}/${rootName}`, rootLive],
      [`Secret ${crn}/${rootName}`, rootSecret], [`ClusterIssuer ${issuerName}`, issuerLive],
    ] as const).filter(([, live]) => live && !ownedByPolicy(live.metadata, namespace, name)).map(([what]) => what);
    if (taken.length) {
      return {
        ready: false, reason: Reasons.NameTaken,
        message: `managed CA not applied: ${taken.join(', ')} already exists and was not made by Lockstep for KeyPolicy ${namespace}/${name}; Lockstep neither takes it over nor deletes it. An administrator must remove it, or the policy use another name`,
      };
    }
    const apply = (o: CertManagerResource, live: KubernetesObject | undefined) => this.o.applier.apply(o, live);
    await apply(objects.selfSigned, selfSignedLive);
    await apply(objects.root, rootLive);
    // A CA rotation switched the issuer to its new CA: keep signing with that one. An issuer under
    // the legacy name hands its rotated CA on to the new name.
    const legacyIssuer = legacyRoot ? await this.live(clusterIssuer(legacy.issuer), this.o.caches.clusterIssuers.get(undefined, legacy.issuer)) : undefined;
    const fromLegacy = ownedByPolicy(legacyIssuer?.metadata, namespace, name) ? legacyIssuer?.metadata?.annotations?.[ANNOTATION_ACTIVE_CA_SECRET] : undefined;
    const active = issuerLive?.metadata?.annotations?.[ANNOTATION_ACTIVE_CA_SECRET] ?? fromLegacy;
    const issuer = active && ROTATED_CA_SECRET.test(active)
      ? { ...objects.issuer, metadata: { ...objects.issuer.metadata, annotations: { [ANNOTATION_ACTIVE_CA_SECRET]: active } }, spec: { ca: { secretName: active } } }
      : objects.issuer;
    await apply(issuer, issuerLive);
    const ready = (o: ReadyObject | undefined) => o?.status?.conditions?.find((c) => c.type === 'Ready');
    const rootReady = ready(rootLive);
    const issuerReady = ready(issuerLive);
    if (issuerReady?.status === 'True' && rootReady?.status === 'True') {
      return { ready: true, message: `ClusterIssuer ${issuerName} is ready` };
    }
    const why = issuerReady?.message ?? rootReady?.message ?? 'waiting for cert-manager';
    return { ready: false, message: `managed CA ClusterIssuer ${issuerName} is not ready: ${why}` };
  }

  /**
   * A default ClusterIssuer the policy names that cannot be used: cert-manager is missing, or it
   * does not exist. An Issuer is namespaced and looked up in each service's namespace: the
   * services report it (IssuerNotFound). Issuers of other API groups are not cached: not judged.
   */
  private defaultIssuerState(policy: KeyPolicy): ManagedCAState {
    const ref = policy.spec.certificates?.defaultIssuer?.issuerRef;
    if (ref?.kind !== 'ClusterIssuer' || (ref.group ?? CERT_MANAGER_GROUP) !== CERT_MANAGER_GROUP) return undefined;
    const missing = this.o.certManager?.problem();
    if (missing) return { ready: false, reason: missing.reason, message: `default ClusterIssuer ${ref.name} cannot be used: ${missing.message}` };
    if (this.o.caches.clusterIssuers.get(undefined, ref.name)) return undefined;
    return {
      ready: false, reason: Reasons.IssuerNotFound,
      message: `ClusterIssuer ${ref.name} (spec.certificates.defaultIssuer) does not exist: create it or change the issuer; services using this policy's default issuer get no certificate until then`,
    };
  }

  /** The live object: the cache's, else (not cached, or not labelled) the API server's. */
  private async live(ref: KubernetesObject, cached: KubernetesObject | undefined): Promise<ReadyObject | undefined> {
    if (cached) return cached;
    return this.o.read ? ((await this.o.read(ref)) as ReadyObject | undefined) : undefined;
  }

  /** A policy that dropped managedCA: its CA objects go (the finalizer stays, it guards the keys). */
  private async removeManagedCA(policy: KeyPolicy): Promise<undefined> {
    if (this.hasManagedCA(policy)) await this.cleanup(policy);
    return undefined;
  }

  private hasManagedCA(policy: KeyPolicy): boolean {
    return managedCARefs(policy.metadata.namespace ?? '', policy.metadata.name ?? '', this.o.clusterResourceNamespace).some((ref) => {
      if (ref.kind === 'ClusterIssuer') return this.o.caches.clusterIssuers.get(undefined, ref.metadata?.name ?? '') !== undefined;
      if (ref.kind === 'Certificate') return this.o.caches.certificates.get(ref.metadata?.namespace, ref.metadata?.name ?? '') !== undefined;
      return false;
    });
  }

  /** Deletes what the managed CA left, and only what carries this policy's labels. */
  private async cleanup(policy: KeyPolicy): Promise<void> {
    const namespace = policy.metadata.namespace ?? '';
    const name = policy.metadata.name ?? '';
    for (const ref of managedCARefs(namespace, name, this.o.clusterResourceNamespace)) {
      const live = ref.kind === 'Secret'
        ? await this.readSecret(ref.metadata?.namespace ?? '', ref.metadata?.name ?? '')
        : await this.live(ref, ref.kind === 'Certificate'
          ? this.o.caches.certificates.get(ref.metadata?.namespace, ref.metadata?.name ?? '')
          : this.o.caches.clusterIssuers.get(undefined, ref.metadata?.name ?? ''));
      if (!live) continue;
      if (!ownedByPolicy(live.metadata, namespace, name)) {
        this.log.info('not deleting an object Lockstep did not make for this policy', { namespace, keypolicy: name, kind: ref.kind, name: ref.metadata?.name });
        continue;
      }
      await this.o.applier.delete(ref);
    }
  }

  private async ensureFinalizer(policy: KeyPolicy): Promise<void> {
    if (policy.metadata.finalizers?.includes(FINALIZER)) return;
    await this.o.applier.apply({
      apiVersion: API_VERSION, kind: KEY_POLICY.kind,
      metadata: { name: policy.metadata.name ?? '', namespace: policy.metadata.namespace ?? '', finalizers: [FINALIZER] },
    });
  }

  /**
   * Deletion waits while any ciphertext is under the policy's keys, whatever deletionPolicy says;
   * then the managed CA goes, the key Secret too with deletionPolicy Delete, and the finalizer.
   */
  private async finalize(policy: KeyPolicy): Promise<Result | void> {
    if (!policy.metadata.finalizers?.includes(FINALIZER)) return;
    const namespace = policy.metadata.namespace ?? '';
    const name = policy.metadata.name ?? '';
    const secret = await this.readSecret(namespace, keySecretName(name));
    let sets: KeySets | undefined;
    try {
      sets = secret ? await this.o.keyRing.open(secret, policy) : undefined;
    } catch (err) {
      if (!isKeySetError(err) && !keyStoreProblem(err)) throw err;
      // Unreadable keys: every ciphertext naming a kid counts as ours (keyHolders).
    }
    const holders = await this.holders(policy, sets);
    const deletionPolicy = policy.spec.deletionPolicy ?? 'Retain';
    const current = secret ? await this.maintainKeySecret(policy, secret, inUse(holders)) : undefined;
    if (inUse(holders)) {
      const message = deletionBlockedMessage(namespace, name, holders, deletionPolicy);
      await this.writeStatus(policy, [cond(C.Ready, false, Reasons.KeysInUse, message)], { ...(policy.status ?? {}), lastError: message });
      return { requeueAfter: DELETION_RECHECK_MS };
    }
    await this.cleanup(policy);
    if (deletionPolicy === 'Delete' && current) {
      try {
        // Preconditions: keys changed since they were counted (a rotation, a restore) are not deleted blind.
        await this.o.core.deleteNamespacedSecret({
          namespace, name: keySecretName(name),
          body: { preconditions: { uid: current.metadata?.uid ?? '', resourceVersion: current.metadata?.resourceVersion ?? '' } },
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      this.o.keyRing.forget(namespace, keySecretName(name));
      this.o.events.record(this.regarding(policy), 'Normal', 'KeysDeleted', `deletionPolicy Delete: key Secret ${keySecretName(name)} deleted; nothing was under its keys`);
    } else if (secret) {
      this.o.events.record(this.regarding(policy), 'Normal', 'KeysRetained', `key Secret ${keySecretName(name)} kept (deletionPolicy Retain): a KeyPolicy ${name} created again in ${namespace} uses it`);
    }
    await this.o.applier.removeFinalizer(this.resourceRef(policy), policy.metadata.finalizers ?? [], FINALIZER);
    this.written.forget(policy.metadata.uid);
    this.log.info('finalized', { namespace, keypolicy: name, deletionPolicy });
  }

  /** Owner reference gone, current policy recorded, in-use finalizer set or cleared (key-retention.ts). */
  private async maintainKeySecret(policy: KeyPolicy, live: V1Secret, holding: boolean): Promise<V1Secret> {
    const change = keySecretMetadata(live.metadata ?? {}, policy.metadata.uid ?? '', holding);
    if (!change) return live;
    const namespace = live.metadata?.namespace ?? '';
    const name = live.metadata?.name ?? '';
    // resourceVersion travels in the metadata: a concurrent key change makes this fail and retry.
    const updated = await this.o.core.replaceNamespacedSecret({ namespace, name, body: { ...live, metadata: change.metadata } });
    if (change.adoptedFrom !== undefined) {
      const kid = this.safeActiveKid(updated);
      this.o.events.record(this.regarding(policy), 'Normal', 'KeysRetained', `uses the keys an earlier KeyPolicy ${policy.metadata.name ?? ''} left in Secret ${name}${kid ? ` (active KEK ${kid})` : ''}; nothing was generated`);
      this.log.info('retained keys taken over', { namespace, keypolicy: policy.metadata.name, secretName: name });
    }
    return updated;
  }

  private safeActiveKid(secret: V1Secret): string | undefined {
    try {
      return activeKey(this.o.keyRing.read(secret).kek).kid;
    } catch {
      return undefined;
    }
  }

  /**
   * Envelope stores and sealed values under this policy's live keys. Only what the operator wrote
   * or opened counts (store-census.ts), or a tenant's forgery could hold a policy from deletion;
   * with unreadable keys nothing can be verified, so every labelled store counts.
   */
  private async holders(policy: KeyPolicy, sets: KeySets | undefined): Promise<KeyHolders> {
    const users = this.users(policy);
    const candidates = sets ? (await this.census.stores(policy, users, sets)).trusted.map((t) => t.store) : this.census.candidates(policy, users).map((c) => c.store);
    const stores = candidates.map((store) => {
      const wrapped: string[] = [];
      try {
        const dek = readEnvelopeStore(store).wrappedDataKey;
        if (dek) wrapped.push(dek);
      } catch {
        // Unreadable: it names no kid.
      }
      const previous = store.data?.[PREVIOUS_DEK_KEY];
      if (previous) wrapped.push(Buffer.from(previous, 'base64').toString('utf8'));
      return { id: `${store.metadata?.namespace ?? ''}/${store.metadata?.name ?? ''}`, wrapped };
    });
    const services = users.map((es) => ({
      id: `${es.metadata.namespace ?? ''}/${es.metadata.name ?? ''}`,
      sealed: sets ? this.census.openedSealedValues(policy, es) : (es.spec.secrets?.sealed ?? []).flatMap((s) => Object.values(s.encryptedData ?? {})),
    }));
    return keyHolders(sets, stores, services);
  }

  // --- status

  private conditions(sets: KeySets, usage: KeyUsage, ca: ManagedCAState): ConditionInput[] {
    const kek = activeKey(sets.kek);
    const seal = activeKey(sets.seal);
    const decryptOnly = sets.kek.keys.length - 1;
    const keys = cond(C.KeysReady, true, Reasons.KeysGenerated, `active KEK ${kek.kid} (${kekBackendOf(sets.kek) ? `${HSM_KEK_ALGORITHM}, in the HSM token` : kek.alg}), sealing key ${seal.kid} (${seal.alg}), ${decryptOnly} decrypt-only KEKs`);
    const rotating = usage.pendingRewrap > 0
      ? cond(C.Rotating, true, Reasons.RewrapPending, `${usage.pendingRewrap} data keys still wrapped under older KEKs; services re-wrap them under ${kek.kid}`)
      : cond(C.Rotating, false, Reasons.RotationCompleted, `every data key is wrapped under ${kek.kid}`);
    const ready = ca && !ca.ready
      ? cond(C.Ready, false, ca.reason ?? Reasons.CertificatePending, ca.message)
      : cond(C.Ready, true, Reasons.Reconciled, `keys ready, public JWKS published${ca ? `, ${ca.message}` : ''}`);
    const audited = cond(C.AuditTrailReady, true, Reasons.AuditTrailVerified, 'the audit trail matches its signed head');
    const degraded = ca?.reason === Reasons.NameTaken || ca?.reason === Reasons.CertManagerMissing || ca?.reason === Reasons.IssuerNotFound
      ? cond(C.Degraded, true, ca.reason, ca.message)
      : usage.unreadable > 0
      ? cond(C.Degraded, true, 'UnreadableCiphertext', `${usage.unreadable} wrapped data keys or sealed values name no key`)
      : cond(C.Degraded, false, Reasons.Reconciled, 'no problems found');
    return [keys, rotating, ready, degraded, audited];
  }

  private async writeStatus(policy: KeyPolicy, conditions: ConditionInput[], fields: Partial<KeyPolicyStatus>): Promise<void> {
    const previous = policy.status ?? {};
    const next: KeyPolicyStatus = {
      ...fields,
      observedGeneration: policy.metadata.generation ?? 0,
      conditions: setConditionsWithKstatus(previous.conditions, conditions, policy.metadata.generation, this.now()),
    };
    if (isSubset(next, previous) && isSubset(previous.conditions ?? [], next.conditions ?? [])) return;
    await this.o.applier.applyStatus({ ...this.resourceRef(policy), kind: KEY_POLICY.kind }, next);
    if (this.written.alreadyWritten(policy.metadata.uid, next.conditions ?? [])) return;
    // One Event per cause: Ready and Degraded (and KeysReady) often turn for the same reason.
    const warned = new Set<string>();
    for (const c of next.conditions ?? []) {
      const old = previous.conditions?.find((p) => p.type === c.type);
      if (old && old.status === c.status && old.reason === c.reason) continue;
      const warn = (c.type === C.Degraded && c.status === 'True') || (c.type !== C.Degraded && c.type !== C.Rotating && c.status === 'False');
      if (!warn || warned.has(c.reason)) continue;
      warned.add(c.reason);
      this.o.events.record(this.regarding(policy), 'Warning', c.reason, `${c.type}: ${c.message}`);
    }
  }

  private regarding(policy: KeyPolicy): KubernetesObject {
    return { ...policy, apiVersion: API_VERSION, kind: KEY_POLICY.kind };
  }

  private identity(policy: KeyPolicy) {
    return {
      namespace: policy.metadata.namespace ?? '', name: policy.metadata.name ?? '', uid: policy.metadata.uid ?? '',
      statusHead: policy.status?.auditHead, segmentSize: policy.spec.audit?.segmentSize ?? 256,
    };
  }

  private ownerReference(policy: KeyPolicy): V1OwnerReference {
    return { apiVersion: API_VERSION, kind: KEY_POLICY.kind, name: policy.metadata.name ?? '', uid: policy.metadata.uid ?? '', controller: true, blockOwnerDeletion: true };
  }

  private resourceRef(policy: KeyPolicy) {
    return { group: GROUP, version: VERSION, plural: KEY_POLICY.plural, namespace: policy.metadata.namespace ?? '', name: policy.metadata.name ?? '' };
  }
}


/** Keys of a PKCS11 policy in the token that its stored index does not know (none for the Secret store). */
function hsmOrphans(sets: KeySets): readonly string[] {
  const backend = kekBackendOf(sets.kek);
  return backend instanceof Pkcs11KekBackend ? backend.orphanKids() : [];
}
