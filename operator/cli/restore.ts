// `lockstep restore`: brings a backup's keys back, on the machine holding the private recovery
// key. Per KeyPolicy, in an order that a running operator cannot race: the key Secret first (a
// policy that appeared before its keys would have new keys generated), then the envelope stores,
// then the policy. Create-only: an existing Secret or policy is never overwritten — identical keys
// count as restored, anything else is reported and left as it is.
import { parseArgs } from 'node:util';
import type { V1Secret } from '@kubernetes/client-node';
import { API_VERSION, KEY_POLICY, type KeyPolicy } from '../api/v1alpha1/index.js';
import { isKeySetError } from '../crypto/errors.js';
import { keptInHsm, keySecretData, keySetsFromSecret } from '../keypolicy/key-ring.js';
import { keyPolicyLabels, keySecretName } from '../keypolicy/names.js';
import { BackupError, liveKids, openPolicyState, parseBackupFile, type PolicyKeyState, type StoredSecret } from './backup-file.js';
import { ClusterKeys } from './cluster-keys.js';
import { CliError, type CliIo } from './io.js';
import { mergeKeySets } from './key-merge.js';
import { RecoveryKeyError, parseRecoveryPrivateKey } from './recovery-key.js';

export const RESTORE_USAGE = `Usage: lockstep restore --backup FILE --recovery-key FILE [--namespace NS] [--merge]
Restores the keys in a lockstep backup (of namespace NS's policies only with --namespace): creates
missing namespaces, each key Secret, the envelope stores and then the KeyPolicy. Never overwrites:
a key Secret or store that exists with other content is reported and left alone. Run it before
GitOps re-creates the KeyPolicies (or with the operator stopped): a policy without its keys gets
new ones. --merge adds the backed-up keys to such a key Secret as decrypt-only keys (its active
keys stay active), so data under either set opens. The recovery key is the private JWK from lockstep recovery-key; it stays on this machine.
`;

/** Annotation on restored Secrets: the backup they came from (its createdAt). */
export const ANNOTATION_RESTORED_FROM = 'lockstep.dev/restored-from';

const sameKids = (a: readonly string[], b: readonly string[]) => b.every((kid) => a.includes(kid));

function sameData(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const keys = Object.keys(b);
  return Object.keys(a ?? {}).length === keys.length && keys.every((k) => a?.[k] === b[k]);
}

async function restorePolicy(cluster: ClusterKeys, state: PolicyKeyState, createdAt: string, merge: boolean, io: CliIo): Promise<string[]> {
  const problems: string[] = [];
  const id = `${state.namespace}/${state.name}`;
  const secretName = keySecretName(state.name);
  if (await cluster.ensureNamespace(state.namespace)) io.out(`  created namespace ${state.namespace}\n`);
  const live = await cluster.secret(state.namespace, secretName);
  const backedUp = liveKids(state.keySecret.data);
  if (!live) {
    const body: V1Secret = {
      apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
      metadata: {
        name: secretName, namespace: state.namespace,
        labels: keyPolicyLabels(state.namespace, state.name, 'keys'),
        annotations: { ...state.keySecret.annotations, [ANNOTATION_RESTORED_FROM]: createdAt },
      },
      data: state.keySecret.data,
    };
    await cluster.createSecret(body);
    io.out(`  ${id}: key Secret ${secretName} restored (kids ${backedUp.join(', ')})\n`);
  } else {
    let kids: string[] = [];
    try {
      kids = liveKids(live.data ?? {});
    } catch (err) {
      if (!isKeySetError(err)) throw err;
    }
    if (sameKids(kids, backedUp)) {
      io.out(`  ${id}: key Secret ${secretName} already holds the backed-up keys\n`);
    } else if (!merge || kids.length === 0) {
      // The policy had new keys generated (or the Secret is damaged): merging is a decision for a person.
      const why = kids.length === 0 ? 'exists but does not parse' : `exists without the backed-up kids ${backedUp.filter((k) => !kids.includes(k)).join(', ')}`;
      problems.push(`${id}: key Secret ${secretName} ${why}; not overwritten${kids.length === 0 ? '' : ' (run restore --merge to add the backed-up keys to it as decrypt-only)'}`);
      return problems;
    } else if (keptInHsm(live) || keptInHsm({ data: state.keySecret.data })) {
      // The KEKs are in the token; merging indexes would name keys the token may not hold.
      problems.push(`${id}: key Secret ${secretName} keeps its KEKs in an HSM; --merge does not apply (restore the token with the HSM's tools); not changed`);
      return problems;
    } else {
      const { sets, added } = mergeKeySets(keySetsFromSecret(live), keySetsFromSecret({ data: state.keySecret.data }), new Date());
      // resourceVersion makes this a compare-and-swap against the operator's own writes.
      await cluster.replaceSecret({
        ...live,
        metadata: { ...live.metadata, annotations: { ...live.metadata?.annotations, [ANNOTATION_RESTORED_FROM]: createdAt } },
        data: { ...live.data, ...keySecretData(sets) },
      });
      io.out(`  ${id}: key Secret ${secretName} kept its active keys; backed-up keys ${added.join(', ')} added as decrypt-only\n`);
    }
  }
  for (const store of state.envelopeStores) problems.push(...await restoreStore(cluster, store, createdAt, io));
  if (!state.policy) {
    io.out(`  ${id}: keys only (the policy had been deleted when the backup was made); apply the KeyPolicy to use them\n`);
    return problems;
  }
  if (await cluster.policy(state.namespace, state.name)) {
    io.out(`  ${id}: KeyPolicy exists, left as it is\n`);
  } else {
    const body: KeyPolicy = {
      apiVersion: API_VERSION, kind: KEY_POLICY.kind,
      metadata: { name: state.name, namespace: state.namespace, ...(state.policy.labels ? { labels: state.policy.labels } : {}), ...(state.policy.annotations ? { annotations: state.policy.annotations } : {}) },
      spec: state.policy.spec,
    };
    await cluster.createPolicy(body);
    io.out(`  ${id}: KeyPolicy re-created\n`);
  }
  return problems;
}

async function restoreStore(cluster: ClusterKeys, store: StoredSecret, createdAt: string, io: CliIo): Promise<string[]> {
  const id = `${store.namespace}/${store.name}`;
  if (await cluster.ensureNamespace(store.namespace)) io.out(`  created namespace ${store.namespace}\n`);
  const live = await cluster.secret(store.namespace, store.name);
  if (live) {
    // The operator keeps live stores current (re-wraps, rotations): the newer one wins.
    if (!sameData(live.data, store.data)) io.out(`  envelope store ${id} exists with other content (changed since the backup); left as it is\n`);
    return [];
  }
  await cluster.createSecret({
    apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
    metadata: { name: store.name, namespace: store.namespace, ...(store.labels ? { labels: store.labels } : {}), annotations: { ...store.annotations, [ANNOTATION_RESTORED_FROM]: createdAt } },
    data: store.data,
  });
  io.out(`  envelope store ${id} restored\n`);
  return [];
}

export async function restoreCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      backup: { type: 'string' },
      'recovery-key': { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      merge: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.out(RESTORE_USAGE);
    return 0;
  }
  const keyFile = values['recovery-key'];
  if (!values.backup || !keyFile) throw new CliError(`--backup and --recovery-key are required\n${RESTORE_USAGE}`, 2);
  let file;
  let privateKey;
  try {
    file = parseBackupFile((await io.readFile(values.backup)).toString('utf8'));
    privateKey = parseRecoveryPrivateKey((await io.readFile(keyFile)).toString('utf8'));
  } catch (err) {
    if (err instanceof BackupError || err instanceof RecoveryKeyError) throw new CliError(err.message);
    throw err;
  }
  const entries = file.policies.filter((p) => !values.namespace || p.namespace === values.namespace);
  // Every entry opens before anything is written: a wrong key or a damaged file changes nothing.
  const states: PolicyKeyState[] = [];
  try {
    for (const entry of entries) states.push(await openPolicyState(privateKey, file, entry));
  } catch (err) {
    if (err instanceof BackupError) throw new CliError(`${err.message}; nothing was restored`);
    throw err;
  }
  const cluster = new ClusterKeys(io.kubeConfig());
  io.out(`restoring ${states.length} KeyPolicies from the backup of ${file.createdAt}\n`);
  const problems: string[] = [];
  for (const state of states) problems.push(...await restorePolicy(cluster, state, file.createdAt, values.merge === true, io));
  for (const p of problems) io.err(`error: ${p}\n`);
  io.out(problems.length === 0 ? 'restore complete: run lockstep drill to prove every ciphertext opens\n' : `restore finished with ${problems.length} problems\n`);
  return problems.length > 0 ? 1 : 0;
}
