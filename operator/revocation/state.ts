// The revocation of one EncryptedService's certificate as a persisted state machine. A request
// (annotation lockstep.dev/revoke, one value per request) moves Revoking -> Reissuing ->
// Completed (or Failed, with a reason). Each step's side effect is idempotent or guarded by what
// status recorded before it, so a restart between any two writes resumes and never repeats one:
//   Revoking:  the serial is added to the CA's durable revocation list and the CRL republished
//              (the list is keyed by serial: a second add is a no-op);
//   Reissuing: cert-manager is asked for a new key and certificate (only while the Secret still
//              holds the revoked serial and nothing is issuing), then awaited, quarantined;
//   Completed: the new serial is issued (and served, where the service has endpoints).
import type { RevocationPhase, RevocationStatus } from '../api/v1alpha1/index.js';
import type { RevocationReason } from './crl.js';
import { isRevocationReason, normalSerial } from './crl.js';

export type { RevocationPhase, RevocationStatus };

export interface RevocationInput {
  /** metadata.annotations['lockstep.dev/revoke']. */
  request: string | undefined;
  /** metadata.annotations['lockstep.dev/revoke-reason'], keyCompromise when absent. */
  reason: string | undefined;
  status: RevocationStatus | undefined;
  /** Serial of the certificate in the service's TLS Secret now. */
  currentSerial: string | undefined;
  /** Whether that certificate names this service (its DNS name) and so may be revoked at its request. */
  currentNamesService: boolean;
  /** cert-manager's Certificate: issuing now, and Ready. */
  issuing: boolean;
  ready: boolean;
  /** The served certificate, where the service has endpoints: undefined when none answers. */
  served: 'new' | 'old' | 'none' | undefined;
  now: Date;
  /** Longest a re-issuance may take before the request ends Failed. */
  reissueTimeoutMs: number;
}

export type RevocationStep =
  | { kind: 'idle' }
  /** Write status only (the first write of a request, or a terminal one). */
  | { kind: 'record'; status: RevocationStatus; event: { type: 'Normal' | 'Warning'; reason: string; message: string } }
  /** Add the serial to the CA's list and publish the CRL, then record `status`. */
  | { kind: 'publish'; serial: string; reason: RevocationReason; status: RevocationStatus }
  /** Ask cert-manager for a new certificate (guarded by `serial` still being the current one), then record. */
  | { kind: 'reissue'; serial: string; status: RevocationStatus }
  /** Nothing to do until the new certificate is issued and served; look again later. */
  | { kind: 'wait'; message: string };

const stamp = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export function isTerminal(phase: RevocationPhase | undefined): boolean {
  return phase === 'Completed' || phase === 'Failed';
}

export function nextRevocationStep(input: RevocationInput): RevocationStep {
  const previous = input.status ?? {};
  const request = input.request?.trim();
  if (!request) return { kind: 'idle' };

  if (request !== previous.request) {
    const base: RevocationStatus = { request, requestedAt: stamp(input.now), quarantined: false };
    const failed = (outcome: string, message: string): RevocationStep => ({
      kind: 'record',
      status: { ...base, phase: 'Failed', outcome, message, completedAt: stamp(input.now) },
      event: { type: 'Warning', reason: outcome, message: `revocation ${request}: ${message}` },
    });
    const reason = input.reason?.trim() || 'keyCompromise';
    if (!isRevocationReason(reason)) {
      return failed('InvalidRevocationReason', `lockstep.dev/revoke-reason ${JSON.stringify(reason)} is not a CRL reason (keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, unspecified); nothing was revoked`);
    }
    if (!input.currentSerial) return failed('NoCertificate', 'the service has no issued certificate to revoke; nothing was revoked');
    if (!input.currentNamesService) {
      return failed('NotThisService', `the certificate in the service's TLS Secret (serial ${input.currentSerial}) does not name this service: it is not revoked at this service's request`);
    }
    // Quarantined from the first write: the key is compromised now, not once the CRL is out.
    return {
      kind: 'record',
      status: { ...base, phase: 'Revoking', reason, revokedSerial: input.currentSerial, quarantined: true, message: `revoking certificate ${input.currentSerial} (${reason})` },
      event: { type: 'Warning', reason: 'RevocationRequested', message: `revocation ${request}: certificate ${input.currentSerial} (${reason}) is being revoked; the workload is quarantined until it serves a new certificate` },
    };
  }

  if (isTerminal(previous.phase)) return { kind: 'idle' };
  const serial = previous.revokedSerial ?? '';

  if (previous.phase === 'Revoking') {
    return { kind: 'publish', serial, reason: previous.reason ?? 'keyCompromise', status: { ...previous, phase: 'Reissuing', message: `certificate ${serial} revoked; re-issuing a new key and certificate` } };
  }

  // Reissuing.
  const replaced = input.currentSerial !== undefined && normalSerial(input.currentSerial) !== normalSerial(serial);
  if (!previous.reissueRequested && !replaced) {
    return { kind: 'reissue', serial, status: { ...previous, reissueRequested: true } };
  }
  const elapsed = input.now.getTime() - Date.parse(previous.requestedAt ?? input.now.toISOString());
  if (replaced && input.ready && !input.issuing && input.served !== 'old') {
    const served = input.served === 'new' ? 'served by every endpoint' : 'issued (the service has no ready endpoint to check)';
    return {
      kind: 'record',
      status: {
        ...previous, phase: 'Completed', newSerial: input.currentSerial, quarantined: false, outcome: 'Revoked', completedAt: stamp(input.now),
        message: `certificate ${serial} revoked${previous.crlPublished ? ' and listed on the published CRL' : ' (no CRL: the issuer is not a CA Lockstep signs for)'}; new certificate ${input.currentSerial} ${served}; quarantine lifted`,
      },
      event: { type: 'Normal', reason: 'RevocationCompleted', message: `revocation ${previous.request}: certificate ${serial} revoked, new certificate ${input.currentSerial} ${served}, quarantine lifted after ${Math.round(elapsed / 100) / 10} s` },
    };
  }
  if (elapsed > input.reissueTimeoutMs) {
    const message = replaced
      ? `the new certificate ${input.currentSerial} was not served by every endpoint within ${input.reissueTimeoutMs / 1000} s; the workload stays quarantined: restart it so it loads the new certificate, then set a new lockstep.dev/revoke value (it re-keys once more and lifts the quarantine when served)`
      : `cert-manager issued no new certificate within ${input.reissueTimeoutMs / 1000} s; the workload stays quarantined and ${serial} stays revoked`;
    return {
      kind: 'record',
      status: { ...previous, phase: 'Failed', outcome: replaced ? 'NewCertificateNotServed' : 'ReissueTimedOut', completedAt: stamp(input.now), message },
      event: { type: 'Warning', reason: replaced ? 'NewCertificateNotServed' : 'ReissueTimedOut', message: `revocation ${previous.request}: ${message}` },
    };
  }
  return { kind: 'wait', message: replaced ? `new certificate ${input.currentSerial} issued; waiting until it is ready and served` : 'waiting for cert-manager to issue the new certificate' };
}
