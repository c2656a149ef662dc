// `lockstep etcd-encryption`: whether the API server encrypts Secrets in etcd with a KMS provider
// (Lockstep's KMS v2 plugin, docs/kms.md, or any other), as far as the API can tell. What it can
// see: the API server's own health checks (a KMS provider adds `kms-providers` to /readyz, and
// answers "failed" there when the plugin does not), and whose control plane this is (a managed
// one's version string or node labels). What it cannot see: a local key (aescbc, aesgcm,
// secretbox) in the EncryptionConfiguration, which adds no check; nor, on a managed cluster,
// whether the provider's integration is switched on, unless the provider exposes the check.
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { apiErrorCode } from '../runtime/api-error.js';
import { CliError, EXIT, type CliIo } from './io.js';

export const ETCD_ENCRYPTION_USAGE = `Usage: lockstep etcd-encryption [-o json]
Reports whether the API server encrypts Secrets in etcd with a KMS provider (its /readyz lists
the kms-providers check), and on a managed control plane (EKS, GKE, AKS) which integration of the
provider does it. Exit 0 when a KMS provider is configured and healthy; 1 when none is seen, it is
failing, or it cannot be confirmed from the API (a managed cluster); 3 when the cluster could not
be reached.
`;

export interface ManagedProvider {
  readonly name: string;
  /** What to switch on, in the provider's words. */
  readonly advice: string;
}

const PROVIDERS: readonly (ManagedProvider & { version?: RegExp; labelPrefix: string })[] = [
  { name: 'Amazon EKS', version: /-eks-/, labelPrefix: 'eks.amazonaws.com/', advice: 'EKS envelope encryption of Secrets with an AWS KMS key (aws eks associate-encryption-config)' },
  { name: 'Google GKE', version: /-gke\./, labelPrefix: 'cloud.google.com/gke-', advice: 'GKE application-layer secrets encryption with a Cloud KMS key (gcloud container clusters update --database-encryption-key)' },
  { name: 'Azure AKS', labelPrefix: 'kubernetes.azure.com/', advice: 'AKS KMS etcd encryption with an Azure Key Vault key (az aks update --enable-azure-keyvault-kms)' },
];

/** What the API shows: /readyz?verbose, /version's gitVersion, label keys of one node (if readable). */
export interface EtcdEncryptionFacts {
  readonly readyz: string | undefined;
  readonly gitVersion: string | undefined;
  readonly nodeLabelKeys: readonly string[] | undefined;
}

export interface EtcdEncryptionReport {
  /** kms: a KMS provider's check passes; failing: it fails; none: no such check; unconfirmed: a managed control plane without it. */
  readonly kms: 'kms' | 'failing' | 'none' | 'unconfirmed';
  readonly provider?: string;
  readonly message: string;
}

/** `[+]kms-providers ok` (KMS v2), `[+]kms-provider-0 ok` (older API servers), or `[-]… failed`. */
const KMS_CHECK = /^\[([+-])\](kms-providers|kms-provider-\d+)\b/gm;

export function managedProvider(facts: EtcdEncryptionFacts): ManagedProvider | undefined {
  const found = PROVIDERS.find((p) => (p.version && facts.gitVersion && p.version.test(facts.gitVersion))
    || facts.nodeLabelKeys?.some((k) => k.startsWith(p.labelPrefix)));
  return found ? { name: found.name, advice: found.advice } : undefined;
}

export function judgeEtcdEncryption(facts: EtcdEncryptionFacts): EtcdEncryptionReport {
  const checks = [...(facts.readyz ?? '').matchAll(KMS_CHECK)].map((m) => ({ ok: m[1] === '+', name: m[2] ?? '' }));
  const provider = managedProvider(facts);
  const where = provider ? { provider: provider.name } : {};
  const failing = checks.filter((c) => !c.ok);
  if (failing.length > 0) {
    return { kms: 'failing', ...where, message: `the API server's KMS provider check ${failing.map((c) => c.name).join(', ')} fails: it cannot encrypt or decrypt new data keys (is the KMS plugin running and its socket reachable?)` };
  }
  if (checks.length > 0) {
    return { kms: 'kms', ...where, message: `Secrets are encrypted in etcd by a KMS provider (the API server's ${checks.map((c) => c.name).join(', ')} check passes)` };
  }
  if (provider) {
    return { kms: 'unconfirmed', ...where, message: `${provider.name} does not show its control plane's encryption configuration to the API: make sure ${provider.advice} is on` };
  }
  return {
    kms: 'none',
    message: 'the API server reports no KMS provider (no kms-providers check in /readyz): Secrets are in etcd in clear, or under a local key in its EncryptionConfiguration that it does not report. On a self-managed control plane, Lockstep\'s KMS v2 plugin encrypts them under keys kept off the cluster (docs/kms.md)',
  };
}

async function readyzVerbose(kc: k8s.KubeConfig): Promise<string | undefined> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new CliError('the kubeconfig has no current cluster', EXIT.usage);
  const config = k8s.createConfiguration({ baseServer: new k8s.ServerConfiguration(cluster.server, {}), authMethods: { default: kc } });
  const ctx = config.baseServer.makeRequestContext('/readyz', k8s.HttpMethod.GET);
  ctx.setQueryParam('verbose', 'true');
  await kc.applySecurityAuthentication(ctx);
  const response = await config.httpApi.send(ctx).toPromise();
  const text = await response.body.text();
  // 200 lists the checks, and so does the 500 of a failing one; 401/403/404 (a server that hides
  // it) say nothing.
  return response.httpStatusCode === 200 || response.httpStatusCode >= 500 ? text : undefined;
}

async function nodeLabelKeys(kc: k8s.KubeConfig): Promise<string[] | undefined> {
  try {
    const nodes = await kc.makeApiClient(k8s.CoreV1Api).listNode({ limit: 1 });
    return Object.keys(nodes.items[0]?.metadata?.labels ?? {});
  } catch (err) {
    // Tenants may not list nodes: the version string is then all there is to go on.
    if (apiErrorCode(err) === 403) return undefined;
    throw err;
  }
}

export async function etcdEncryptionCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  if (values.help) {
    io.out(ETCD_ENCRYPTION_USAGE);
    return EXIT.ok;
  }
  if (positionals.length > 0) throw new CliError(`etcd-encryption takes no arguments\n${ETCD_ENCRYPTION_USAGE}`, EXIT.usage);
  if (values.output !== undefined && values.output !== 'json') throw new CliError(`-o ${values.output}: use json`, EXIT.usage);
  const kc = io.kubeConfig();
  const [readyz, version, labels] = await Promise.all([
    readyzVerbose(kc),
    kc.makeApiClient(k8s.VersionApi).getCode(),
    nodeLabelKeys(kc),
  ]);
  const report = judgeEtcdEncryption({ readyz, gitVersion: version.gitVersion, nodeLabelKeys: labels });
  io.out(values.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : `${report.provider ? `${report.provider}: ` : ''}${report.message}\n`);
  return report.kms === 'kms' ? EXIT.ok : EXIT.notReady;
}
