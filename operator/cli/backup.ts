// `lockstep backup`: every KeyPolicy's keys, spec and envelope stores, encrypted to the offline
// recovery public key (backup-file.ts). The file holds keys only in encrypted form, so it can be
// stored anywhere; without the private recovery key it restores nothing.
import { parseArgs } from 'node:util';
import { isKeySetError } from '../crypto/errors.js';
import { keySecretName } from '../keypolicy/names.js';
import { keptInHsm } from '../keypolicy/key-ring.js';

/** A KeyPolicy with keyStore PKCS11: its KEKs cannot leave the token, so the backup cannot hold them. */
export const HSM_NOTE = '; KEKs in an HSM: only their kid index and the sealing keys are in this backup, not the KEKs (back the token up with the HSM\'s own tools)';
import { backupFile, serializeBackupFile, type PolicyKeyState } from './backup-file.js';
import { LABEL_KEY_POLICY } from '../api/v1alpha1/index.js';
import { LABEL_KEY_POLICY_NAMESPACE } from '../keypolicy/names.js';
import { ClusterKeys, policyId, policyKeyState } from './cluster-keys.js';
import { CliError, type CliIo } from './io.js';
import { RecoveryKeyError, parseRecoveryPublicKey } from './recovery-key.js';

export const BACKUP_USAGE = `Usage: lockstep backup --recovery-public-key FILE --out FILE [--namespace NS]
Exports the keys of every KeyPolicy (of namespace NS only with --namespace), with what re-creates
the policy and the envelope stores under its keys, encrypted to the recovery public key (JWK, from
lockstep recovery-key). Restore with lockstep restore; check with lockstep drill.
`;

export async function backupCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'recovery-public-key': { type: 'string' },
      out: { type: 'string', short: 'o' },
      namespace: { type: 'string', short: 'n' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.out(BACKUP_USAGE);
    return 0;
  }
  const keyFile = values['recovery-public-key'];
  if (!keyFile || !values.out) throw new CliError(`--recovery-public-key and --out are required\n${BACKUP_USAGE}`, 2);
  if (!io.writeFile) throw new CliError('this environment cannot write files');
  let recipient;
  try {
    recipient = parseRecoveryPublicKey((await io.readFile(keyFile)).toString('utf8'));
  } catch (err) {
    if (err instanceof RecoveryKeyError) throw new CliError(err.message);
    throw err;
  }
  const cluster = new ClusterKeys(io.kubeConfig());
  const policies = await cluster.policies(values.namespace);
  const stores = await cluster.envelopeStores();
  const states: PolicyKeyState[] = [];
  const problems: string[] = [];
  for (const policy of policies) {
    const namespace = policy.metadata.namespace ?? '';
    const name = policy.metadata.name ?? '';
    const secret = await cluster.secret(namespace, keySecretName(name));
    if (!secret) {
      problems.push(`KeyPolicy ${namespace}/${name}: key Secret ${keySecretName(name)} not found (not Ready yet?); not backed up`);
      continue;
    }
    states.push(policyKeyState(namespace, name, policy, secret, stores));
  }
  // Keys a deleted policy left behind (deletionPolicy Retain) still open data: back them up too.
  const covered = new Set(policies.map((p) => policyId(p.metadata.namespace ?? '', p.metadata.name ?? '')));
  for (const secret of await cluster.keySecrets(values.namespace)) {
    const labels = secret.metadata?.labels ?? {};
    const namespace = labels[LABEL_KEY_POLICY_NAMESPACE] ?? '';
    const name = labels[LABEL_KEY_POLICY] ?? '';
    // Only the Secret named after its policy in the policy's namespace is a key Secret.
    if (namespace !== secret.metadata?.namespace || secret.metadata?.name !== keySecretName(name) || covered.has(policyId(namespace, name))) continue;
    states.push(policyKeyState(namespace, name, undefined, secret, stores));
  }
  let file;
  try {
    file = await backupFile(recipient, states, new Date());
  } catch (err) {
    // A key Secret that does not parse is reported by name; its content never is.
    if (isKeySetError(err)) throw new CliError(`a key Secret does not parse (${err.reason}): run lockstep status, fix or restore it, then back up again`);
    throw err;
  }
  await io.writeFile(values.out, serializeBackupFile(file), { mode: 0o600 });
  const orphaned = new Set(states.filter((s) => !s.policy).map((s) => policyId(s.namespace, s.name)));
  const inHsm = new Set(states.filter((s) => keptInHsm({ data: s.keySecret.data })).map((s) => policyId(s.namespace, s.name)));
  const lines = file.policies.map((p) => `  ${p.namespace}/${p.name}${orphaned.has(policyId(p.namespace, p.name)) ? ' (keys left by a deleted policy)' : ''}: kids ${p.kids.join(', ')}; ${p.envelopeStores} envelope stores${inHsm.has(policyId(p.namespace, p.name)) ? HSM_NOTE : ''}`);
  io.out(`backed up ${file.policies.length} KeyPolicies to ${values.out} for recovery key ${file.recipient.kid}\n${lines.join('\n')}${lines.length ? '\n' : ''}`);
  for (const p of problems) io.err(`error: ${p}\n`);
  return problems.length > 0 ? 1 : 0;
}
