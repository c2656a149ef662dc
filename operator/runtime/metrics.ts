import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { systemClock, type Clock } from './clock.js';

// One registry per operator instance (never prom-client's global default), so tests get
// isolated registries and nothing a library registers globally leaks into /metrics.

export interface KeyAgeLabels {
  readonly namespace: string;
  readonly keypolicy: string;
  readonly kid: string;
}

export interface OperatorMetrics {
  readonly registry: Registry;
  readonly reconcileDuration: Histogram<'controller' | 'result'>;
  readonly workqueueDepth: Gauge<'controller'>;
  /** Keys that became pending (duplicates of a pending key collapse and are not counted). */
  readonly workqueueAdds: Counter<'controller'>;
  /** Failed reconciles scheduled again with backoff. */
  readonly workqueueRetries: Counter<'controller'>;
  /** Reconciles that asked for a timed re-check (requeueAfter). */
  readonly workqueueRequeues: Counter<'controller'>;
  /** How long a ready key waited for a worker (client-go's workqueue_queue_duration_seconds). */
  readonly workqueueQueueDuration: Histogram<'controller'>;
  /** How long a worker took to process a key (client-go's workqueue_work_duration_seconds). */
  readonly workqueueWorkDuration: Histogram<'controller'>;
  /**
   * From the arrival of the watch event that queued a key (the earliest still pending) to the
   * first write of the reconcile that took it, by what that write was to (e.g. networkpolicies).
   */
  readonly eventToWrite: Histogram<'controller' | 'resource'>;
  readonly reconcileErrors: Counter<'controller' | 'reason'>;
  /**
   * Objects whose last reconcile failed with a retryable error, by the reason of that failure: 0
   * again once a retry succeeds. What LockstepReconcileErrors alerts on (a burst of errors that
   * retries clear is not a fault; an object that keeps failing is).
   */
  readonly reconcileFailing: Gauge<'controller' | 'reason'>;
  /** Generated objects currently owned, by kind. */
  readonly children: Gauge<'kind'>;
  /** RotationSchedule rotations that ended, by what they rotated (certificates, ca, keyEncryptionKeys, dataKeys) and outcome (Completed, RolledBack, Failed). */
  readonly rotations: Counter<'kind' | 'outcome'>;
  /**
   * KEKs a KeyPolicy generated, by trigger (period, on-demand, algorithm-change). A key event, not
   * an operation: a RotationSchedule's keyEncryptionKeys rotation counts once in `rotations` and
   * makes one on-demand generation here.
   */
  readonly kekGenerations: Counter<'trigger'>;
  readonly rotationDuration: Histogram<'kind'>;
  readonly keyAge: Gauge<'namespace' | 'keypolicy' | 'kid'>;
  /** 1 while this replica holds the leader Lease. */
  readonly leader: Gauge;
  /** 0 while requests to the API server get no answer (reachability.ts). */
  readonly apiserverReachable: Gauge;
  /** 1 while an API the operator needs for part of its work (cert-manager) is not served. */
  readonly dependencyMissing: Gauge<'dependency'>;
  /** Endpoints of a service serving a certificate other than the one its Secret holds. */
  readonly servedDrift: Gauge<'namespace' | 'service'>;
  /** Endpoints failing each continuous-verification check, by kind (e.g. mtls_not_enforced). */
  readonly verificationViolations: Gauge<'namespace' | 'service' | 'kind'>;
  /** Time to probe every endpoint of one service; result is the Verified reason. */
  readonly probeDuration: Histogram<'result'>;
  /** Restarts of workloads that kept serving a replaced certificate. */
  readonly verificationRestarts: Counter<'namespace' | 'service'>;
  /** CertificateRequests the approver approved or denied, by decision and reason. */
  readonly certificateRequestDecisions: Counter<'decision' | 'reason'>;
  /**
   * Requests claiming a Lockstep identity that no EncryptedService declares, by the request's own
   * namespace only: what it claims is free text a tenant chooses and never becomes a label.
   */
  readonly certificateRequestsUnmatched: Counter<'namespace'>;
  /** Counts a request asking for a declared service's identity (lockstep_certificaterequest_identity_requests_total). */
  countIdentityRequest(namespace: string, service: string): void;
  /** Counts a request asking for names outside a declared service's own (lockstep_certificaterequest_sans_outside_total). */
  countSansOutside(namespace: string, service: string): void;
  /**
   * Secrets claiming to be a KeyPolicy's envelope stores that the operator did not write (forged
   * or tampered), by why they were refused: ignored for retirement and re-wrap.
   */
  readonly untrustedStores: Gauge<'namespace' | 'keypolicy' | 'reason'>;
  /** Tenant-triggered audit events counted into a `suppressed` entry instead of written (rate limit). */
  readonly auditSuppressed: Counter<'type'>;
  /** Audit events not written at all: reason `chain-broken` (the trail refuses appends until recovered). */
  readonly auditDropped: Counter<'type' | 'reason'>;
  /**
   * 429 Too Many Requests answers from the API server (Priority and Fairness or max-in-flight), by
   * API client (`main`, `events`, `lease`) and outcome: `retried` after Retry-After, or `returned`
   * to the caller once the retries were spent.
   */
  readonly kubeThrottled: Counter<'client' | 'outcome'>;
  /** Per request sent, how long it waited first: for a client-side token, and after a 429's Retry-After. */
  readonly kubeRateLimitWait: Histogram<'client'>;
  /** Reports `lockstep_served_certificate_days_to_expiry` for a service, computed at scrape time. */
  trackServedExpiry(namespace: string, service: string, notAfterMs: number): void;
  /** Stops reporting a service's served certificate and verification gauges (deleted, or nothing served). */
  untrackServed(namespace: string, service: string): void;
  /** Reports `lockstep_key_age_seconds` (computed at scrape time) and `lockstep_key_created_timestamp_seconds` for this key. */
  trackKeyAge(labels: KeyAgeLabels, createdAtMs: number): void;
  /** Stops reporting a key (retired or deleted). */
  untrackKeyAge(labels: KeyAgeLabels): void;
  /**
   * Reports `lockstep_resource_ready` and `lockstep_certificate_expiry_timestamp_seconds` from
   * `source` at scrape time (the informer caches): an object that is gone stops being reported
   * with nothing to forget, and a restarted replica reports everything before its first write.
   */
  reportResources(source: () => Iterable<ResourceState>): void;
  /** Reports `lockstep_ca_expiry_timestamp_seconds` from `source` at scrape time, like reportResources. */
  reportCAs(source: () => Iterable<CAState>): void;
}

/** One Lockstep object as the scrape-time gauges see it. */
export interface ResourceState {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** The Ready condition is True for the object's current generation. */
  readonly ready: boolean;
  /** notAfter of the certificate an EncryptedService's Secret holds, as its status reports it. */
  readonly certificateNotAfterMs?: number;
  /** When cert-manager is due to renew that certificate (status.certificate.renewalTime). */
  readonly certificateRenewalMs?: number;
  /** A KeyPolicy's key rotation period: its newest key should never be older. */
  readonly rotationPeriodSeconds?: number;
  /** A RotationSchedule's status.phase (Idle when it has none yet). */
  readonly phase?: string;
}

/** A CA certificate the operator made (a KeyPolicy's managed root, a CA rotation's new CA), as issued. */
export interface CAState {
  readonly namespace: string;
  readonly certificate: string;
  /** `namespace/name` of the KeyPolicy it was made for, or empty. */
  readonly keypolicy: string;
  readonly notAfterMs: number;
}

/** What an API client reports (operator/runtime/api-client.ts takes it as `observer`). */
export interface KubeClientObserver {
  throttled(outcome: 'retried' | 'returned'): void;
  waited(ms: number): void;
}

/** Reports one API client's 429s and waits under its name. */
export function kubeClientObserver(metrics: OperatorMetrics, client: string): KubeClientObserver {
  return {
    throttled: (outcome) => metrics.kubeThrottled.inc({ client, outcome }),
    waited: (ms) => metrics.kubeRateLimitWait.observe({ client }, ms / 1000),
  };
}

/** Kinds of lockstep_verification_violations. */
export const VIOLATION_KINDS = [
  'stale_certificate', 'untrusted_certificate', 'mtls_not_enforced', 'plaintext_accepted', 'tls_policy', 'unreachable',
] as const;
export type ViolationKind = (typeof VIOLATION_KINDS)[number];

/** Buckets of the waits (rate limit, work queue): a millisecond to a minute. */
const WAIT_BUCKETS = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface MetricsOptions {
  /** This build's version, for lockstep_build_info. Default "unknown". */
  readonly version?: string;
  /** Node process metrics (CPU, memory, event loop, GC). Default true. */
  readonly defaultMetrics?: boolean;
  readonly clock?: Clock;
}

export function createMetrics(options: MetricsOptions = {}): OperatorMetrics {
  const registry = new Registry();
  const clock = options.clock ?? systemClock;
  const registers = [registry];
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  const keyCreated = new Map<string, { labels: KeyAgeLabels; createdAtMs: number }>();
  const keyId = (l: KeyAgeLabels): string => JSON.stringify([l.namespace, l.keypolicy, l.kid]);

  const keyAge = new Gauge({
    name: 'lockstep_key_age_seconds',
    help: 'Age of each key-encryption key in use, by KeyPolicy and kid.',
    labelNames: ['namespace', 'keypolicy', 'kid'] as const,
    registers,
    collect() {
      this.reset();
      const now = clock.now();
      for (const { labels, createdAtMs } of keyCreated.values()) {
        this.set({ ...labels }, Math.max(0, (now - createdAtMs) / 1000));
      }
    },
  });
  // The same keys as a timestamp: alerts compare it with time(), so a key that stays in use keeps
  // ageing in Prometheus even while the operator's own clock-derived figures stand still.
  new Gauge({
    name: 'lockstep_key_created_timestamp_seconds',
    help: 'When each key-encryption key in use was created (Unix seconds), by KeyPolicy and kid.',
    labelNames: ['namespace', 'keypolicy', 'kid'] as const,
    registers,
    collect() {
      this.reset();
      for (const { labels, createdAtMs } of keyCreated.values()) this.set({ ...labels }, createdAtMs / 1000);
    },
  });

  new Gauge({
    name: 'lockstep_build_info',
    help: 'Always 1; the labels say which Lockstep version runs on which Node.js.',
    labelNames: ['version', 'node'] as const,
    registers,
  }).set({ version: options.version ?? 'unknown', node: process.version }, 1);

  const resourceSources: (() => Iterable<ResourceState>)[] = [];
  const resources = function* (): Iterable<ResourceState> {
    for (const source of resourceSources) yield* source();
  };
  new Gauge({
    name: 'lockstep_resource_ready',
    help: '1 when the Ready condition of a KeyPolicy, EncryptedService or RotationSchedule is True for its current generation, else 0.',
    labelNames: ['kind', 'namespace', 'name'] as const,
    registers,
    collect() {
      this.reset();
      for (const r of resources()) this.set({ kind: r.kind, namespace: r.namespace, name: r.name }, r.ready ? 1 : 0);
    },
  });
  /** A per-service certificate time (Unix seconds) read from each EncryptedService's status at scrape time. */
  const certificateTimeGauge = (name: string, help: string, pick: (r: ResourceState) => number | undefined) => new Gauge({
    name, help, labelNames: ['namespace', 'service'] as const, registers,
    collect() {
      this.reset();
      for (const r of resources()) {
        const ms = pick(r);
        if (ms !== undefined) this.set({ namespace: r.namespace, service: r.name }, ms / 1000);
      }
    },
  });
  certificateTimeGauge('lockstep_certificate_expiry_timestamp_seconds',
    'notAfter of the certificate issued for each EncryptedService (Unix seconds), from its status.', (r) => r.certificateNotAfterMs);
  certificateTimeGauge('lockstep_certificate_renewal_timestamp_seconds',
    'When cert-manager is due to renew the certificate of each EncryptedService (Unix seconds), from its status; a time in the past means the renewal is late.',
    (r) => r.certificateRenewalMs);

  new Gauge({
    name: 'lockstep_key_rotation_period_seconds',
    help: 'Key rotation period of each KeyPolicy (spec.rotation.period): its newest key-encryption key should never be older.',
    labelNames: ['namespace', 'keypolicy'] as const,
    registers,
    collect() {
      this.reset();
      for (const r of resources()) {
        if (r.rotationPeriodSeconds !== undefined) this.set({ namespace: r.namespace, keypolicy: r.name }, r.rotationPeriodSeconds);
      }
    },
  });
  new Gauge({
    name: 'lockstep_rotation_phase',
    help: 'Always 1, for the phase each RotationSchedule is in (status.phase); the series of a phase it left is gone.',
    labelNames: ['namespace', 'name', 'phase'] as const,
    registers,
    collect() {
      this.reset();
      for (const r of resources()) if (r.phase !== undefined) this.set({ namespace: r.namespace, name: r.name, phase: r.phase }, 1);
    },
  });
  const caSources: (() => Iterable<CAState>)[] = [];
  new Gauge({
    name: 'lockstep_ca_expiry_timestamp_seconds',
    help: 'notAfter of each CA certificate the operator made (a KeyPolicy\'s managed root, a CA rotation\'s new CA), Unix seconds, from cert-manager\'s Certificate status.',
    labelNames: ['namespace', 'certificate', 'keypolicy'] as const,
    registers,
    collect() {
      this.reset();
      for (const source of caSources) {
        for (const ca of source()) this.set({ namespace: ca.namespace, certificate: ca.certificate, keypolicy: ca.keypolicy }, ca.notAfterMs / 1000);
      }
    },
  });

  /**
   * A counter per declared EncryptedService, reported at scrape time: every declared service has
   * a series from its first scrape on (at 0, so the first increase is seen by rate()), and a
   * deleted one's series goes away. Labels come from the cache of declared services, never from
   * a request, so the cardinality is the number of services.
   */
  const serviceCounter = (name: string, help: string): ((namespace: string, service: string) => void) => {
    const counts = new Map<string, number>();
    new Counter({
      name, help, labelNames: ['namespace', 'service'] as const, registers,
      collect() {
        this.reset();
        const declared = new Set<string>();
        for (const r of resources()) {
          if (r.kind !== 'EncryptedService') continue;
          const key = JSON.stringify([r.namespace, r.name]);
          declared.add(key);
          this.inc({ namespace: r.namespace, service: r.name }, counts.get(key) ?? 0);
        }
        for (const key of counts.keys()) if (!declared.has(key)) counts.delete(key);
      },
    });
    return (namespace, service) => {
      const key = JSON.stringify([namespace, service]);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    };
  };
  const countIdentityRequest = serviceCounter('lockstep_certificaterequest_identity_requests_total',
    'cert-manager CertificateRequests asking for the identity of each declared EncryptedService (its SPIFFE ID or DNS names), approved or denied; a rate far above renewals is a burst.');
  const countSansOutside = serviceCounter('lockstep_certificaterequest_sans_outside_total',
    'CertificateRequests claiming a declared EncryptedService\'s identity while asking for SANs outside the names its certificate carries (denied).');

  const servedNotAfter = new Map<string, { namespace: string; service: string; notAfterMs: number }>();
  new Gauge({
    name: 'lockstep_served_certificate_days_to_expiry',
    help: 'Days until the soonest-expiring certificate an endpoint of each EncryptedService actually serves expires (from continuous verification).',
    labelNames: ['namespace', 'service'] as const,
    registers,
    collect() {
      this.reset();
      const now = clock.now();
      for (const { namespace, service, notAfterMs } of servedNotAfter.values()) this.set({ namespace, service }, (notAfterMs - now) / 86_400_000);
    },
  });
  const servedDrift = new Gauge({
    name: 'lockstep_served_certificate_drift_endpoints',
    help: 'Endpoints of each EncryptedService serving a certificate other than the one issued into its Secret.',
    labelNames: ['namespace', 'service'] as const,
    registers,
  });
  const verificationViolations = new Gauge({
    name: 'lockstep_verification_violations',
    help: 'Endpoints failing a continuous-verification check, by service and kind.',
    labelNames: ['namespace', 'service', 'kind'] as const,
    registers,
  });

  return {
    registry,
    untrustedStores: new Gauge({
      name: 'lockstep_untrusted_envelope_stores',
      help: 'Secrets claiming to be envelope stores of a KeyPolicy that the operator did not write, by reason; ignored for key retirement and re-wrap.',
      labelNames: ['namespace', 'keypolicy', 'reason'] as const,
      registers,
    }),
    servedDrift,
    verificationViolations,
    probeDuration: new Histogram({
      name: 'lockstep_verification_probe_duration_seconds',
      help: 'Time to probe every endpoint of one EncryptedService, by resulting Verified reason.',
      labelNames: ['result'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    verificationRestarts: new Counter({
      name: 'lockstep_verification_restarts_total',
      help: 'Restarts of workloads that kept serving a replaced certificate after the grace period.',
      labelNames: ['namespace', 'service'] as const,
      registers,
    }),
    auditSuppressed: new Counter({
      name: 'lockstep_audit_events_suppressed_total',
      help: 'Tenant-triggered audit events (failed decrypts, policy violations) over the per-trail rate limit, counted into one suppressed entry per window.',
      labelNames: ['type'] as const,
      registers,
    }),
    auditDropped: new Counter({
      name: 'lockstep_audit_events_dropped_total',
      help: 'Audit events that could not be written because the trail does not match its recorded head (reason chain-broken).',
      labelNames: ['type', 'reason'] as const,
      registers,
    }),
    kubeThrottled: new Counter({
      name: 'lockstep_kube_throttled_total',
      help: 'API server answers 429 Too Many Requests, by API client and outcome (retried after Retry-After, or returned once the retries were spent).',
      labelNames: ['client', 'outcome'] as const,
      registers,
    }),
    kubeRateLimitWait: new Histogram({
      name: 'lockstep_kube_rate_limit_wait_seconds',
      help: 'Time each API request waited before it was sent: for a token of the client-side rate limit, and after a 429 until its Retry-After, by API client.',
      labelNames: ['client'] as const,
      buckets: WAIT_BUCKETS,
      registers,
    }),
    trackServedExpiry(namespace, service, notAfterMs) {
      servedNotAfter.set(JSON.stringify([namespace, service]), { namespace, service, notAfterMs });
    },
    reportResources(source) {
      resourceSources.push(source);
    },
    reportCAs(source) {
      caSources.push(source);
    },
    untrackServed(namespace, service) {
      servedNotAfter.delete(JSON.stringify([namespace, service]));
      servedDrift.remove({ namespace, service });
      for (const kind of VIOLATION_KINDS) verificationViolations.remove({ namespace, service, kind });
    },
    reconcileDuration: new Histogram({
      name: 'lockstep_reconcile_duration_seconds',
      help: 'Time taken by one reconcile, by controller and result (success, requeue, error, terminal).',
      labelNames: ['controller', 'result'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    workqueueDepth: new Gauge({
      name: 'lockstep_workqueue_depth',
      help: 'Keys waiting to be reconciled, by controller.',
      labelNames: ['controller'] as const,
      registers,
    }),
    workqueueAdds: new Counter({
      name: 'lockstep_workqueue_adds_total',
      help: 'Keys that became pending in the work queue, by controller (a key already pending is not counted again).',
      labelNames: ['controller'] as const,
      registers,
    }),
    workqueueRetries: new Counter({
      name: 'lockstep_workqueue_retries_total',
      help: 'Failed reconciles scheduled again with per-key backoff, by controller.',
      labelNames: ['controller'] as const,
      registers,
    }),
    workqueueRequeues: new Counter({
      name: 'lockstep_workqueue_requeues_total',
      help: 'Reconciles that asked for a timed re-check (requeue after), by controller.',
      labelNames: ['controller'] as const,
      registers,
    }),
    workqueueQueueDuration: new Histogram({
      name: 'lockstep_workqueue_queue_duration_seconds',
      help: 'How long a key waited in the work queue, ready, before a worker took it.',
      labelNames: ['controller'] as const,
      buckets: WAIT_BUCKETS,
      registers,
    }),
    workqueueWorkDuration: new Histogram({
      name: 'lockstep_workqueue_work_duration_seconds',
      help: 'How long a worker took to process a key taken from the work queue, by controller.',
      labelNames: ['controller'] as const,
      buckets: WAIT_BUCKETS,
      registers,
    }),
    eventToWrite: new Histogram({
      name: 'lockstep_event_to_write_seconds',
      help: 'From the watch event that queued a key to the first write of the reconcile that took it, by controller and written resource.',
      labelNames: ['controller', 'resource'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'lockstep_reconcile_errors_total',
      help: 'Failed reconciles, by controller and reason.',
      labelNames: ['controller', 'reason'] as const,
      registers,
    }),
    reconcileFailing: new Gauge({
      name: 'lockstep_reconcile_failing_objects',
      help: 'Objects whose last reconcile failed with a retryable error (or had a write refused) and wait for a retry, by controller and the reason of their last failure.',
      labelNames: ['controller', 'reason'] as const,
      registers,
    }),
    children: new Gauge({
      name: 'lockstep_children',
      help: 'Objects generated and owned by the operator, by kind.',
      labelNames: ['kind'] as const,
      registers,
    }),
    certificateRequestDecisions: new Counter({
      name: 'lockstep_certificaterequest_decisions_total',
      help: 'cert-manager CertificateRequests approved or denied by Lockstep\'s approver, by decision and reason.',
      labelNames: ['decision', 'reason'] as const,
      registers,
    }),
    certificateRequestsUnmatched: new Counter({
      name: 'lockstep_certificaterequest_unmatched_identity_total',
      help: 'CertificateRequests claiming a Lockstep identity that matches no declared EncryptedService (denied), by the namespace of the request.',
      labelNames: ['namespace'] as const,
      registers,
    }),
    countIdentityRequest,
    countSansOutside,
    kekGenerations: new Counter({
      name: 'lockstep_kek_generations_total',
      help: 'Key-encryption keys generated by KeyPolicies, by trigger (period, on-demand, algorithm-change).',
      labelNames: ['trigger'] as const,
      registers,
    }),
    rotations: new Counter({
      name: 'lockstep_rotations_total',
      help: 'RotationSchedule rotations that ended, by what they rotated and outcome (Completed, RolledBack, Failed).',
      labelNames: ['kind', 'outcome'] as const,
      registers,
    }),
    rotationDuration: new Histogram({
      name: 'lockstep_rotation_duration_seconds',
      help: 'Wall-clock time of a rotation from start to completion, by what was rotated.',
      labelNames: ['kind'] as const,
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 14_400],
      registers,
    }),
    keyAge,
    leader: new Gauge({
      name: 'lockstep_leader',
      help: '1 if this replica holds the leader election Lease, else 0.',
      registers,
    }),
    apiserverReachable: new Gauge({
      name: 'lockstep_apiserver_reachable',
      help: '0 from a request to the API server that got no answer (refused, reset, or none within the request timeout) until its /readyz answers 200 again, else 1.',
      registers,
    }),
    dependencyMissing: new Gauge({
      name: 'lockstep_dependency_missing',
      help: '1 while a dependency (cert-manager) is not served by the API server: what needs it reports a condition, the rest keeps working.',
      labelNames: ['dependency'] as const,
      registers,
    }),
    trackKeyAge(labels, createdAtMs) {
      keyCreated.set(keyId(labels), { labels: { ...labels }, createdAtMs });
    },
    untrackKeyAge(labels) {
      keyCreated.delete(keyId(labels));
    },
  };
}
