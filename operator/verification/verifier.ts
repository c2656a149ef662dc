// Continuous verification of one EncryptedService per reconcile: probe its endpoints when due,
// judge what they serve against the TLS Secret, report the Verified condition (own field
// manager, server-side apply of only what this controller owns), Events on change, metrics, and
// restart a non-hot-reloading workload still serving a replaced certificate, once per serial.
import type { V1EndpointSlice } from '@kubernetes/client-node';
import {
  API_VERSION, ENCRYPTED_SERVICE, EncryptedServiceConditions as C, GROUP, Reasons, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY, VERSION,
  keyPolicyNamespaceOf, serviceNameOf, tlsSecretName,
  type Condition, type EncryptedService, type RestartTarget, type RotationSchedule, type VerificationStatus,
} from '../api/v1alpha1/index.js';
import type { Caches } from '../encryptedservice/reconciler.js';
import type { Applier } from '../kube/apply.js';
import { findCondition, setConditions, type ConditionInput } from '../kube/conditions.js';
import { endpointsOf } from '../rotationschedule/endpoints.js';
import type { ClientIdentity, Endpoint, TlsExpectation } from '../rotationschedule/tls-verification.js';
import { RestartRefused, restartValue, type RestartOutcome, type WorkloadRestarter } from '../rotationschedule/workload-restart.js';
import type { EventRecorder } from '../runtime/events.js';
import { splitKey } from '../runtime/keys.js';
import type { Logger } from '../runtime/logger.js';
import { VIOLATION_KINDS, type OperatorMetrics } from '../runtime/metrics.js';
import type { Result } from '../runtime/workqueue.js';
import type { VerificationSettings } from '../config.js';
import { judge, type EndpointObservation, type Verdict } from './judge.js';
import { decideRestart, jittered, nextProbeAfter, probeTarget, RestartBudget, rotationOwner } from './plan.js';

/** Field manager of the Verified condition and status.verification. */
export const VERIFIER_FIELD_MANAGER = 'lockstep-verifier';

export interface VerifierReader {
  endpointSlices(namespace: string, serviceName: string): Promise<V1EndpointSlice[]>;
  schedules(namespace: string): Promise<RotationSchedule[]>;
}

export interface VerifierOptions {
  caches: Pick<Caches, 'encryptedServices' | 'secrets' | 'configMaps' | 'keyPolicies'>;
  reader: VerifierReader;
  /** An Applier under VERIFIER_FIELD_MANAGER. */
  statusApplier: Pick<Applier, 'applyStatus'>;
  restarter: Pick<WorkloadRestarter, 'restart'>;
  observe: (endpoints: readonly Endpoint[], expected: TlsExpectation, client: ClientIdentity) => Promise<EndpointObservation[]>;
  settings: VerificationSettings;
  events: EventRecorder;
  metrics: OperatorMetrics;
  logger: Logger;
  now?: () => number;
  random?: () => number;
}

interface ProbeState {
  dueAt: number;
  serial: string | undefined;
  generation: number | undefined;
}

export class Verifier {
  private readonly state = new Map<string, ProbeState>();
  /** What this process last wrote, ahead of the cache seeing it (a leader's memory: a replica
   * that loses leadership exits, so a new term starts from status). */
  private readonly reported = new Map<string, { condition: Condition; record: VerificationStatus | undefined }>();
  /** `key serial` of restarts this process sent. */
  private readonly sent = new Set<string>();
  private readonly budget: RestartBudget;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly log: Logger;

  constructor(private readonly o: VerifierOptions) {
    this.budget = new RestartBudget(o.settings.maxRestartsPerPeriod, o.settings.periodMs);
    this.now = o.now ?? Date.now;
    this.random = o.random ?? Math.random;
    this.log = o.logger.child('verifier');
  }

  async reconcile(key: string): Promise<Result | void> {
    const { namespace: ns, name } = splitKey(key);
    const namespace = ns ?? '';
    const es = this.o.caches.encryptedServices.get(namespace, name);
    if (!es || es.metadata.deletionTimestamp) {
      this.forget(key, namespace, name);
      return;
    }
    const now = this.now();
    const secret = this.o.caches.secrets.get(namespace, tlsSecretName(name));
    const bundle = this.o.caches.configMaps.get(namespace, TRUST_BUNDLE_CONFIGMAP)?.data?.[TRUST_BUNDLE_KEY];
    const policy = this.o.caches.keyPolicies.get(keyPolicyNamespaceOf(es), es.spec.keyPolicyRef.name);
    const target = probeTarget(es, secret, bundle, policy);
    const serial = 'issued' in target ? target.issued.serial : undefined;

    // Status and Secret events wake this key often; probe only when due. A renewal is looked at
    // once its grace period is over (a restart then is on time), a spec change at once.
    const previous = this.state.get(key);
    let dueAt = previous?.dueAt ?? now;
    if (previous && previous.generation !== es.metadata.generation) dueAt = now;
    if (previous && 'issued' in target && previous.serial !== serial) dueAt = Math.min(dueAt, target.issued.notBeforeMs + this.o.settings.graceMs + 1_000);
    if (now < dueAt) {
      this.state.set(key, { dueAt, serial, generation: es.metadata.generation });
      return { requeueAfter: dueAt - now };
    }

    if ('pending' in target) {
      // Before a first verdict, Ready already says what a new service waits for: a Verified
      // condition repeating it would be one more status write per service. A service that had a
      // verdict and waits again (its Secret went away) is reported.
      if (this.hasVerdict(key, es)) {
        await this.report(key, es, { type: C.Verified, status: 'Unknown', reason: Reasons.CertificatePending, message: target.pending }, this.recordOf(key, es));
      }
      this.o.metrics.untrackServed(namespace, name);
      return this.schedule(key, es, serial, now + jittered(this.o.settings.periodMs, this.random()));
    }

    const endpoints = endpointsOf(await this.o.reader.endpointSlices(namespace, serviceNameOf(es)), es.spec.ports);
    const started = this.now();
    const observations = endpoints.length > 0 ? await this.o.observe(endpoints, target.expectation, target.client) : [];
    const verdict = judge(observations, target.issued, this.now(), this.o.settings.graceMs);
    this.o.metrics.probeDuration.observe({ result: verdict.reason }, (this.now() - started) / 1000);
    this.measure(namespace, name, verdict);

    let record = this.recordOf(key, es);
    let condition: ConditionInput = { type: C.Verified, status: verdict.status, reason: verdict.reason, message: verdict.message };
    let retryAfter: number | undefined;
    let refused: string | undefined;
    if (verdict.stalePastGrace) {
      const rotation = rotationOwner(await this.o.reader.schedules(namespace), namespace, name);
      const decision = decideRestart({ es, verdict, issuedSerial: target.issued.serial, record, rotation, resent: this.sent.has(`${key} ${target.issued.serial}`) });
      if (decision.action === 'restart') {
        if (this.budget.take(now)) {
          record = { restartedForSerial: decision.serial, restartedAt: restartValue(new Date(now)) };
          condition = { ...condition, message: `${condition.message} | restarting ${decision.target.kind} ${decision.target.name}` };
          // Recorded before the restart: after a crash between the two writes the next leader
          // sends the same restartedAt again, which changes nothing when the first one landed.
          await this.report(key, es, condition, record);
          refused = await this.restart(key, es, decision.target, record, 'restarted');
        } else {
          retryAfter = Math.max(1_000, this.budget.waitMs(now));
          this.log.info('restart deferred: restart budget of this period used', { namespace, name });
        }
      } else if (decision.action === 'resend') {
        refused = await this.restart(key, es, decision.target, { restartedForSerial: target.issued.serial, restartedAt: decision.value }, 'resent');
      } else {
        this.log.debug('no restart', { namespace, name, why: decision.why });
      }
    }
    if (refused) condition = { ...condition, message: `${verdict.message} | ${refused}` };
    else if (record?.restartedForSerial === target.issued.serial && verdict.stalePastGrace) {
      condition = { ...condition, message: `${verdict.message} | ${es.spec.workload.restart?.kind ?? 'workload'} ${es.spec.workload.restart?.name ?? ''} was restarted for ${record.restartedForSerial} at ${record.restartedAt}` };
    }
    await this.report(key, es, condition, record);
    const after = retryAfter ?? nextProbeAfter(verdict, target.issued, now, this.o.settings.periodMs, this.o.settings.graceMs, this.random());
    return this.schedule(key, es, serial, now + after);
  }

  private schedule(key: string, es: EncryptedService, serial: string | undefined, dueAt: number): Result {
    this.state.set(key, { dueAt, serial, generation: es.metadata.generation });
    return { requeueAfter: Math.max(0, dueAt - this.now()) };
  }

  private hasVerdict(key: string, es: EncryptedService): boolean {
    return this.reported.has(key) || findCondition(es.status?.conditions, C.Verified) !== undefined;
  }

  private recordOf(key: string, es: EncryptedService): VerificationStatus | undefined {
    const mine = this.reported.get(key);
    return mine ? mine.record : es.status?.verification;
  }

  /** Sends the recorded restart; true when the workload was (or already is) restarted. A refused
   * restart (no such workload, an OnDelete strategy) is reported, not retried: the record stands. */
  private async restart(key: string, es: EncryptedService, target: RestartTarget, record: VerificationStatus, how: 'restarted' | 'resent'): Promise<string | undefined> {
    const namespace = es.metadata.namespace ?? '';
    this.sent.add(`${key} ${record.restartedForSerial}`);
    let outcome: RestartOutcome;
    try {
      outcome = await this.o.restarter.restart(target, namespace, record.restartedAt ?? '');
    } catch (err) {
      if (!(err instanceof RestartRefused)) throw err;
      this.o.events.record(this.ref(es), 'Warning', Reasons.RestartRefused, `not restarted: ${err.message}`);
      return `restart of ${target.kind} ${target.name} refused: ${err.message}`;
    }
    if (how === 'resent' || outcome.result === 'already-restarted') {
      this.log.info('restart for this serial sent again after an operator restart', { namespace, name: es.metadata.name, serial: record.restartedForSerial, result: outcome.result });
      return undefined;
    }
    this.o.metrics.verificationRestarts.inc({ namespace, service: es.metadata.name ?? '' });
    this.o.events.record(this.ref(es), 'Normal', Reasons.WorkloadRestarted,
      `restarted ${target.kind} ${target.name}: it kept serving a replaced certificate past the grace period and does not hot-reload (issued ${record.restartedForSerial})${outcome.note ? `; ${outcome.note}` : ''}`);
    return undefined;
  }

  /** Applies Verified and status.verification when they changed; an Event when the verdict did. */
  private async report(key: string, es: EncryptedService, input: ConditionInput, record: VerificationStatus | undefined): Promise<void> {
    const mine = this.reported.get(key);
    const before = mine?.condition ?? findCondition(es.status?.conditions, C.Verified);
    const beforeRecord = mine ? mine.record : es.status?.verification;
    const [condition] = setConditions(before ? [before] : [], [input], es.metadata.generation, new Date(this.now())) as [Condition];
    const unchanged = before && before.status === condition.status && before.reason === condition.reason && before.message === condition.message
      && before.observedGeneration === condition.observedGeneration
      && beforeRecord?.restartedForSerial === record?.restartedForSerial && beforeRecord?.restartedAt === record?.restartedAt;
    if (unchanged) return;
    // Every apply carries both fields this manager owns: a field left out would be removed.
    await this.o.statusApplier.applyStatus(
      { group: GROUP, version: VERSION, plural: ENCRYPTED_SERVICE.plural, namespace: es.metadata.namespace ?? '', name: es.metadata.name ?? '', kind: ENCRYPTED_SERVICE.kind },
      { conditions: [condition], ...(record ? { verification: record } : {}) },
    );
    this.reported.set(key, { condition, record });
    if (before && before.status === condition.status && before.reason === condition.reason) return;
    if (condition.status === 'False') this.o.events.record(this.ref(es), 'Warning', condition.reason, `${C.Verified}: ${condition.message}`);
    else if (condition.status === 'True' && before?.status === 'False') this.o.events.record(this.ref(es), 'Normal', condition.reason, `${C.Verified}: ${condition.message}`);
  }

  private measure(namespace: string, service: string, verdict: Verdict): void {
    const m = this.o.metrics;
    m.servedDrift.set({ namespace, service }, verdict.drift);
    for (const kind of VIOLATION_KINDS) m.verificationViolations.set({ namespace, service, kind }, verdict.violations[kind]);
    if (verdict.servedNotAfterMs !== undefined) m.trackServedExpiry(namespace, service, verdict.servedNotAfterMs);
  }

  private forget(key: string, namespace: string, name: string): void {
    this.state.delete(key);
    this.reported.delete(key);
    this.o.metrics.untrackServed(namespace, name);
  }

  private ref(es: EncryptedService) {
    return { ...es, apiVersion: API_VERSION, kind: ENCRYPTED_SERVICE.kind };
  }
}
