// `lockstep rotate SCHEDULE`: asks a RotationSchedule for a rotation now through its
// lockstep.dev/rotate-now annotation (a fresh value each time: the operator serves each value
// once) and, with --wait, follows it to its outcome in status.history.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ANNOTATION_ROTATE_NOW, type RotationHistoryEntry } from '../api/v1alpha1/index.js';
import { isPaused } from '../rotationschedule/trigger.js';
import { CliError, EXIT, type CliIo } from './io.js';
import { contextNamespace } from './kube-flags.js';
import { annotateSchedule, readSchedule } from './schedules.js';
import { waitFor, waitOptions, waitTimes } from './wait.js';

export const ROTATE_USAGE = `Usage: lockstep rotate SCHEDULE [-n NAMESPACE] [--wait [--timeout 15m]]
Starts a rotation of RotationSchedule SCHEDULE now: sets its ${ANNOTATION_ROTATE_NOW} annotation to a
fresh value (maintenance windows do not hold it back; a paused schedule starts it when resumed).
--wait follows the rotation to its end: exit 0 when it Completed, 1 when it RolledBack or Failed
(with the reason) or the timeout passed.
`;

/** A value never used before: the operator starts one rotation per distinct value. */
export const freshRotateNowValue = (now = new Date()): string => `${now.toISOString()}-${randomBytes(3).toString('hex')}`;

export async function rotateCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      namespace: { type: 'string', short: 'n' },
      ...waitOptions('15m'),
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    io.out(ROTATE_USAGE);
    return EXIT.ok;
  }
  const [name, ...extra] = positionals;
  if (!name || extra.length > 0) throw new CliError(`give exactly one RotationSchedule\n${ROTATE_USAGE}`, EXIT.usage);
  const { timeout, interval } = waitTimes(values);
  const kc = io.kubeConfig();
  const namespace = values.namespace ?? contextNamespace(kc);
  const before = await readSchedule(kc, namespace, name);
  const known = new Set((before.status?.history ?? []).map((h) => h.rotationId));
  const value = freshRotateNowValue();
  const after = await annotateSchedule(kc, namespace, name, ANNOTATION_ROTATE_NOW, value);
  io.out(`rotationschedule ${namespace}/${name}: rotation requested (${ANNOTATION_ROTATE_NOW}=${value})\n`);
  if (isPaused(after.spec, after.metadata.annotations)) {
    io.err(`warning: ${namespace}/${name} is paused: the rotation starts when it is resumed (lockstep resume ${name})\n`);
  }
  if (!values.wait) return EXIT.ok;

  const outcome = await waitFor<RotationHistoryEntry>(io, `the rotation of ${namespace}/${name}`, timeout, interval, async () => {
    const rs = await readSchedule(kc, namespace, name);
    const status = rs.status ?? {};
    const started = status.lastRotateNow === value;
    const done = started ? status.history?.find((h) => !known.has(h.rotationId)) : undefined;
    const state = started ? `phase ${status.phase ?? '?'}, rotation ${status.rotationId ?? '?'} step ${(status.currentStep ?? 0) + 1}` : `not started yet (phase ${status.phase ?? '?'})`;
    return done ? { done, state } : { state };
  });
  io.out(`rotation ${outcome.rotationId}: ${outcome.outcome}${outcome.message ? ` — ${outcome.message}` : ''}\n`);
  return outcome.outcome === 'Completed' ? EXIT.ok : EXIT.notReady;
}
