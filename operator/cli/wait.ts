// The polling loop behind --wait flags: ask until an answer comes or the timeout passes.
import { CliError, EXIT, sleepFor, type CliIo } from './io.js';
import { durationFlag } from './kube-flags.js';

/**
 * Calls `probe` every `intervalMs` until it returns a value (not undefined), and returns it;
 * after `timeoutMs` throws a CliError (exit 1) that says what was awaited and the last state.
 */
export async function waitFor<T>(io: CliIo, what: string, timeoutMs: number, intervalMs: number, probe: () => Promise<{ done?: T; state: string }>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { done, state } = await probe();
    if (done !== undefined) return done;
    if (Date.now() >= deadline) throw new CliError(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what} (last: ${state})`, EXIT.notReady);
    await sleepFor(io, Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/** parseArgs options of a command that can wait: --wait, --timeout (default given), --interval. */
export const waitOptions = (timeout: string) => ({
  wait: { type: 'boolean' },
  timeout: { type: 'string', default: timeout },
  interval: { type: 'string', default: '2s' },
} as const);

/** --timeout and --interval in ms. */
export const waitTimes = (values: { timeout: string; interval: string }): { timeout: number; interval: number } =>
  ({ timeout: durationFlag('--timeout', values.timeout), interval: durationFlag('--interval', values.interval) });
