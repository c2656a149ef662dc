// Pure decisions of continuous verification: what to expect of a service's endpoints (from its
// TLS Secret, the namespace's trust bundle and its KeyPolicy), when to probe it next, and whether
// a workload that keeps serving a replaced certificate is restarted now.
import { X509Certificate } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import {
  serviceNameOf, withEncryptedServiceDefaults,
  type EncryptedService, type KeyPolicy, type RestartTarget, type RotationSchedule, type VerificationStatus,
} from '../api/v1alpha1/index.js';
import { spiffeId } from '../encryptedservice/certificate.js';
import { splitPem } from '../encryptedservice/trust-bundle.js';
import { inRotation } from '../rotationschedule/state-machine.js';
import type { ClientIdentity, TlsExpectation } from '../rotationschedule/tls-verification.js';
import type { Issued, Verdict } from './judge.js';

export interface ProbeTarget {
  issued: Issued;
  /** No serial: what is served is compared with `issued` by the judge, not refused by the handshake. */
  expectation: TlsExpectation;
  /** The service's own certificate and key: a server requiring mTLS from its peers accepts it. */
  client: ClientIdentity;
}

/** What the endpoints must show, or why there is nothing to compare them with yet. */
export function probeTarget(
  es: EncryptedService, secret: V1Secret | undefined, bundle: string | undefined, policy: KeyPolicy | undefined,
): ProbeTarget | { pending: string } {
  const name = es.metadata.name ?? '';
  const cert = secret?.data?.['tls.crt'];
  const key = secret?.data?.['tls.key'];
  if (!cert || !key) return { pending: `Secret ${secret?.metadata?.name ?? `${name}-tls`} holds no certificate yet` };
  const roots = splitPem(bundle);
  if (roots.length === 0) return { pending: 'the namespace trust bundle holds no roots yet' };
  const certPem = Buffer.from(cert, 'base64').toString('utf8');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certPem);
  } catch {
    return { pending: `Secret ${secret?.metadata?.name ?? ''} holds no readable certificate` };
  }
  const service = serviceNameOf(es);
  return {
    issued: {
      serial: leaf.serialNumber.toUpperCase(),
      notBeforeMs: Date.parse(leaf.validFrom),
      notAfterMs: Date.parse(leaf.validTo),
      spiffeId: spiffeId(es),
    },
    expectation: { roots, servername: `${service}.${es.metadata.namespace}.svc`, policy: policy?.spec.tls ?? {} },
    client: { cert: certPem, key: Buffer.from(key, 'base64').toString('utf8') },
  };
}

/** The wait before the next probe: the period, moved by up to a tenth either way so that
 * services created together do not stay probed together. `random` is in [0, 1). */
export function jittered(periodMs: number, random: number): number {
  return Math.round(periodMs * (0.9 + 0.2 * random));
}

/**
 * When a service whose endpoints still serve the previous certificate within the grace period
 * should be probed again: as the grace ends (so a restart is not a whole period late), or at the
 * next period, whichever comes first.
 */
export function nextProbeAfter(verdict: Verdict, issued: Issued | undefined, now: number, periodMs: number, graceMs: number, random: number): number {
  const regular = jittered(periodMs, random);
  if (!issued || verdict.drift === 0 || verdict.stalePastGrace) return regular;
  return Math.max(1_000, Math.min(regular, issued.notBeforeMs + graceMs - now + 1_000));
}

/** The RotationSchedule whose open rotation has this service among its targets: it owns restarts. */
export function rotationOwner(schedules: readonly RotationSchedule[], namespace: string, name: string): string | undefined {
  return schedules.find((rs) => rs.metadata.namespace === namespace && rs.status && inRotation(rs.status)
    && (rs.status.targets ?? []).some((t) => t.namespace === namespace && t.name === name))?.metadata.name;
}

export type RestartDecision =
  | { action: 'none'; why: string }
  /** Record `serial` in status, then restart. */
  | { action: 'restart'; target: RestartTarget; serial: string }
  /** A restart for this serial is recorded: send that same write again (a no-op when it landed
   * before a crash), once per operator process. */
  | { action: 'resend'; target: RestartTarget; value: string };

export interface RestartInput {
  es: EncryptedService;
  verdict: Verdict;
  issuedSerial: string;
  /** status.verification as the API server holds it. */
  record: VerificationStatus | undefined;
  /** Schedule whose open rotation handles this service. */
  rotation: string | undefined;
  /** This process already sent the recorded restart. */
  resent: boolean;
}

export function decideRestart(input: RestartInput): RestartDecision {
  const target = withEncryptedServiceDefaults(input.es.spec).workload.restart;
  if (!input.verdict.stalePastGrace) return { action: 'none', why: 'no endpoint serves a replaced certificate past the grace period' };
  if (!target || target.hotReload !== false) return { action: 'none', why: 'the workload reloads its certificate itself (spec.workload.restart.hotReload is not false)' };
  if (input.rotation) return { action: 'none', why: `RotationSchedule ${input.rotation} is rotating this service and owns its restarts` };
  if (input.record?.restartedForSerial === input.issuedSerial) {
    if (input.resent || !input.record.restartedAt) return { action: 'none', why: `already restarted for ${input.issuedSerial}` };
    return { action: 'resend', target, value: input.record.restartedAt };
  }
  return { action: 'restart', target, serial: input.issuedSerial };
}

/** At most `max` restarts started within any `windowMs`, across all services: remediation of
 * many services after one renewal wave rolls in batches, not all at once. */
export class RestartBudget {
  private readonly started: number[] = [];

  constructor(private readonly max: number, private readonly windowMs: number) {}

  /** Takes one restart if the window has room; otherwise the caller retries later. */
  take(now: number): boolean {
    while (this.started.length > 0 && this.started[0]! <= now - this.windowMs) this.started.shift();
    if (this.started.length >= this.max) return false;
    this.started.push(now);
    return true;
  }

  /** Milliseconds until the window has room again. */
  waitMs(now: number): number {
    const oldest = this.started[0];
    return oldest === undefined || this.started.length < this.max ? 0 : Math.max(0, oldest + this.windowMs - now);
  }
}
