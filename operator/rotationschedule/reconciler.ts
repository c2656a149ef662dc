// Drives one RotationSchedule: when idle, decides whether a rotation starts (trigger.ts); during
// a rotation, moves each target along Pending -> Rotating -> Verifying -> Succeeded | Failed with
// real side effects (backup, re-issue, restart, TLS verification), advances canary steps, and
// finishes Completed, RolledBack or Failed. Each transition comes from state-machine.ts and is
// persisted before the side effect that depends on it, so a crash at any point resumes without
// repeating a harmful step. The schedule itself is read from the API server, not the cache, so a
// status just written is never acted on stale.
import { X509Certificate } from 'node:crypto';
import type { KubernetesObject, V1ConfigMap, V1EndpointSlice, V1Secret } from '@kubernetes/client-node';
import {
  API_VERSION, GROUP, ROTATION_SCHEDULE, Reasons, isReason, type Reason, RotationScheduleConditions as C, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY, VERSION,
  keyPolicyNamespaceOf, parseDuration, serviceNameOf, tlsSecretName, withRotationScheduleDefaults,
  type CARotationStatus, type EncryptedService, type IssuerRef, type KeyPolicy, type Rotatable, type RotationSchedule, type RotationScheduleSpec,
  type RotationScheduleStatus, type TargetProgress,
} from '../api/v1alpha1/index.js';
import type { CertManagerObject } from '../encryptedservice/reconciler.js';
import { resolveIssuer } from '../encryptedservice/policy.js';
import { ANNOTATION_DATA_KEY_ID, ANNOTATION_DATA_KEY_ROTATED_FOR } from '../encryptedservice/data-key-rotation.js';
import { envelopeStoreName } from '../encryptedservice/envelope-store.js';
import { splitPem } from '../encryptedservice/trust-bundle.js';
import { reactivationValue } from '../keypolicy/reactivation.js';
import type { Applier } from '../kube/apply.js';
import type { ConditionInput } from '../kube/conditions.js';
import { setConditionsWithKstatus } from '../kube/kstatus.js';
import { isSubset } from '../kube/subset.js';
import { describeApiError } from '../runtime/api-error.js';
import type { DependencyCheck } from '../runtime/dependency.js';
import type { EventRecorder, EventType } from '../runtime/events.js';
import { failpoint, Failpoints } from '../runtime/failpoints.js';
import type { Informer } from '../runtime/informer.js';
import { splitKey } from '../runtime/keys.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import type { Result } from '../runtime/workqueue.js';
import { bundleHas, fingerprint, issuedBy, newCaName, type CaRotation, type ResolvedIssuer } from './ca-rotation.js';
import { describeClaim, type Claim, type Holder, type RotationClaims } from './claims.js';
import { CronError } from './cron.js';
import { caRotationGrant, type Grant } from './grant.js';
import { endpointsOf } from './endpoints.js';
import { keyRotationValue, verifyDataKey, verifyServiceKeys, type KeyRotation } from './key-rotation.js';
import {
  buildRollbackSecret, isIssuing, issuanceFailedSince, secretSerial, type LeafCertificates,
} from './leaf-certificates.js';
import { selectTargets, targetsProblem } from './plan.js';
import {
  advanceStep, beginRotation, failedTargets, finishRotation, inFlight, inRotation, resume, stepOutcome, stepPhase,
  targetsOfStep, targetsToBegin, timestamp, updateTarget,
} from './state-machine.js';
import { serialOf, type ClientIdentity, type Endpoint, type EndpointVerdict, type TlsExpectation, verifyEndpoints } from './tls-verification.js';
import { evaluateTrigger, isPaused } from './trigger.js';
import { boundStatus } from './status-limits.js';
import { RestartRefused, restartValue, type WorkloadRestarter } from './workload-restart.js';

export interface RotationScheduleCaches {
  rotationSchedules: Informer<RotationSchedule>;
  encryptedServices: Informer<EncryptedService>;
  keyPolicies: Informer<KeyPolicy>;
  certificates: Informer<CertManagerObject>;
  secrets: Informer<V1Secret>;
  configMaps: Informer<V1ConfigMap>;
}

/** Direct reads: the schedule itself (fresh, see above) and the EndpointSlices of a Service. */
export interface RotationReader {
  schedule(namespace: string, name: string): Promise<RotationSchedule | undefined>;
  endpointSlices(namespace: string, serviceName: string): Promise<V1EndpointSlice[]>;
}

export type EndpointVerifier = (endpoints: readonly Endpoint[], expected: TlsExpectation, client: ClientIdentity) => Promise<EndpointVerdict[]>;

export interface RotationScheduleReconcilerOptions {
  caches: RotationScheduleCaches;
  reader: RotationReader;
  applier: Applier;
  leaves: LeafCertificates;
  ca: CaRotation;
  restarter: Pick<WorkloadRestarter, 'restart'>;
  /** One rotation at a time per target, issuer, KeyPolicy and trust bundle (claims.ts). */
  claims: Pick<RotationClaims, 'acquire' | 'releaseAll'>;
  keys: Pick<KeyRotation, 'requestKekRotation' | 'requestReactivation' | 'requestDataKeyRotation' | 'requestDataKeyRestore' | 'keySets' | 'secret'>;
  /** The operator's default issuer (LOCKSTEP_DEFAULT_ISSUER), for services that name none. */
  defaultIssuer?: IssuerRef;
  /** Where ClusterIssuers keep their CA Secrets. Default cert-manager. */
  clusterResourceNamespace?: string;
  /** The operator's own namespace: its schedules may rotate any ClusterIssuer (grant.ts). */
  operatorNamespace?: string;
  /** cert-manager's API: a schedule that rotates certificates or the CA waits for it, and says so. */
  certManager?: DependencyCheck<typeof Reasons.CertManagerMissing>;
  events: EventRecorder;
  metrics: OperatorMetrics;
  logger: Logger;
  verify?: EndpointVerifier;
  now?: () => Date;
  /** How often a running rotation looks again (issuance, verification). Default 1s. */
  pollMs?: number;
  /** How long the kubelet may take to deliver a changed Secret to every pod (config.secretPropagationMs). Default 2m. */
  secretPropagationMs?: number;
}

const CERTIFICATE_KINDS: readonly Rotatable[] = ['certificates', 'ca'];
const KEY_KINDS: readonly Rotatable[] = ['keyEncryptionKeys', 'dataKeys'];

/**
 * What a schedule rotates; other kinds in spec.rotate are reported, not ignored silently. Keys
 * rotate in a schedule of their own: a schedule with certificates or ca rotates only those.
 */
export function rotatedKinds(rotate: readonly Rotatable[]): Rotatable[] {
  const certificates = rotate.filter((k) => CERTIFICATE_KINDS.includes(k));
  return certificates.length > 0 ? certificates : rotate.filter((k) => KEY_KINDS.includes(k));
}

const isKeyRotation = (spec: RotationScheduleSpec): boolean => rotatedKinds(spec.rotate).some((k) => KEY_KINDS.includes(k));
const MAX_WAKE_MS = 3_600_000;
/** How often a due rotation that waits for another rotation's claim looks again. */
const CLAIM_RETRY_MS = 5_000;
/** A rotation whose reconciles keep failing ends Failed after its verification timeout, and never sooner than this. */
const MIN_ERROR_GRACE_MS = 60_000;

const cond = (type: string, ok: boolean, reason: Reason, message: string): ConditionInput => ({ type, status: ok ? 'True' : 'False', reason, message });

interface Step {
  status: RotationScheduleStatus;
  requeueAfter?: number;
  configError?: string;
  /** Why the schedule may not rotate what it names (grant.ts): reported, nothing is written. */
  denied?: { reason: Reason; message: string };
}

/** How often a schedule refused for want of a grant looks again (the grant is on a ClusterIssuer, which it does not watch). */
const GRANT_RETRY_MS = 60_000;
/** How often a schedule waiting for cert-manager's API looks again (its arrival is not a watch event here). */
const DEPENDENCY_RETRY_MS = 10_000;

export class RotationScheduleReconciler {
  private readonly o: RotationScheduleReconcilerOptions;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly verify: EndpointVerifier;
  private readonly pollMs: number;

  constructor(options: RotationScheduleReconcilerOptions) {
    this.o = options;
    this.log = options.logger.child('rotationschedule');
    this.now = options.now ?? (() => new Date());
    this.verify = options.verify ?? ((e, x, c) => verifyEndpoints(e, x, c));
    this.pollMs = options.pollMs ?? 1_000;
  }

  async reconcile(key: string): Promise<Result | void> {
    const { namespace, name } = splitKey(key);
    if (!namespace || !this.o.caches.rotationSchedules.getByKey(key)) return;
    const rs = await this.o.reader.schedule(namespace, name);
    if (!rs || rs.metadata.deletionTimestamp) return;
    const spec = withRotationScheduleDefaults(rs.spec);
    const written = { status: rs.status ?? {}, resourceVersion: rs.metadata.resourceVersion };
    const open = inRotation(written.status) ? this.holder(rs, written.status) : undefined;
    let step: Step;
    try {
      step = open
        ? await this.progress(rs, spec, structuredClone(written.status), written)
        : await this.idle(rs, spec, structuredClone(written.status));
    } catch (err) {
      const errored = this.afterError(rs, spec, written.status, describeApiError(err).message);
      await this.persist(rs, spec, written, errored);
      if (!open || inRotation(errored)) throw err;
      await this.o.claims.releaseAll(open);
      return { requeueAfter: 0 };
    }
    const next = { ...step.status };
    delete next.lastError;
    delete next.errorSince;
    await this.persist(rs, spec, written, next, step.configError, step.denied);
    // After the final status: a crash before this leaves claims whose rotation is closed, which
    // the next rotation to want them takes over.
    if (open && !inRotation(written.status)) await this.o.claims.releaseAll(open);
    return step.requeueAfter === undefined ? undefined : { requeueAfter: Math.max(10, Math.min(step.requeueAfter, MAX_WAKE_MS)) };
  }

  private holder(rs: RotationSchedule, status: RotationScheduleStatus): Holder {
    return { namespace: rs.metadata.namespace ?? '', schedule: rs.metadata.name ?? '', rotationId: status.rotationId ?? '' };
  }

  /**
   * A failed reconcile is retried with backoff; an open rotation whose reconciles keep failing
   * (a side effect the API refuses, a dependency gone) ends Failed once the failures outlast its
   * verification timeout, with the error as its reason, so rotate-now and emergency work again.
   */
  private afterError(rs: RotationSchedule, spec: RotationScheduleSpec, status: RotationScheduleStatus, message: string): RotationScheduleStatus {
    const now = this.now().getTime();
    if (!inRotation(status)) return { ...status, lastError: message };
    const since = status.errorSince ? Date.parse(status.errorSince) : now;
    const grace = Math.max(MIN_ERROR_GRACE_MS, parseDuration(spec.strategy?.verification?.timeout ?? '5m'));
    if (now - since <= grace) return { ...status, lastError: message, errorSince: timestamp(since) };
    const why = `stopped: reconciling failed for ${Math.round((now - since) / 1000)}s: ${message}`;
    const failed: RotationScheduleStatus = { ...status, failure: { reason: Reasons.ReconcileError, message: why } };
    const finished = this.finish(rs, failed, 'Failed', why, rotatedKinds(spec.rotate), now);
    delete finished.errorSince;
    return { ...finished, lastError: message };
  }

  // --- idle: should a rotation start?

  private async idle(rs: RotationSchedule, spec: RotationScheduleSpec, status: RotationScheduleStatus): Promise<Step> {
    const now = this.now().getTime();
    const namespace = rs.metadata.namespace ?? '';
    // Refused before a rotation starts, and said while idle, not only when a rotation is due:
    // without cert-manager's API nothing could be re-issued (a rotation would only fail), and a
    // schedule that may not rotate its issuer writes no claim, CA or bundle.
    const missing = rotatedKinds(spec.rotate).some((k) => CERTIFICATE_KINDS.includes(k)) ? this.o.certManager?.problem() : undefined;
    if (missing) return this.refused(rs, status, { reason: missing.reason, message: `certificates not rotated: ${missing.message}` }, DEPENDENCY_RETRY_MS);
    const grant = spec.rotate.includes('ca') ? await this.caGrant(rs, spec) : undefined;
    if (grant && !grant.allowed) return this.refused(rs, status, { reason: grant.reason, message: grant.message }, GRANT_RETRY_MS);
    const names = selectTargets(spec.targets, this.o.caches.encryptedServices.list(namespace));
    const expiries = names.map((n) => this.notAfter(namespace, n)).filter((t): t is number => t !== undefined);
    const strategy = spec.strategy ?? {};
    const steps = strategy.canarySteps ?? [];
    const margin = 2 * steps.length * parseDuration(strategy.verification?.timeout ?? '5m') + steps.length * parseDuration(strategy.pauseBetweenSteps ?? '0s');
    let decision: ReturnType<typeof evaluateTrigger>;
    try {
      decision = evaluateTrigger({
        spec, annotations: rs.metadata.annotations, status, generation: rs.metadata.generation ?? 0,
        createdAt: Date.parse(String(rs.metadata.creationTimestamp ?? new Date(now).toISOString())), now,
        ...(expiries.length ? { earliestExpiry: Math.min(...expiries) } : {}), expiryMargin: margin,
      });
    } catch (err) {
      if (!(err instanceof CronError) && !(err instanceof RangeError)) throw err;
      // Not retried: only a spec change can fix it, and that is a new event.
      return { status: { ...status, phase: status.phase ?? 'Idle' }, configError: `schedule: ${err.message}` };
    }
    if (!decision.start) {
      const next: RotationScheduleStatus = { ...status, phase: decision.paused ? 'Paused' : idlePhase(status) };
      if (decision.nextRotation !== undefined) next.nextRotation = timestamp(decision.nextRotation);
      else delete next.nextRotation;
      return { status: next, ...(decision.wakeAt !== undefined ? { requeueAfter: decision.wakeAt - now } : {}) };
    }
    let next = beginRotation(status, {
      trigger: decision.trigger, namespace, names, canarySteps: steps, now,
      ...(decision.rotateNow !== undefined ? { rotateNow: decision.rotateNow } : {}),
      ...(decision.trigger === 'Emergency' ? { generation: rs.metadata.generation ?? 0 } : {}),
    });
    const claimed = await this.o.claims.acquire(this.claimsFor(rs, spec, names), this.holder(rs, next));
    if (!claimed.ok) {
      const by = claimed.heldBy;
      const waiting = `${decision.message}: waiting for ${describeClaim(claimed.claim)}, which rotation ${by.rotationId} of RotationSchedule ${by.namespace}/${by.schedule} is rotating`;
      if (waiting !== status.waiting) this.event(rs, 'Normal', Reasons.RotationWaiting, waiting);
      return { status: { ...status, phase: idlePhase(status), waiting }, requeueAfter: CLAIM_RETRY_MS };
    }
    delete next.waiting;
    this.event(rs, 'Normal', Reasons.RotationInProgress, `rotation ${next.rotationId} started: ${decision.message}; ${names.length} targets`);
    this.log.info('rotation started', { namespace, name: rs.metadata.name, rotationId: next.rotationId, trigger: decision.trigger, targets: names.length });
    if (spec.rotate.includes('ca')) next.ca = { stage: 'AddRoot' };
    else delete next.ca;
    if (names.length === 0) {
      next = finishRotation(next, { outcome: 'Completed', now, message: 'no EncryptedService matched spec.targets', rotated: [] });
    }
    return { status: next, requeueAfter: 0 };
  }

  /** Idle and not allowed to start: the conditions say why, with one Event per new reason. */
  private refused(rs: RotationSchedule, status: RotationScheduleStatus, denied: NonNullable<Step['denied']>, retryMs: number): Step {
    if (status.conditions?.find((c) => c.type === C.Ready)?.message !== denied.message) this.event(rs, 'Warning', denied.reason, denied.message);
    return { status: { ...status, phase: idlePhase(status) }, denied, requeueAfter: retryMs };
  }

  /** What a rotation of `names` changes, and so claims: targets; the issuer and bundles (ca); KeyPolicies (KEKs). */
  private claimsFor(rs: RotationSchedule, spec: RotationScheduleSpec, names: readonly string[]): Claim[] {
    const namespace = rs.metadata.namespace ?? '';
    const claims: Claim[] = names.map((name) => ({ kind: 'service', namespace, name }));
    if (spec.rotate.includes('ca')) {
      let issuer: ResolvedIssuer | undefined;
      try {
        issuer = this.caIssuer(rs, spec);
      } catch {
        // No issuer to rotate: the AddRoot stage reports it.
      }
      if (issuer) {
        claims.push({ kind: issuer.kind === 'ClusterIssuer' ? 'clusterissuer' : 'issuer', namespace: issuer.secretNamespace, name: issuer.name });
        for (const ns of this.affected(rs, issuer).namespaces) claims.push({ kind: 'bundle', namespace: ns, name: '' });
      }
    }
    if (rotatedKinds(spec.rotate).includes('keyEncryptionKeys')) {
      for (const name of names) {
        const policy = this.policyOf(namespace, name);
        // A policy in another namespace is never asked to rotate (beginKeys refuses the target).
        if (policy && policy.namespace === namespace) claims.push({ kind: 'keypolicy', namespace: policy.namespace, name: policy.name });
      }
    }
    return claims;
  }

  // --- a rotation in progress

  private async progress(rs: RotationSchedule, spec: RotationScheduleSpec, status: RotationScheduleStatus, written: { status: RotationScheduleStatus }): Promise<Step> {
    const now = this.now().getTime();
    const strategy = spec.strategy ?? {};
    // Emergency behaviour (no pauses between steps, shortest overlap) holds for any rotation that
    // runs while spec.emergency is set, however it was triggered.
    const emergency = status.trigger === 'Emergency' || spec.emergency === true;
    const paused = isPaused(spec, rs.metadata.annotations) && !emergency;
    if (status.phase === 'Paused') {
      if (paused) return { status };
      status = resume(status, now);
      this.event(rs, 'Normal', Reasons.RotationInProgress, `rotation ${status.rotationId} resumed at step ${(status.currentStep ?? 0) + 1}`);
    }
    // Pausing takes effect between steps: before any target of the current step has begun.
    if (paused && inFlight(status).length === 0 && failedTargets(status).length === 0 && targetsOfStep(status).every((t) => t.phase === 'Pending')) {
      return { status: { ...status, phase: 'Paused' } };
    }
    const timeoutMs = parseDuration(strategy.verification?.timeout ?? '5m');
    const ca = spec.rotate.includes('ca') ? status.ca : undefined;
    if (ca && ca.stage !== 'ReissueLeaves' && ca.stage !== 'VerifyLeaves') return this.caStage(rs, spec, status, now, emergency, timeoutMs);

    const keys = isKeyRotation(spec);
    for (const target of inFlight(status)) {
      status = keys
        ? await this.advanceKeyTarget(rs, spec, status, target, now, timeoutMs)
        : await this.advanceTarget(rs, spec, status, target, now, timeoutMs, (s) => this.persist(rs, spec, written, s));
    }

    const begins = targetsToBegin(status, strategy.maxInFlight ?? 5, now);
    if (begins.length > 0) {
      const triggers: TargetProgress[] = [];
      for (const target of begins) {
        const begun = keys ? await this.beginKeys(spec, status, target, now) : await this.begin(rs, status, target, now);
        status = begun.status;
        if (begun.trigger) triggers.push(begun.trigger);
      }
      // Persisted before triggering: after a crash the targets are Rotating with their previous
      // revision recorded, never Pending again (which would back up the new revision).
      await this.persist(rs, spec, written, status);
      for (const target of triggers) {
        if (keys) {
          await this.requestKeyRotation(spec, status, target);
          continue;
        }
        await this.o.leaves.triggerIssuance(target.namespace, target.name, target.previousRevision ?? '',
          `re-issuance triggered by RotationSchedule ${rs.metadata.name} (rotation ${status.rotationId})`);
      }
    }

    const rotated = rotatedKinds(spec.rotate);
    switch (stepOutcome(status)) {
      case 'running': {
        status = { ...status, phase: stepPhase(status) };
        const startsAt = status.stepStartedAt ? Date.parse(status.stepStartedAt) : now;
        return { status, requeueAfter: startsAt > now ? startsAt - now : this.pollMs };
      }
      case 'next': {
        const pause = emergency ? 0 : parseDuration(strategy.pauseBetweenSteps ?? '0s');
        const verified = status.currentStep ?? 0;
        status = advanceStep(status, { canarySteps: strategy.canarySteps ?? [], pauseBetweenSteps: pause, paused }, now);
        this.event(rs, 'Normal', Reasons.RotationInProgress,
          `rotation ${status.rotationId}: step ${verified + 1} verified (${targetsOfStep(status, verified).map((t) => t.name).join(', ')})${paused ? '; paused before the next step' : ''}`);
        return { status, ...(paused ? {} : { requeueAfter: pause || this.pollMs }) };
      }
      case 'complete': {
        if (ca) {
          const overlapMs = emergency ? 0 : parseDuration(spec.ca?.overlap ?? '1h');
          const overlapEndsAt = timestamp(now + overlapMs);
          status = { ...status, phase: 'Verifying', ca: { ...ca, stage: 'Overlap', overlapEndsAt, message: `every target serves a certificate from the new root; both roots stay trusted until ${overlapEndsAt}` } };
          this.event(rs, 'Normal', Reasons.RotationInProgress, `rotation ${status.rotationId}: leaves re-issued from the new CA; overlap until ${overlapEndsAt}`);
          return { status, requeueAfter: overlapMs || this.pollMs };
        }
        const message = `rotated and verified ${(status.targets ?? []).length} targets`;
        status = this.finish(rs, status, 'Completed', message, rotated, now);
        return { status, requeueAfter: 0 };
      }
      case 'failed': {
        const notes: string[] = [];
        if (ca && strategy.autoRollback && ca.previousSecretName) {
          // CA rollback: the issuer signs with the old CA again; the new root stays published while
          // leaves it issued are in use, and its key is deleted.
          const issuer = this.caIssuer(rs, spec);
          if (await this.o.ca.issuerExists(issuer)) await this.o.ca.switchIssuer(issuer, ca.previousSecretName);
          await this.o.ca.discardNewCa(issuer, status.rotationId ?? '', await this.newRoot(rs, spec, status).catch(() => undefined), undefined);
          status = { ...status, ca: { ...ca, message: `rolled back: the issuer signs with ${ca.previousSecretName} again; the new CA's key is deleted; both roots stay in the bundles while leaves from the new root are in use` } };
        }
        let unrestored: string[] = [];
        if (strategy.autoRollback) {
          if (keys) status = await this.rollbackKeys(rs, spec, status, now);
          else ({ status, unrestored } = await this.rollback(rs, status, now));
        }
        if (unrestored.length) notes.push(`not restored: ${unrestored.join(', ')}`);
        const failed = (status.targets ?? []).filter((t) => t.phase === 'Failed' || t.phase === 'RolledBack');
        const outcome = strategy.autoRollback && unrestored.length === 0 ? 'RolledBack' : 'Failed';
        const message = `${outcome === 'RolledBack' ? 'rolled back' : strategy.autoRollback ? 'rollback incomplete' : 'failed'}: ${failed.map((t) => `${t.name}: ${t.message ?? 'verification failed'}`).join('; ')}${notes.length ? `; ${notes.join('; ')}` : ''}`;
        status = this.finish(rs, status, outcome, message, rotated, now);
        return { status, requeueAfter: 0 };
      }
    }
  }

  /** Pending -> Rotating: keep the current revision, record it. The caller persists, then triggers. */
  private async begin(rs: RotationSchedule, status: RotationScheduleStatus, target: TargetProgress, now: number) {
    const namespace = target.namespace;
    const es = this.o.caches.encryptedServices.get(namespace, target.name);
    const tls = this.o.caches.secrets.get(namespace, tlsSecretName(target.name));
    const serial = secretSerial(tls);
    if (!es || !tls || !serial) {
      const message = !es ? 'EncryptedService no longer exists' : 'has no issued certificate to rotate yet';
      return { status: this.fail(status, target, 'TargetNotReady', message, now) };
    }
    const rotationId = status.rotationId ?? '';
    const owner = { apiVersion: API_VERSION, kind: ROTATION_SCHEDULE.kind, name: rs.metadata.name ?? '', uid: rs.metadata.uid ?? '', controller: true, blockOwnerDeletion: true };
    const kept = await this.o.leaves.backup(namespace, target.name, rotationId,
      () => buildRollbackSecret(namespace, target.name, rs.metadata.name ?? '', rotationId, tls, owner));
    const next = updateTarget(status, target.name, { phase: 'Rotating', previousRevision: kept, message: 'waiting for cert-manager to issue the new certificate' }, now);
    return { status: next, trigger: { ...target, previousRevision: kept } };
  }

  private async advanceTarget(
    rs: RotationSchedule, spec: RotationScheduleSpec, status: RotationScheduleStatus, target: TargetProgress, now: number, timeoutMs: number,
    save: (status: RotationScheduleStatus) => Promise<void>,
  ): Promise<RotationScheduleStatus> {
    const namespace = target.namespace;
    const since = target.updatedAt ? Date.parse(target.updatedAt) : now;
    const timedOut = now - since > timeoutMs;
    const timeout = spec.strategy?.verification?.timeout ?? '5m';
    const es = this.o.caches.encryptedServices.get(namespace, target.name);
    const cert = this.o.caches.certificates.get(namespace, target.name);
    if (!es || !cert) {
      // Deleted mid-rotation: nothing left to wait for; an issuance asked for is withdrawn.
      if (target.phase === 'Rotating') await this.o.leaves.cancelIssuance(namespace, target.name);
      return this.fail(status, target, 'TargetGone', `${!es ? 'EncryptedService' : 'Certificate'} ${namespace}/${target.name} was deleted during the rotation`, now);
    }
    if (target.phase === 'Rotating') {
      const serial = secretSerial(this.o.caches.secrets.get(namespace, tlsSecretName(target.name)));
      if (serial && serial !== target.previousRevision && !isIssuing(cert)) {
        const restart = es.spec.workload.restart;
        let restartedAt = target.restartedAt;
        if (restart && restart.hotReload === false) {
          if (!restartedAt) {
            // Persisted before the restart: after a crash the same value is written again, which
            // changes nothing, so the workload restarts once per rotation.
            restartedAt = restartValue(new Date(now));
            status = updateTarget(status, target.name, { restartedAt, message: `issued ${serial}; restarting ${restart.kind} ${restart.name}` }, now);
            await save(status);
          }
          try {
            const outcome = await this.o.restarter.restart(restart, namespace, restartedAt);
            failpoint(Failpoints.AfterRestart);
            if (outcome.result === 'restarted') {
              this.event(rs, 'Normal', Reasons.RotationInProgress, `restarted ${restart.kind} ${restart.name} (${target.name} cannot hot-reload)${outcome.note ? `; ${outcome.note}` : ''}`);
            }
          } catch (err) {
            if (!(err instanceof RestartRefused)) throw err;
            return this.fail(status, target, 'RestartFailed', err.message, now);
          }
        }
        return updateTarget(status, target.name, {
          phase: 'Verifying', newRevision: serial, ...(restartedAt ? { restartedAt } : {}),
          message: `issued ${serial}; verifying`,
        }, now);
      }
      // cert-manager backs off for an hour or more after a failed issuance: asking again now
      // would only hammer it, so the target fails with cert-manager's reason.
      const failure = issuanceFailedSince(cert, since);
      if (failure) return this.fail(status, target, 'IssuanceFailed', `cert-manager could not issue the new certificate: ${failure}`, now);
      if (timedOut) {
        await this.o.leaves.cancelIssuance(namespace, target.name);
        const why = cert.status?.conditions?.find((c) => c.type === 'Ready')?.message;
        return this.fail(status, target, 'IssuanceTimeout', `not re-issued within ${timeout}${why ? `: ${why}` : ''}; issuance withdrawn`, now);
      }
      // Triggering again is safe: it writes only when cert-manager is not issuing and the Secret
      // still holds the previous revision (a crash between persisting and triggering).
      if (!isIssuing(cert) && serial === target.previousRevision) {
        await this.o.leaves.triggerIssuance(namespace, target.name, target.previousRevision ?? '',
          `re-issuance triggered by RotationSchedule ${rs.metadata.name} (rotation ${status.rotationId})`);
      }
      return status;
    }
    // Verifying
    if (!spec.strategy?.verification?.tlsHandshake) {
      return updateTarget(status, target.name, { phase: 'Succeeded', message: `issued ${target.newRevision}; TLS verification disabled` }, now);
    }
    const newRoot = spec.rotate.includes('ca') && status.ca?.secretName ? await this.newRoot(rs, spec, status) : undefined;
    const result = await this.verifyTarget(target, newRoot ? { issuerRoot: newRoot } : {});
    if (result.problems.length === 0) {
      return updateTarget(status, target.name, { phase: 'Succeeded', message: `serves ${target.newRevision} on ${result.endpoints} endpoints; chains to the trust bundle; meets the TLS policy` }, now);
    }
    if (timedOut) return this.fail(status, target, Reasons.VerificationFailed, `not verified within ${timeout}: ${result.problems.join('; ')}`, now);
    return status;
  }

  // --- key rotation: the KEK once per KeyPolicy (keyEncryptionKeys), a fresh DEK per target (dataKeys)

  private policyOf(namespace: string, name: string): { namespace: string; name: string } | undefined {
    const es = this.o.caches.encryptedServices.get(namespace, name);
    return es ? { namespace: keyPolicyNamespaceOf(es), name: es.spec.keyPolicyRef.name } : undefined;
  }

  /** Whether the target holds a data key to rotate (only services with envelope secrets have one). */
  private hasDataKey(namespace: string, name: string): boolean {
    return (this.o.caches.encryptedServices.get(namespace, name)?.spec.secrets?.envelope ?? []).length > 0;
  }

  /**
   * Pending -> Rotating: record what is active before the rotation — the KEK (keyEncryptionKeys),
   * else the data key id. A policy shared by several targets rotates once: a target whose policy
   * another target already began keeps that one's record (the KEK active now may already be the
   * new one). The caller persists, then asks.
   */
  private async beginKeys(spec: RotationScheduleSpec, status: RotationScheduleStatus, target: TargetProgress, now: number) {
    const policy = this.policyOf(target.namespace, target.name);
    if (!policy) return { status: this.fail(status, target, 'TargetNotReady', 'EncryptedService no longer exists', now) };
    if (spec.rotate.includes('keyEncryptionKeys') && policy.namespace !== target.namespace) {
      // The KEK is the policy's, shared by every namespace it allows: only its own namespace decides when it rotates.
      return { status: this.fail(status, target, Reasons.KeyPolicyInOtherNamespace,
        `its KeyPolicy ${policy.namespace}/${policy.name} is in another namespace: a RotationSchedule in ${target.namespace} may not rotate its KEK; rotate it from a RotationSchedule in ${policy.namespace} or by its rotation period`, now) };
    }
    let previous: string | undefined;
    let what: string;
    if (spec.rotate.includes('keyEncryptionKeys')) {
      const sibling = (status.targets ?? []).find((t) => t.previousRevision && t.name !== target.name && samePolicy(this.policyOf(t.namespace, t.name), policy));
      previous = sibling?.previousRevision ?? (await this.o.keys.keySets(policy.namespace, policy.name))?.sets.kek.keys.find((k) => k.state === 'active')?.kid;
      if (!previous) return { status: this.fail(status, target, 'TargetNotReady', `KeyPolicy ${policy.namespace}/${policy.name} has no keys yet`, now) };
      what = `KeyPolicy ${policy.namespace}/${policy.name} to rotate its KEK (from ${previous})`;
    } else if (this.hasDataKey(target.namespace, target.name)) {
      const store = await this.o.keys.secret(target.namespace, envelopeStoreName(target.name));
      previous = store?.metadata?.annotations?.[ANNOTATION_DATA_KEY_ID];
      if (!previous) return { status: this.fail(status, target, 'TargetNotReady', `has no data key yet (envelope store ${envelopeStoreName(target.name)})`, now) };
      what = `a new data key (replacing ${previous})`;
    } else {
      return { status: updateTarget(status, target.name, { phase: 'Succeeded', message: 'no envelope secrets: no data key to rotate' }, now) };
    }
    const next = updateTarget(status, target.name, { phase: 'Rotating', previousRevision: previous, message: `waiting for ${what}` }, now);
    return { status: next, trigger: { ...target, previousRevision: previous } };
  }

  /** Idempotent: the values derive from the rotation id, and the KeyPolicy and service act once per value. */
  private async requestKeyRotation(spec: RotationScheduleSpec, status: RotationScheduleStatus, target: TargetProgress, what: { kek: boolean; dek: boolean } = { kek: true, dek: true }): Promise<void> {
    const value = keyRotationValue(status.rotationId ?? '');
    const policy = this.policyOf(target.namespace, target.name);
    if (what.kek && policy && policy.namespace === target.namespace && spec.rotate.includes('keyEncryptionKeys')) await this.o.keys.requestKekRotation(policy.namespace, policy.name, value);
    if (what.dek && spec.rotate.includes('dataKeys') && this.hasDataKey(target.namespace, target.name)) {
      await this.o.keys.requestDataKeyRotation(target.namespace, target.name, value);
    }
  }

  private async advanceKeyTarget(
    rs: RotationSchedule, spec: RotationScheduleSpec, status: RotationScheduleStatus, target: TargetProgress, now: number, timeoutMs: number,
  ): Promise<RotationScheduleStatus> {
    const since = target.updatedAt ? Date.parse(target.updatedAt) : now;
    const timedOut = now - since > timeoutMs;
    const timeout = spec.strategy?.verification?.timeout ?? '5m';
    const value = keyRotationValue(status.rotationId ?? '');
    const ref = this.policyOf(target.namespace, target.name);
    const es = this.o.caches.encryptedServices.get(target.namespace, target.name);
    if (!ref || !es) return this.fail(status, target, 'TargetNotReady', 'EncryptedService no longer exists', now);
    const kek = spec.rotate.includes('keyEncryptionKeys');
    const dek = spec.rotate.includes('dataKeys') && this.hasDataKey(target.namespace, target.name);
    const keys = await this.o.keys.keySets(ref.namespace, ref.name);
    const active = keys?.sets.kek.keys.find((k) => k.state === 'active')?.kid;
    const store = dek || (es.spec.secrets?.envelope ?? []).length > 0 ? await this.o.keys.secret(target.namespace, envelopeStoreName(target.name)) : undefined;
    const dataKeyId = store?.metadata?.annotations?.[ANNOTATION_DATA_KEY_ID];
    if (target.phase === 'Rotating') {
      const waiting: string[] = [];
      let kekRotated = true;
      if (kek) {
        const policy = this.o.caches.keyPolicies.get(ref.namespace, ref.name);
        const rewrapping = policy?.status?.conditions?.find((c) => c.type === 'Rotating');
        kekRotated = active !== undefined && active !== target.previousRevision;
        // Rotating=False in the same status write as the new activeKid: every data key is re-wrapped.
        if (!kekRotated) waiting.push(`KeyPolicy ${ref.namespace}/${ref.name} did not rotate its KEK`);
        else if (policy?.status?.activeKid !== active || rewrapping?.status !== 'False') {
          waiting.push(`data keys not re-wrapped under ${active}: ${rewrapping?.message ?? 'KeyPolicy status not updated'}`);
        }
      }
      const dekRotated = !dek || store?.metadata?.annotations?.[ANNOTATION_DATA_KEY_ROTATED_FOR] === value;
      if (!dekRotated) {
        const secrets = es.status?.conditions?.find((c) => c.type === 'SecretsReady');
        waiting.push(`data key of ${target.name} not replaced${secrets?.status === 'False' ? `: ${secrets.message ?? secrets.reason ?? ''}` : ''}`);
      }
      if (waiting.length === 0) {
        const newRevision = kek ? active : dataKeyId;
        const done = [...(kek ? [`KEK rotated to ${active}; every data key re-wrapped`] : []), ...(dek ? [`data key replaced by ${dataKeyId}`] : [])];
        return updateTarget(status, target.name, { phase: 'Verifying', ...(newRevision ? { newRevision } : {}), message: `${done.join('; ')}; verifying` }, now);
      }
      if (timedOut) return this.fail(status, target, 'KeyRotationTimeout', `not rotated within ${timeout}: ${waiting.join('; ')}`, now);
      // Asking again is safe (same values): covers a crash between persisting and asking.
      await this.requestKeyRotation(spec, status, target, { kek: !kekRotated, dek: !dekRotated });
      return status;
    }
    // Verifying
    if (spec.strategy?.verification?.decrypt === false) {
      return updateTarget(status, target.name, { phase: 'Succeeded', message: `rotated to ${target.newRevision}; decrypt verification disabled` }, now);
    }
    const problems: string[] = [];
    if (!keys || !active) problems.push(`key Secret of KeyPolicy ${ref.namespace}/${ref.name} is gone`);
    else {
      problems.push(...await verifyServiceKeys({
        sets: keys.sets, expectedKid: kek ? target.newRevision ?? '' : active, namespace: target.namespace, name: target.name,
        ...(store ? { store } : {}), sealed: es.spec.secrets?.sealed ?? [],
      }));
      if (dek) {
        const appSecrets = new Map<string, V1Secret | undefined>();
        for (const declared of es.spec.secrets?.envelope ?? []) appSecrets.set(declared.name, await this.o.keys.secret(target.namespace, declared.name));
        problems.push(...await verifyDataKey({ sets: keys.sets, namespace: target.namespace, name: target.name, store, value, appSecrets }));
      }
    }
    if (problems.length === 0) {
      const checked = [
        ...(kek ? [`data under ${target.newRevision} and under the previous keys opens; a probe under the new keys opens`] : []),
        ...(dek ? [`every envelope is under data key ${dataKeyId} and matches its Secret`] : []),
      ];
      return updateTarget(status, target.name, { phase: 'Succeeded', message: checked.join('; ') }, now);
    }
    if (timedOut) return this.fail(status, target, Reasons.VerificationFailed, `not verified within ${timeout}: ${problems.join('; ')}`, now);
    this.log.debug('key verification pending', { namespace: rs.metadata.namespace, name: rs.metadata.name, target: target.name, problems: problems.length });
    return status;
  }

  /**
   * Key rollback for every failed target: the KEK active before the rotation becomes active again
   * on its policy (every service on that policy follows: the KEK is the policy's; data keys are
   * re-wrapped under it in the background), and its own data key rotation is undone (or, not made
   * yet, cancelled). Nothing is deleted, so whatever was made under the new keys meanwhile still
   * opens. Targets that verified keep their new data key.
   */
  private async rollbackKeys(rs: RotationSchedule, spec: RotationScheduleSpec, status: RotationScheduleStatus, now: number): Promise<RotationScheduleStatus> {
    const done = new Set<string>();
    const value = keyRotationValue(status.rotationId ?? '');
    for (const target of failedTargets(status)) {
      const policy = this.policyOf(target.namespace, target.name);
      const previous = target.previousRevision;
      const what: string[] = [];
      if (policy && previous && policy.namespace === target.namespace && spec.rotate.includes('keyEncryptionKeys')) {
        const key = `${policy.namespace}/${policy.name}`;
        if (!done.has(key)) {
          await this.o.keys.requestReactivation(policy.namespace, policy.name, reactivationValue(previous, status.rotationId ?? ''));
          done.add(key);
          this.event(rs, 'Warning', Reasons.RolledBack, `KeyPolicy ${key}: KEK ${previous} made active again`);
        }
        what.push(`KEK ${previous} of KeyPolicy ${key} made active again; data keys re-wrap under it`);
      }
      if (previous && spec.rotate.includes('dataKeys') && this.hasDataKey(target.namespace, target.name)) {
        await this.o.keys.requestDataKeyRestore(target.namespace, target.name, value);
        this.event(rs, 'Warning', Reasons.RolledBack, `${target.namespace}/${target.name}: data key rotation undone`);
        what.push('data key rotation undone (the previous data key is restored, or the rotation not made)');
      }
      const message = `${target.message ?? 'failed'}; ${what.length ? what.join('; ') : 'nothing was rotated for it'}`;
      status = updateTarget(status, target.name, { phase: 'RolledBack', message: message.slice(0, 1024) }, now);
    }
    return status;
  }

  private fail(status: RotationScheduleStatus, target: TargetProgress, reason: Reason, message: string, now: number): RotationScheduleStatus {
    const next = updateTarget(status, target.name, { phase: 'Failed', message }, now);
    // The first failure is the one that stopped the rotation.
    if (!next.failure) next.failure = { reason, target: `${target.namespace}/${target.name}`, message };
    return next;
  }

  private async verifyTarget(target: Pick<TargetProgress, 'namespace' | 'name' | 'newRevision'>, options: { issuerRoot?: string; client?: ClientIdentity; anySerial?: boolean } = {}): Promise<{ problems: string[]; endpoints: number }> {
    const namespace = target.namespace;
    const es = this.o.caches.encryptedServices.get(namespace, target.name);
    if (!es) return { problems: ['EncryptedService no longer exists'], endpoints: 0 };
    const service = serviceNameOf(es);
    const endpoints = endpointsOf(await this.o.reader.endpointSlices(namespace, service), es.spec.ports);
    if (endpoints.length === 0) return { problems: [`Service ${service} has no ready endpoints on its TLS ports to verify`], endpoints: 0 };
    const tls = this.o.caches.secrets.get(namespace, tlsSecretName(target.name));
    const cert = tls?.data?.['tls.crt'];
    const key = tls?.data?.['tls.key'];
    if (!cert || !key) return { problems: [`Secret ${tlsSecretName(target.name)} holds no certificate and key`], endpoints: endpoints.length };
    const bundle = this.o.caches.configMaps.get(namespace, TRUST_BUNDLE_CONFIGMAP)?.data?.[TRUST_BUNDLE_KEY];
    const policy = this.o.caches.keyPolicies.get(keyPolicyNamespaceOf(es), es.spec.keyPolicyRef.name);
    const expected: TlsExpectation = {
      ...(options.anySerial ? {} : { serial: target.newRevision ?? '' }),
      ...(options.issuerRoot ? { issuerRoot: options.issuerRoot } : {}),
      roots: splitPem(bundle),
      servername: `${service}.${namespace}.svc`,
      policy: policy?.spec.tls ?? {},
    };
    // The service's own new certificate (it has client auth usage) is the client identity: a
    // server that requires mTLS from its peers accepts it exactly when it trusts the new chain.
    const client = options.client ?? { cert: Buffer.from(cert, 'base64').toString('utf8'), key: Buffer.from(key, 'base64').toString('utf8') };
    const verdicts = await this.verify(endpoints, expected, client);
    const problems = verdicts.filter((v) => v.problems.length > 0).map((v) => `${v.endpoint.address}:${v.endpoint.port} ${v.problems.join(', ')}`);
    return { problems, endpoints: endpoints.length };
  }

  // --- CA rotation stages around the leaf steps: AddRoot -> VerifyTrust -> (leaves) -> Overlap -> DropOldRoot -> Done

  /** The issuer being rotated: spec.ca.issuerRef, else the issuer of the first target. */
  private caIssuer(rs: RotationSchedule, spec: RotationScheduleSpec): ResolvedIssuer {
    const namespace = rs.metadata.namespace ?? '';
    const clusterNs = this.o.clusterResourceNamespace ?? 'cert-manager';
    const withNs = (ref: Required<IssuerRef>): ResolvedIssuer => ({ ...ref, secretNamespace: ref.kind === 'ClusterIssuer' ? clusterNs : namespace });
    const explicit = spec.ca?.issuerRef;
    if (explicit) return withNs({ name: explicit.name, kind: explicit.kind ?? 'Issuer', group: explicit.group ?? 'cert-manager.io' });
    for (const name of selectTargets(spec.targets, this.o.caches.encryptedServices.list(namespace))) {
      const es = this.o.caches.encryptedServices.get(namespace, name);
      const policy = es ? this.o.caches.keyPolicies.get(keyPolicyNamespaceOf(es), es.spec.keyPolicyRef.name) : undefined;
      if (!es || !policy) continue;
      const resolved = resolveIssuer(es, policy, this.o.defaultIssuer);
      if ('issuer' in resolved) return withNs(resolved.issuer);
    }
    throw new Error('no issuer to rotate: set spec.ca.issuerRef (no target resolves an issuer)');
  }

  /** Whether this schedule may rotate its issuer's CA; undefined when there is no issuer to ask about (AddRoot reports that). */
  private async caGrant(rs: RotationSchedule, spec: RotationScheduleSpec): Promise<Grant | undefined> {
    let issuer: ResolvedIssuer;
    try {
      issuer = this.caIssuer(rs, spec);
    } catch {
      return undefined;
    }
    const metadata = issuer.kind === 'ClusterIssuer' ? await this.o.ca.issuerMetadata(issuer) : undefined;
    return caRotationGrant({ scheduleNamespace: rs.metadata.namespace ?? '', operatorNamespace: this.o.operatorNamespace ?? '', issuer, metadata });
  }

  /** Namespaces whose bundles must carry the new root: every namespace with a service on the issuer. */
  private affected(rs: RotationSchedule, issuer: ResolvedIssuer): { namespaces: string[]; services: EncryptedService[] } {
    const services = this.o.caches.encryptedServices.list().filter((es) => {
      const policy = this.o.caches.keyPolicies.get(keyPolicyNamespaceOf(es), es.spec.keyPolicyRef.name);
      if (!policy || es.metadata.deletionTimestamp) return false;
      const resolved = resolveIssuer(es, policy, this.o.defaultIssuer);
      if (!('issuer' in resolved) || resolved.issuer.name !== issuer.name || resolved.issuer.kind !== issuer.kind) return false;
      return issuer.kind === 'ClusterIssuer' || es.metadata.namespace === issuer.secretNamespace;
    });
    const namespaces = [...new Set([rs.metadata.namespace ?? '', ...services.map((s) => s.metadata.namespace ?? '')])].sort();
    return { namespaces, services };
  }

  private async newRoot(rs: RotationSchedule, spec: RotationScheduleSpec, status: RotationScheduleStatus): Promise<string | undefined> {
    if (!status.ca?.secretName) return undefined;
    return this.o.ca.caCertificate(this.caIssuer(rs, spec).secretNamespace, status.ca.secretName);
  }

  private async caStage(rs: RotationSchedule, spec: RotationScheduleSpec, status: RotationScheduleStatus, now: number, emergency: boolean, timeoutMs: number): Promise<Step> {
    const issuer = this.caIssuer(rs, spec);
    const rotationId = status.rotationId ?? '';
    const ca: CARotationStatus = { ...status.ca };
    const { namespaces, services } = this.affected(rs, issuer);
    const moveTo = (stage: CARotationStatus['stage'], message: string): Step => {
      this.event(rs, 'Normal', Reasons.RotationInProgress, `rotation ${rotationId}: CA ${stage}: ${message}`);
      return { status: { ...status, phase: 'Verifying', stepStartedAt: timestamp(now), ca: { ...ca, stage, message } }, requeueAfter: 0 };
    };
    const wait = (message: string, ms = this.pollMs): Step => ({ status: { ...status, phase: 'Verifying', ca: { ...ca, message } }, requeueAfter: ms });
    /** Ends a rotation that re-issued no leaf yet: the new CA's key is deleted and its root withdrawn. */
    const stopBeforeLeaves = async (outcome: 'RolledBack' | 'Failed', reason: string, message: string, caMessage: string): Promise<Step> => {
      const newRoot = ca.secretName ? await this.o.ca.caCertificate(issuer.secretNamespace, ca.secretName) : undefined;
      await this.o.ca.discardNewCa(issuer, rotationId, newRoot, { namespaces });
      const failed: RotationScheduleStatus = {
        ...status, ca: { ...ca, message: caMessage },
        failure: { reason, target: `${rs.metadata.namespace}/${(status.targets ?? [])[0]?.name ?? ''}`, message },
      };
      return { status: this.finish(rs, failed, outcome, message, rotatedKinds(spec.rotate), now), requeueAfter: 0 };
    };

    if (ca.stage !== 'Done' && !(await this.o.ca.issuerExists(issuer))) {
      const message = `${issuer.kind} ${issuer.name} was deleted during the rotation`;
      if (ca.stage === 'AddRoot' || ca.stage === 'VerifyTrust') return stopBeforeLeaves('Failed', 'IssuerNotFound', message, 'stopped: the issuer is gone; the new CA is discarded');
      const failed: RotationScheduleStatus = { ...status, ca: { ...ca, message: 'stopped: the issuer is gone' }, failure: { reason: 'IssuerNotFound', message } };
      return { status: this.finish(rs, failed, 'Failed', message, rotatedKinds(spec.rotate), now), requeueAfter: 0 };
    }

    switch (ca.stage) {
      case 'AddRoot': {
        // Checked again before the first write: the grant may have gone since the rotation began.
        const grant = await this.caGrant(rs, spec);
        if (grant && !grant.allowed) {
          const failed: RotationScheduleStatus = { ...status, ca: { ...ca, message: 'not started' }, failure: { reason: grant.reason, message: grant.message } };
          return { status: this.finish(rs, failed, 'Failed', grant.message, [], now), requeueAfter: 0 };
        }
        if (!ca.previousSecretName) {
          const current = await this.o.ca.issuerSecretName(issuer);
          const oldRoot = await this.o.ca.caCertificate(issuer.secretNamespace, current);
          if (!oldRoot) throw new Error(`CA Secret ${issuer.secretNamespace}/${current} holds no certificate`);
          ca.previousSecretName = current;
          ca.oldRootSerial = serialOf(oldRoot);
        }
        const newRoot = await this.o.ca.ensureNewCa(issuer, rotationId, spec.ca?.duration ?? '8760h', rs.metadata.name ?? '');
        if (!newRoot) return wait('waiting for cert-manager to issue the new CA');
        ca.secretName = newCaName(rotationId);
        ca.newRootSerial = serialOf(newRoot);
        for (const namespace of namespaces) await this.o.ca.setBundleChanges(namespace, { addedRoot: newRoot });
        return moveTo('VerifyTrust', `new root ${ca.newRootSerial} published to the bundles of ${namespaces.join(', ')}; checking workloads trust it`);
      }
      case 'VerifyTrust': {
        // The issuer is the truth: switched already means the operator stopped between the switch
        // and the status write that records it.
        if (await this.o.ca.issuerSecretName(issuer) === ca.secretName) {
          await this.o.ca.deleteProbe(issuer, rotationId);
          return moveTo('ReissueLeaves', `${issuer.kind} ${issuer.name} already signs with ${ca.secretName} (switched before the operator restarted); re-issuing leaves canary first`);
        }
        const newRoot = await this.newRoot(rs, spec, { ...status, ca });
        if (!newRoot) throw new Error(`the new CA Secret ${ca.secretName} holds no certificate`);
        const problems: string[] = [];
        const missing = namespaces.filter((namespace) => !bundleHas(this.o.caches.configMaps.get(namespace, TRUST_BUNDLE_CONFIGMAP), newRoot));
        if (missing.length) {
          // A namespace that gained a service on this issuer since AddRoot gets the new root too.
          const holder = this.holder(rs, status);
          const claimed = await this.o.claims.acquire(missing.map((namespace) => ({ kind: 'bundle' as const, namespace, name: '' })), holder);
          if (!claimed.ok) return wait(`waiting for ${describeClaim(claimed.claim)}, which rotation ${claimed.heldBy.rotationId} of RotationSchedule ${claimed.heldBy.namespace}/${claimed.heldBy.schedule} is rotating`, CLAIM_RETRY_MS);
          for (const namespace of missing) await this.o.ca.setBundleChanges(namespace, { addedRoot: newRoot });
          problems.push(`the trust bundle of ${missing.join(', ')} does not publish the new root yet`);
        } else {
          const probe = await this.o.ca.ensureProbe(issuer, rotationId, rs.metadata.name ?? '');
          if (!probe) return wait('waiting for a probe certificate from the new CA');
          // Workloads accept a client certificate from the new CA only if they load the new bundle.
          for (const target of status.targets ?? []) {
            const result = await this.verifyTarget(target, { client: probe, anySerial: true });
            problems.push(...result.problems.map((p) => `${target.name}: ${p}`));
          }
        }
        if (problems.length === 0) {
          // The switch is what changes every service on the issuer: a grant withdrawn meanwhile stops it here.
          const grant = await this.caGrant(rs, spec);
          if (grant && !grant.allowed) {
            return stopBeforeLeaves('Failed', grant.reason, grant.message,
              `stopped before the issuer switch: the grant was withdrawn; the issuer still signs with ${ca.previousSecretName}; the new CA's key is deleted and its root withdrawn from the bundles`);
          }
          await this.o.ca.deleteProbe(issuer, rotationId);
          await this.o.ca.switchIssuer(issuer, ca.secretName ?? '');
          failpoint(Failpoints.AfterIssuerSwitch);
          return moveTo('ReissueLeaves', `workloads trust the new root; ${issuer.kind} ${issuer.name} now signs with ${ca.secretName}; re-issuing leaves canary first`);
        }
        const since = status.stepStartedAt ? Date.parse(status.stepStartedAt) : now;
        if (now - since <= timeoutMs) return wait(`verifying trust: ${problems.join('; ')}`);
        // Nothing was re-issued and the issuer still signs with the old CA: the new CA goes away.
        const message = `workloads do not trust the new root within ${spec.strategy?.verification?.timeout}: ${problems.join('; ')}`;
        return stopBeforeLeaves(spec.strategy?.autoRollback ? 'RolledBack' : 'Failed', Reasons.VerificationFailed, message,
          `stopped before any leaf was re-issued: the issuer still signs with ${ca.previousSecretName}; the new CA's key is deleted and its root withdrawn from the bundles`);
      }
      case 'Overlap': {
        const ends = ca.overlapEndsAt ? Date.parse(ca.overlapEndsAt) : now;
        if (now < ends && !emergency) return { status: { ...status, phase: 'Verifying', ca }, requeueAfter: ends - now };
        return moveTo('DropOldRoot', 'overlap over; checking no certificate still chains to the old root');
      }
      case 'DropOldRoot': {
        const oldRoot = ca.previousSecretName ? await this.o.ca.caCertificate(issuer.secretNamespace, ca.previousSecretName) : undefined;
        const newRoot = await this.newRoot(rs, spec, { ...status, ca });
        if (!oldRoot || !newRoot) throw new Error('the old or new CA Secret holds no certificate');
        // Never drop a root a certificate still chains to: every service on the issuer, not only the
        // targets, both as issued (its Secret) and as served (what its endpoints present).
        // Pods that mount a target's Secret without serving it (its clients) are not endpoints:
        // nothing probes them, so the old root stays until the kubelet has had time to give them
        // the new leaf. The timeout below counts from then.
        const lastLeafAt = Math.max(0, ...(status.targets ?? []).map((t) => (t.updatedAt ? Date.parse(t.updatedAt) : 0)));
        const delivered = lastLeafAt + (this.o.secretPropagationMs ?? 120_000);
        if (now < delivered) return wait(`keeping the old root until ${timestamp(delivered)}: the kubelet may still be delivering the new leaves to pods that do not serve them`, delivered - now);
        const since = Math.max(status.stepStartedAt ? Date.parse(status.stepStartedAt) : now, delivered);
        const keep = (why: string, ms: number): Step => {
          if (now - since <= timeoutMs) return wait(`keeping the old root: ${why}`, ms);
          // Nothing is broken: the leaves are re-issued, the issuer signs with the new CA, and both
          // roots stay trusted. The rotation ends so that others (an emergency) can run.
          const message = `the old root ${ca.oldRootSerial} is still in use after ${spec.strategy?.verification?.timeout}: ${why}; both roots stay trusted`;
          const failed: RotationScheduleStatus = { ...status, ca: { ...ca, message: 'old root kept: both roots stay in the bundles' }, failure: { reason: 'OldRootInUse', message } };
          return { status: this.finish(rs, failed, 'Failed', message, rotatedKinds(spec.rotate), now), requeueAfter: 0 };
        };
        const stillOld = services.filter((es) => {
          const pem = this.o.caches.secrets.get(es.metadata.namespace, tlsSecretName(es.metadata.name ?? ''))?.data?.['tls.crt'];
          return pem !== undefined && issuedBy(Buffer.from(pem, 'base64').toString('utf8'), oldRoot);
        });
        if (stillOld.length) return keep(`${stillOld.map((es) => `${es.metadata.namespace}/${es.metadata.name}`).join(', ')} still chain to it`, 5_000);
        const problems: string[] = [];
        const targets = new Set((status.targets ?? []).map((t) => `${t.namespace}/${t.name}`));
        for (const es of services) {
          const target = { namespace: es.metadata.namespace ?? '', name: es.metadata.name ?? '' };
          const result = await this.verifyTarget(target, { issuerRoot: newRoot, anySerial: true });
          // A service outside the rotation with no endpoints serves nothing that could chain to the old root.
          if (result.endpoints === 0 && !targets.has(`${target.namespace}/${target.name}`)) continue;
          problems.push(...result.problems.map((p) => `${target.namespace}/${target.name}: ${p}`));
        }
        if (problems.length) return keep(problems.join('; '), 2_000);
        const retired = fingerprint(oldRoot);
        for (const namespace of namespaces) await this.o.ca.setBundleChanges(namespace, { retired: [retired] });
        const lingering = namespaces.filter((namespace) => bundleHas(this.o.caches.configMaps.get(namespace, TRUST_BUNDLE_CONFIGMAP), oldRoot));
        if (lingering.length) return wait(`old root withdrawn; waiting for the bundles of ${lingering.join(', ')} to drop it`);
        return moveTo('Done', `old root ${ca.oldRootSerial} dropped from every bundle`);
      }
      default: {
        const message = `CA rotated to root ${ca.newRootSerial}; ${(status.targets ?? []).length} targets re-issued and verified; old root ${ca.oldRootSerial} dropped`;
        return { status: this.finish(rs, { ...status, ca: { ...ca, stage: 'Done' } }, 'Completed', message, rotatedKinds(spec.rotate), now), requeueAfter: 0 };
      }
    }
  }

  /**
   * Restores the kept revision on every failed target; targets that succeeded keep the new one.
   * Only a backup this rotation made of the revision it recorded is restored; a target that failed
   * before it was backed up was never changed. `unrestored` lists targets left on an unverified
   * certificate.
   */
  private async rollback(rs: RotationSchedule, status: RotationScheduleStatus, now: number): Promise<{ status: RotationScheduleStatus; unrestored: string[] }> {
    const unrestored: string[] = [];
    for (const target of failedTargets(status)) {
      let what: string;
      let restoredOk = true;
      if (!target.previousRevision) {
        what = 'nothing to restore: it failed before its certificate was touched';
      } else {
        await this.o.leaves.cancelIssuance(target.namespace, target.name);
        const restored = await this.o.leaves.restore(target.namespace, target.name, target.name,
          { rotationId: status.rotationId ?? '', serial: target.previousRevision });
        if (restored.result === 'restored') failpoint(Failpoints.AfterRestore);
        switch (restored.result) {
          case 'restored': what = `restored previous certificate ${restored.serial}`; break;
          case 'already-current': what = `previous certificate ${restored.serial} still in place`; break;
          case 'target-gone': what = 'its certificate is gone: nothing to restore'; break;
          case 'in-renewal-window':
            restoredOk = false;
            what = `previous certificate ${restored.serial} not restored: it is already due for renewal, so cert-manager would replace it at once; the new certificate stays`;
            break;
          default:
            restoredOk = false;
            what = `no backup of ${target.previousRevision} from this rotation: nothing restored`;
        }
      }
      if (!restoredOk) unrestored.push(target.name);
      status = updateTarget(status, target.name, { phase: restoredOk ? 'RolledBack' : 'Failed', message: `${target.message ?? 'failed'}; ${what}` }, now);
      this.event(rs, 'Warning', Reasons.RolledBack, `${target.namespace}/${target.name}: ${what}`);
    }
    return { status, unrestored };
  }

  private finish(rs: RotationSchedule, status: RotationScheduleStatus, outcome: 'Completed' | 'RolledBack' | 'Failed', message: string, rotated: Rotatable[], now: number) {
    const started = status.startedAt ? Date.parse(status.startedAt) : now;
    for (const kind of rotated) {
      this.o.metrics.rotations.inc({ kind, outcome });
      this.o.metrics.rotationDuration.observe({ kind }, Math.max(0, now - started) / 1000);
    }
    const reason = outcome === 'Completed' ? Reasons.RotationCompleted : outcome === 'RolledBack' ? Reasons.RolledBack : Reasons.VerificationFailed;
    this.event(rs, outcome === 'Completed' ? 'Normal' : 'Warning', reason, `rotation ${status.rotationId} ${message}`);
    this.log.info('rotation finished', { namespace: rs.metadata.namespace, name: rs.metadata.name, rotationId: status.rotationId, outcome });
    return finishRotation(status, { outcome, now, message, rotated });
  }

  private notAfter(namespace: string, name: string): number | undefined {
    const pem = this.o.caches.secrets.get(namespace, tlsSecretName(name))?.data?.['tls.crt'];
    if (!pem) return undefined;
    try {
      return Date.parse(new X509Certificate(Buffer.from(pem, 'base64')).validTo);
    } catch {
      return undefined;
    }
  }

  // --- status

  private conditions(spec: RotationScheduleSpec, status: RotationScheduleStatus, configError: string | undefined, denied?: Step['denied'], noTargets?: string): ConditionInput[] {
    if (denied) {
      return [cond(C.Ready, false, denied.reason, denied.message), cond(C.Rotating, false, denied.reason, denied.message), cond(C.Degraded, true, denied.reason, denied.message)];
    }
    const rotated = rotatedKinds(spec.rotate);
    const unsupported = spec.rotate.filter((k) => !rotated.includes(k));
    const rotating = inRotation(status);
    const paused = status.phase === 'Paused';
    const failure = status.phase === 'RolledBack' || status.phase === 'Failed' ? status.failure : undefined;
    const storedReason = status.failure?.reason;
    const failureReason = status.phase === 'RolledBack' ? Reasons.RolledBack : isReason(storedReason) ? storedReason : Reasons.VerificationFailed;
    const failureMessage = failure ? `${failure.target ?? ''}: ${failure.message ?? ''}` : '';
    const steps = spec.strategy?.canarySteps?.length ?? 0;
    const rotatingCond = rotating
      ? cond(C.Rotating, !paused, paused ? Reasons.RotationPaused : Reasons.RotationInProgress,
        `rotation ${status.rotationId} ${paused ? 'paused before' : 'at'} step ${(status.currentStep ?? 0) + 1} of ${steps} (${status.phase})`)
      : status.waiting && !paused ? cond(C.Rotating, false, Reasons.RotationWaiting, status.waiting)
        : cond(C.Rotating, false, paused ? Reasons.RotationPaused : Reasons.RotationScheduled,
          paused ? 'paused: no rotation starts until resumed' : status.nextRotation ? `next rotation at ${status.nextRotation}` : 'rotates on demand');
    const problems: string[] = [];
    if (configError) problems.push(configError);
    if (status.lastError) problems.push(`last reconcile failed: ${status.lastError}`);
    if (unsupported.length) {
      const why = unsupported.every((k) => KEY_KINDS.includes(k))
        ? 'keys rotate in a RotationSchedule of their own, not together with certificates or ca'
        : `not supported by this operator version (only certificates, ca and keyEncryptionKeys rotate)`;
      problems.push(`rotate: ${unsupported.join(', ')}: ${why}`);
    }
    if (noTargets) problems.push(noTargets);
    const ready = configError
      ? cond(C.Ready, false, 'InvalidSchedule', configError)
      : failure ? cond(C.Ready, false, failureReason, failureMessage)
        : cond(C.Ready, true, status.phase === 'Completed' ? Reasons.RotationCompleted : Reasons.RotationScheduled,
          status.phase === 'Completed' ? `last rotation completed at ${status.lastRotation}` : 'schedule valid');
    const degraded = failure
      ? cond(C.Degraded, true, failureReason, failureMessage)
      : problems.length ? cond(C.Degraded, true, configError ? 'InvalidSchedule' : status.lastError ? Reasons.ReconcileError : unsupported.length ? 'Unsupported' : Reasons.NoTargets, problems.join('; '))
        : cond(C.Degraded, false, Reasons.Reconciled, 'no problems found');
    return [ready, rotatingCond, degraded];
  }

  private targetsProblem(rs: RotationSchedule, spec: RotationScheduleSpec): string | undefined {
    const namespace = rs.metadata.namespace ?? '';
    return targetsProblem(spec.targets, namespace, this.o.caches.encryptedServices.list(namespace));
  }

  /** Writes status when it differs from what was last written; records phase changes as Events. */
  private async persist(rs: RotationSchedule, spec: RotationScheduleSpec, written: { status: RotationScheduleStatus; resourceVersion?: string | undefined }, status: RotationScheduleStatus, configError?: string, denied?: Step['denied']): Promise<void> {
    const next: RotationScheduleStatus = {
      ...boundStatus(status),
      observedGeneration: rs.metadata.generation ?? 0,
      conditions: setConditionsWithKstatus(written.status.conditions, this.conditions(spec, status, configError, denied, this.targetsProblem(rs, spec)), rs.metadata.generation, this.now()),
    };
    const clean = JSON.parse(JSON.stringify(next)) as RotationScheduleStatus;
    if (isSubset(clean, written.status) && isSubset(written.status, clean)) return;
    written.resourceVersion = await this.o.applier.applyStatus({
      group: GROUP, version: VERSION, plural: ROTATION_SCHEDULE.plural, kind: ROTATION_SCHEDULE.kind,
      namespace: rs.metadata.namespace ?? '', name: rs.metadata.name ?? '',
    }, clean, written.resourceVersion);
    const before = written.status.phase;
    written.status = clean;
    if (before !== clean.phase && clean.phase === 'Paused') this.event(rs, 'Normal', Reasons.RotationPaused, 'paused (spec.paused or annotation lockstep.dev/paused)');
  }

  private event(rs: RotationSchedule, type: EventType, reason: string, message: string): void {
    this.o.events.record({ ...rs, apiVersion: API_VERSION, kind: ROTATION_SCHEDULE.kind } as KubernetesObject, type, reason, message);
  }
}

function samePolicy(a: { namespace: string; name: string } | undefined, b: { namespace: string; name: string }): boolean {
  return a !== undefined && a.namespace === b.namespace && a.name === b.name;
}

function idlePhase(status: RotationScheduleStatus): RotationScheduleStatus['phase'] {
  // The last outcome stays visible until the next rotation starts.
  const phase = status.phase;
  return phase === 'Completed' || phase === 'RolledBack' || phase === 'Failed' ? phase : 'Idle';
}
