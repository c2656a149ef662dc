// `lockstep revoke SERVICE`: revokes an EncryptedService's current certificate through its
// lockstep.dev/revoke annotation (a fresh request id each time: the operator serves each value
// once; GitOps sets the same annotation in the manifest) and, with --wait, follows it in
// status.revocation to Completed or Failed.
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import {
  ANNOTATION_REVOKE, ANNOTATION_REVOKE_REASON, ENCRYPTED_SERVICE, GROUP, VERSION, type EncryptedService, type RevocationStatus,
} from '../api/v1alpha1/index.js';
import { isRevocationReason } from '../revocation/crl.js';
import { isNotFound } from '../runtime/api-error.js';
import { CliError, EXIT, type CliIo } from './io.js';
import { contextNamespace } from './kube-flags.js';
import { freshRotateNowValue } from './rotate.js';
import { waitFor, waitOptions, waitTimes } from './wait.js';

export const REVOKE_USAGE = `Usage: lockstep revoke SERVICE [-n NAMESPACE] [--reason keyCompromise] [--wait [--timeout 10m]]
Revokes the certificate EncryptedService SERVICE holds now: sets its ${ANNOTATION_REVOKE} annotation to a
fresh request id (and ${ANNOTATION_REVOKE_REASON}). The operator lists the serial on the CRL it publishes
with the trust bundle (CAs it can sign for), re-keys the service at once (no maintenance window),
and quarantines the workload with a NetworkPolicy until it serves its new certificate.
--reason: keyCompromise (default), cACompromise, affiliationChanged, superseded,
cessationOfOperation or unspecified. --wait: exit 0 when Completed, 1 when Failed or timed out.
`;

async function annotate(kc: k8s.KubeConfig, namespace: string, name: string, annotations: Record<string, string>): Promise<EncryptedService> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  try {
    return (await custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, plural: ENCRYPTED_SERVICE.plural, namespace, name, body: { metadata: { annotations } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    )) as EncryptedService;
  } catch (err) {
    if (isNotFound(err)) throw new CliError(`EncryptedService ${namespace}/${name} not found`);
    throw err;
  }
}

async function read(kc: k8s.KubeConfig, namespace: string, name: string): Promise<EncryptedService> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  try {
    return (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: ENCRYPTED_SERVICE.plural, namespace, name })) as EncryptedService;
  } catch (err) {
    if (isNotFound(err)) throw new CliError(`EncryptedService ${namespace}/${name} not found`);
    throw err;
  }
}

export async function revokeCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      namespace: { type: 'string', short: 'n' },
      reason: { type: 'string', default: 'keyCompromise' },
      ...waitOptions('10m'),
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    io.out(REVOKE_USAGE);
    return EXIT.ok;
  }
  const [name, ...extra] = positionals;
  if (!name || extra.length > 0) throw new CliError(`give exactly one EncryptedService\n${REVOKE_USAGE}`, EXIT.usage);
  const reason = values.reason ?? 'keyCompromise';
  if (!isRevocationReason(reason)) throw new CliError(`--reason ${reason} is not a CRL reason\n${REVOKE_USAGE}`, EXIT.usage);
  const { timeout, interval } = waitTimes(values);
  const kc = io.kubeConfig();
  const namespace = values.namespace ?? contextNamespace(kc);
  await read(kc, namespace, name);
  const request = freshRotateNowValue();
  await annotate(kc, namespace, name, { [ANNOTATION_REVOKE]: request, [ANNOTATION_REVOKE_REASON]: reason });
  io.out(`encryptedservice ${namespace}/${name}: revocation requested (${ANNOTATION_REVOKE}=${request}, ${reason})\n`);
  if (!values.wait) return EXIT.ok;
  const outcome = await waitFor<RevocationStatus>(io, `the revocation of ${namespace}/${name}`, timeout, interval, async () => {
    const revocation = (await read(kc, namespace, name)).status?.revocation;
    if (revocation?.request !== request) return { state: 'not started yet' };
    const done = revocation.phase === 'Completed' || revocation.phase === 'Failed';
    return { ...(done ? { done: revocation } : {}), state: `phase ${revocation.phase ?? '?'}: ${revocation.message ?? ''}` };
  });
  io.out(`revocation ${request}: ${outcome.phase}${outcome.message ? ` — ${outcome.message}` : ''}\n`);
  return outcome.phase === 'Completed' ? EXIT.ok : EXIT.notReady;
}
