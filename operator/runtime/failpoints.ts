// Crash points for tests of "survives a SIGKILL between any two writes". LOCKSTEP_FAILPOINTS names
// points (comma-separated) at which the process kills itself with SIGKILL, the way a node loss or
// an OOM kill ends a pod: no finally blocks, no status write, no lease release. Unset in every
// real deployment; reading it costs one lookup per point reached.
const POINTS = new Set((process.env.LOCKSTEP_FAILPOINTS ?? '').split(',').map((p) => p.trim()).filter(Boolean));

/** The points the operator defines; e2e tests name them in LOCKSTEP_FAILPOINTS. */
export const Failpoints = {
  /** A workload restart was written; the rotation status recording it was not. */
  AfterRestart: 'rotation.after-restart',
  /** The rotated issuer now signs with the new CA; the status saying so was not written. */
  AfterIssuerSwitch: 'rotation.after-issuer-switch',
  /** A rollback restored a target's previous certificate; the status was not written. */
  AfterRestore: 'rotation.after-restore',
  /** A revoked serial is on its CA's list and CRL; the status moving the request on was not written. */
  AfterCrlListed: 'revocation.after-crl-listed',
  /** cert-manager was asked to re-key a revoked service (and the audit entry written); its status was not. */
  AfterReissueAsked: 'revocation.after-reissue-asked',
} as const;

export function failpoint(name: string): void {
  if (!POINTS.has(name)) return;
  process.stderr.write(`{"level":"warn","msg":"failpoint reached: SIGKILL","failpoint":"${name}"}\n`);
  process.kill(process.pid, 'SIGKILL');
}
