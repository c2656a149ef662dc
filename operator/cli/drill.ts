// `lockstep drill`: proves a backup would recover the cluster. With the private recovery key it
// opens the backup in memory, on this machine, and decrypts every ciphertext stored in the cluster
// with the backed-up keys (drill-check.ts) — nothing is written anywhere, so the private key and
// the clear keys never reach the cluster. Without the key it checks kid coverage only, which a
// scheduled job can run with no secret at all.
import { parseArgs } from 'node:util';
import type { KeySets } from '../keypolicy/key-plan.js';
import { keptInHsm, keySetsFromSecret } from '../keypolicy/key-ring.js';
import { BackupError, openPolicyState, parseBackupFile } from './backup-file.js';
import { ClusterKeys, ciphertextsUnderTest, policyId } from './cluster-keys.js';
import { drillCoverage, drillCoverageFromStatus, drillWithKeys, formatDrillReport, type DrillFailure } from './drill-check.js';
import { CliError, type CliIo } from './io.js';
import { RecoveryKeyError, parseRecoveryPrivateKey } from './recovery-key.js';

export const DRILL_USAGE = `Usage: lockstep drill --backup FILE [--recovery-key FILE | --from-status] [--namespace NS]
Recovery drill: checks that every envelope store and every sealed value of every EncryptedService
in the cluster (those under NS's KeyPolicies only with --namespace) opens with the keys in the
backup. With --recovery-key it decrypts each one in memory on this machine (nothing is written, no
plaintext is printed); without it, it checks that every kid in use is in the backup. --from-status
checks the kids the KeyPolicies' status counts as in use, reading no Secret (for scheduled jobs).
Exits 1 and lists every ciphertext (or kid) that does not pass.
`;

export async function drillCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      backup: { type: 'string' },
      'recovery-key': { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      'from-status': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.out(DRILL_USAGE);
    return 0;
  }
  if (!values.backup) throw new CliError(`--backup is required\n${DRILL_USAGE}`, 2);
  let file;
  try {
    file = parseBackupFile((await io.readFile(values.backup)).toString('utf8'));
  } catch (err) {
    if (err instanceof BackupError) throw new CliError(err.message);
    throw err;
  }
  const cluster = new ClusterKeys(io.kubeConfig());
  const backedUpKids = () => new Map(file.policies.map((p) => [policyId(p.namespace, p.name), new Set(p.kids)]));
  if (values['from-status']) {
    if (values['recovery-key']) throw new CliError('--from-status checks kids only: it takes no --recovery-key', 2);
    const policies = (await cluster.policies(values.namespace)).map((p) => ({ id: policyId(p.metadata.namespace ?? '', p.metadata.name ?? ''), keys: p.status?.keys ?? [] }));
    const report = drillCoverageFromStatus(backedUpKids(), policies);
    (report.failures.length === 0 ? io.out : io.err)(`backup of ${file.createdAt} (${file.policies.length} KeyPolicies) against ${policies.length} KeyPolicies' status\n${formatDrillReport(report, 'status')}`);
    return report.failures.length === 0 ? 0 : 1;
  }
  const underPolicy = (policy: string) => !values.namespace || policy.startsWith(`${values.namespace}/`);
  const all = ciphertextsUnderTest(await cluster.envelopeStores(), await cluster.services());
  const stores = all.stores.filter((s) => underPolicy(s.policy));
  const sealed = all.sealed.filter((s) => underPolicy(s.policy));
  const unreadable: DrillFailure[] = all.unreadable.map((object) => ({ object, policy: '?', reason: 'Malformed', message: 'the envelope store does not parse' }));
  let report;
  if (values['recovery-key']) {
    const sets = new Map<string, KeySets>();
    const inHsm = new Set<string>();
    try {
      const privateKey = parseRecoveryPrivateKey((await io.readFile(values['recovery-key'])).toString('utf8'));
      for (const entry of file.policies) {
        const state = await openPolicyState(privateKey, file, entry);
        // KEKs in an HSM are not in the backup: the drill says so instead of pretending.
        if (keptInHsm({ data: state.keySecret.data })) inHsm.add(policyId(entry.namespace, entry.name));
        else sets.set(policyId(entry.namespace, entry.name), keySetsFromSecret({ data: state.keySecret.data }));
      }
    } catch (err) {
      if (err instanceof BackupError || err instanceof RecoveryKeyError) throw new CliError(err.message);
      throw err;
    }
    const opened = await drillWithKeys(sets, stores.filter((st) => !inHsm.has(st.policy)), sealed);
    const hsmFailures: DrillFailure[] = stores.filter((st) => inHsm.has(st.policy)).map((st) => ({
      object: `${st.namespace}/${st.name}`, policy: st.policy, reason: 'KeysInHsm',
      message: 'the KeyPolicy keeps its KEKs in an HSM: this backup holds only their index, so it cannot open this data key (the HSM\'s own backup must)',
    }));
    report = { checked: opened.checked + hsmFailures.length, failures: [...opened.failures, ...hsmFailures] };
  } else {
    report = drillCoverage(backedUpKids(), stores, sealed);
  }
  const full = { checked: report.checked + unreadable.length, failures: [...unreadable, ...report.failures] };
  const text = `backup of ${file.createdAt} (${file.policies.length} KeyPolicies) against the cluster: ${stores.length} envelope stores, ${sealed.length} sealed values\n${formatDrillReport(full, values['recovery-key'] ? 'decrypt' : 'coverage')}`;
  (full.failures.length === 0 ? io.out : io.err)(text);
  return full.failures.length === 0 ? 0 : 1;
}
