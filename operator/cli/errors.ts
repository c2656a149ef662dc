// The CLI's exit codes and the error a command throws for a failure the user can act on.

/** Exit codes of every command (documented in `lockstep --help` and the README). */
export const EXIT = {
  ok: 0,
  /** Something shown is not Ready, a rotation rolled back or failed, or any other failure. */
  notReady: 1,
  /** Unknown command or flag, missing or malformed argument. */
  usage: 2,
  /** Could not talk to the cluster: no or bad kubeconfig, unknown context, unreachable or refusing API server, request timeout. */
  unreachable: 3,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0  ok (with status and check: everything shown is Ready)
  1  not Ready, a rotation rolled back or failed, or another failure
  2  usage error (unknown command or flag, missing argument)
  3  could not talk to the cluster (bad or missing kubeconfig, unknown context,
     unreachable API server, credentials refused, request timeout)
`;

/** A failure the user can act on: printed without a stack, exit code 1 unless given. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(message: string, readonly exitCode: number = EXIT.notReady) {
    super(message);
  }
}
