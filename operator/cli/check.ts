// `lockstep check SERVICE`: for scripts — exit 0 when EncryptedService SERVICE is Ready at its
// current generation and its endpoints did not fail verification; --wait polls until it is.
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { ENCRYPTED_SERVICE, GROUP, VERSION, type EncryptedService } from '../api/v1alpha1/index.js';
import { isNotFound } from '../runtime/api-error.js';
import { CliError, EXIT, type CliIo } from './io.js';
import { contextNamespace } from './kube-flags.js';
import { statusReport } from './status-report.js';
import { waitFor, waitOptions, waitTimes } from './wait.js';

export const CHECK_USAGE = `Usage: lockstep check SERVICE [-n NAMESPACE] [--wait [--timeout 5m]]
Exit 0 when EncryptedService SERVICE is Ready for its current spec (status.observedGeneration is
metadata.generation) and its endpoints did not fail verification; 1 otherwise, with the reason.
--wait polls (--interval, 2s) until it is, or exits 1 after --timeout.
`;

/** Why the service is not ready yet, or '' when it is. */
export function notReadyBecause(es: EncryptedService | undefined): string {
  if (!es) return 'not found';
  const generation = es.metadata.generation;
  if (generation !== undefined && es.status?.observedGeneration !== generation) {
    return `the operator has not reconciled generation ${generation} yet (observed ${es.status?.observedGeneration ?? 'none'})`;
  }
  const [row] = statusReport({ services: [es], policies: [], schedules: [] }).services;
  return row?.reason ? `${row.reason}: ${row.message}` : '';
}

export async function checkCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      namespace: { type: 'string', short: 'n' },
      ...waitOptions('5m'),
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    io.out(CHECK_USAGE);
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new CliError(`give exactly one EncryptedService\n${CHECK_USAGE}`, EXIT.usage);
  const name = positionals[0] ?? '';
  const { timeout, interval } = waitTimes(values);
  const kc = io.kubeConfig();
  const namespace = values.namespace ?? contextNamespace(kc);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const probe = async () => {
    let es: EncryptedService | undefined;
    try {
      es = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: ENCRYPTED_SERVICE.plural, namespace, name })) as EncryptedService;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const because = notReadyBecause(es);
    return because ? { state: because } : { done: true, state: 'Ready' };
  };
  const ref = `encryptedservice ${namespace}/${name}`;
  if (values.wait) {
    await waitFor(io, `${ref} to be Ready`, timeout, interval, probe);
  } else {
    const { state, done } = await probe();
    if (!done) {
      io.err(`${ref} is not Ready: ${state}\n`);
      return EXIT.notReady;
    }
  }
  io.out(`${ref} is Ready\n`);
  return EXIT.ok;
}
