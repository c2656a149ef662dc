// `lockstep status`: the encryption health of a namespace or the cluster, from the status the
// operator writes (report and renderings in status-report.ts); --watch re-prints on change.
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import {
  ENCRYPTED_SERVICE, GROUP, KEY_POLICY, ROTATION_SCHEDULE, VERSION,
  type EncryptedService, type KeyPolicy, type RotationSchedule,
} from '../api/v1alpha1/index.js';
import { isNotFound } from '../runtime/api-error.js';
import { CliError, EXIT, sleepFor, type CliIo } from './io.js';
import { contextNamespace, durationFlag } from './kube-flags.js';
import { OUTPUT_FORMATS, renderStatus, statusReport, type OutputFormat, type StatusReport } from './status-report.js';

export { formatStatus } from './status-report.js';

export const STATUS_USAGE = `Usage: lockstep status [-n NAMESPACE | -A] [-o wide|json|yaml] [--watch [--interval 2s]]
Shows, per EncryptedService, whether it is Ready and encrypted in transit, access-restricted,
encrypted at rest and its secrets sealed, whether its endpoints were verified (what they serve,
mTLS enforced, plaintext refused, TLS policy), with its certificate expiry and the reason of
anything not ready; then the KeyPolicies (active key) and RotationSchedules (phase, next rotation).
  -o wide     adds certificate renewal, SPIFFE ID, key ids, sealing key thumbprint, rotation step, messages
  -o json     the same report as JSON ({healthy, services, keyPolicies, rotationSchedules}); -o yaml as YAML
  -w, --watch re-prints whenever the report changes (polling every --interval); Ctrl-C ends it
Exit code 0 when everything shown is Ready, 1 when anything is not Ready or a service's endpoints
failed verification (with --watch: of the last report), 3 when the cluster could not be reached.
`;

async function list<T>(custom: k8s.CustomObjectsApi, plural: string, namespace: string | undefined): Promise<T[]> {
  try {
    const res = namespace
      ? await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural })
      : await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural });
    return (res as { items: T[] }).items;
  } catch (err) {
    if (isNotFound(err)) throw new CliError(`the API server does not serve ${plural}.${GROUP}/${VERSION}: Lockstep's CRDs are not installed (kubectl apply -k manifests/)`);
    throw err;
  }
}

/** The report for a namespace (undefined: every namespace), read from the API server. */
export async function readStatusReport(kc: k8s.KubeConfig, namespace: string | undefined): Promise<StatusReport> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const [services, policies, schedules] = await Promise.all([
    list<EncryptedService>(custom, ENCRYPTED_SERVICE.plural, namespace),
    list<KeyPolicy>(custom, KEY_POLICY.plural, namespace),
    list<RotationSchedule>(custom, ROTATION_SCHEDULE.plural, namespace),
  ]);
  return statusReport({ services, policies, schedules });
}

/** -o: kubectl's names; the default is the table. */
export function outputFormat(value: string | undefined, allowed: readonly OutputFormat[] = OUTPUT_FORMATS): OutputFormat {
  const format = (value ?? 'table') as OutputFormat;
  if (!allowed.includes(format)) throw new CliError(`-o ${value}: use one of ${allowed.filter((f) => f !== 'table').join(', ')}`, EXIT.usage);
  return format;
}

export async function statusCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      namespace: { type: 'string', short: 'n' },
      'all-namespaces': { type: 'boolean', short: 'A' },
      output: { type: 'string', short: 'o' },
      watch: { type: 'boolean', short: 'w' },
      interval: { type: 'string', default: '2s' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    io.out(STATUS_USAGE);
    return EXIT.ok;
  }
  if (positionals.length > 0) throw new CliError(`status takes no arguments (got ${positionals.join(' ')})\n${STATUS_USAGE}`, EXIT.usage);
  const format = outputFormat(values.output);
  const interval = durationFlag('--interval', values.interval);
  const kc = io.kubeConfig();
  const namespace = values['all-namespaces'] ? undefined : (values.namespace ?? contextNamespace(kc));
  let report = await readStatusReport(kc, namespace);
  let shown = renderStatus(report, format);
  io.out(shown);
  if (!values.watch) return report.healthy ? EXIT.ok : EXIT.notReady;

  const interrupted = io.interrupted?.() ?? new Promise<void>(() => undefined);
  let stop = false;
  void interrupted.then(() => { stop = true; });
  while (!stop) {
    await Promise.race([sleepFor(io, interval), interrupted]);
    if (stop) break;
    report = await readStatusReport(kc, namespace);
    const text = renderStatus(report, format);
    if (text === shown) continue;
    shown = text;
    io.out(`${format === 'yaml' ? '---\n' : format === 'json' ? '' : `\n# ${new Date().toISOString()}\n`}${text}`);
  }
  return report.healthy ? EXIT.ok : EXIT.notReady;
}
