// `lockstep pause|resume SCHEDULE`: the lockstep.dev/paused annotation the operator already reads
// (like spec.paused, but without editing a GitOps-managed spec). resume cannot lift spec.paused.
import { parseArgs } from 'node:util';
import { ANNOTATION_PAUSED } from '../api/v1alpha1/index.js';
import { CliError, EXIT, type CliIo } from './io.js';
import { contextNamespace } from './kube-flags.js';
import { annotateSchedule, readSchedule } from './schedules.js';

export const PAUSE_USAGE = `Usage: lockstep pause SCHEDULE [-n NAMESPACE]
       lockstep resume SCHEDULE [-n NAMESPACE]
pause sets annotation ${ANNOTATION_PAUSED}: "true" on RotationSchedule SCHEDULE: no rotation starts
(an emergency still does) and a rotation in progress stops before its next step. resume removes
it. A schedule whose spec.paused is true stays paused: change the spec where it is managed (exit 1).
`;

function scheduleArgs(argv: readonly string[]): { name: string; namespace?: string; help: boolean } {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { namespace: { type: 'string', short: 'n' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  if (values.help) return { name: '', help: true };
  if (positionals.length !== 1) throw new CliError(`give exactly one RotationSchedule\n${PAUSE_USAGE}`, EXIT.usage);
  return { name: positionals[0] ?? '', ...(values.namespace ? { namespace: values.namespace } : {}), help: false };
}

async function setPaused(argv: readonly string[], io: CliIo, paused: boolean): Promise<number> {
  const args = scheduleArgs(argv);
  if (args.help) {
    io.out(PAUSE_USAGE);
    return EXIT.ok;
  }
  const kc = io.kubeConfig();
  const namespace = args.namespace ?? contextNamespace(kc);
  await readSchedule(kc, namespace, args.name);
  const rs = await annotateSchedule(kc, namespace, args.name, ANNOTATION_PAUSED, paused ? 'true' : null);
  const ref = `rotationschedule ${namespace}/${args.name}`;
  if (!paused && rs.spec.paused === true) {
    io.err(`error: ${ref}: annotation removed, but spec.paused is true: it stays paused until the spec changes\n`);
    return EXIT.notReady;
  }
  io.out(`${ref} ${paused ? 'paused' : 'resumed'}\n`);
  return EXIT.ok;
}

export const pauseCommand = (argv: readonly string[], io: CliIo): Promise<number> => setPaused(argv, io, true);
export const resumeCommand = (argv: readonly string[], io: CliIo): Promise<number> => setPaused(argv, io, false);
