// `lockstep seal`: encrypts a value to a KeyPolicy's published sealing key, bound to the target
// namespace, Secret name and key, so the committed ciphertext opens only there.
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { GROUP, KEY_POLICY, PUBLIC_JWKS_KEY, VERSION, publicJwksConfigMapName, type KeyPolicy } from '../api/v1alpha1/index.js';
import { isKeySetError } from '../crypto/errors.js';
import { parsePublicJwks, type PublicJwks } from '../crypto/keyset.js';
import { sealValue } from '../crypto/seal.js';
import { CliError, EXIT, type CliIo } from './io.js';
import { contextNamespace } from './kube-flags.js';
import { mergeSealedEntry, parseSecretManifest, sealedEntry, sealedEntryYaml } from './seal-manifest.js';
import { verifiedSealingKey, type ExpectedSealingKey } from './sealing-key.js';

export const SEAL_USAGE = `Usage: lockstep seal (--policy POLICY [--policy-namespace NS] | --jwks FILE) [--fingerprint THUMBPRINT] [--kid KID]
         [-n NS] [--name SECRET] [--from-file FILE] [--merge-into FILE [--service NAME]]
       lockstep seal … --namespace NS --name SECRET --key KEY [--output jwe|yaml]
Encrypts to the public key KeyPolicy POLICY publishes in ConfigMap <POLICY>-jwks (or to a JWKS
file, e.g. from lockstep fetch-key, for offline use), bound to namespace, Secret name and key.
Without --key: reads a Secret manifest (stdin, or --from-file; e.g. kubectl create secret generic
… --dry-run=client -o yaml) and prints a complete spec.secrets.sealed entry with all its keys
(name and namespace from the manifest unless -n/--name). --merge-into FILE writes that entry into
the EncryptedService in FILE (replacing an entry of the same name; --service picks one of several).
With --key: seals one value (stdin, or --from-file); --output yaml prints it as a sealed entry.
With --policy the key must match the kid and RFC 7638 thumbprint in the KeyPolicy's status
(status.sealingKid, status.sealingKeyThumbprint). --fingerprint checks the key against a
thumbprint obtained from a trusted source (required to trust a --jwks file); a mismatch seals nothing.
`;

export interface SealRequest {
  readonly namespace: string;
  readonly name: string;
  readonly key: string;
  readonly value: Buffer;
  readonly kid?: string;
}

/** The JWE for one value. */
export async function sealFor(jwks: PublicJwks | string, request: SealRequest): Promise<string> {
  return sealValue(jwks, request.value, { namespace: request.namespace, name: request.name, key: request.key }, request.kid ? { kid: request.kid } : {});
}

/** The sealing key KeyPolicy status names: written by the operator only, unlike the ConfigMap. */
export async function readSealingKeyStatus(kc: k8s.KubeConfig, namespace: string, policy: string): Promise<ExpectedSealingKey> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  let kp: KeyPolicy;
  try {
    kp = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: KEY_POLICY.plural, namespace, name: policy })) as KeyPolicy;
  } catch (err) {
    if ((err as { code?: number }).code === 404) throw new CliError(`KeyPolicy ${namespace}/${policy} not found`);
    throw err;
  }
  const { sealingKid, sealingKeyThumbprint } = kp.status ?? {};
  if (!sealingKid || !sealingKeyThumbprint) {
    throw new CliError(`KeyPolicy ${namespace}/${policy} publishes no sealing key thumbprint in its status yet (not reconciled, or an older operator): nothing was sealed; wait for it to be Ready or seal with --jwks and --fingerprint`);
  }
  return { source: `KeyPolicy ${namespace}/${policy} status`, kid: sealingKid, thumbprint: sealingKeyThumbprint };
}

/** The published JWKS of a KeyPolicy, read from its ConfigMap. */
export async function readPublishedJwks(kc: k8s.KubeConfig, namespace: string, policy: string): Promise<PublicJwks> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const name = publicJwksConfigMapName(policy);
  let text: string | undefined;
  try {
    text = (await core.readNamespacedConfigMap({ namespace, name })).data?.[PUBLIC_JWKS_KEY];
  } catch (err) {
    if ((err as { code?: number }).code === 404) {
      throw new CliError(`ConfigMap ${namespace}/${name} not found: is KeyPolicy ${namespace}/${policy} Ready?`);
    }
    throw err;
  }
  if (!text) throw new CliError(`ConfigMap ${namespace}/${name} has no ${PUBLIC_JWKS_KEY}`);
  return parsePublicJwks(text);
}

/** The one key to seal to: from the KeyPolicy (checked against its status) or a JWKS file, and --fingerprint. */
export async function sealingJwks(io: CliIo, source: { policy?: string; policyNamespace: string; jwks?: string; fingerprint?: string; kid?: string }): Promise<PublicJwks> {
  const expectations: ExpectedSealingKey[] = source.fingerprint ? [{ source: '--fingerprint', thumbprint: source.fingerprint }] : [];
  try {
    let jwks: PublicJwks;
    if (source.jwks) {
      jwks = parsePublicJwks((await io.readFile(source.jwks)).toString('utf8'));
    } else {
      const kc = io.kubeConfig();
      expectations.unshift(await readSealingKeyStatus(kc, source.policyNamespace, source.policy ?? ''));
      jwks = await readPublishedJwks(kc, source.policyNamespace, source.policy ?? '');
    }
    const from = source.jwks ? `JWKS file ${source.jwks}` : `ConfigMap ${source.policyNamespace}/${publicJwksConfigMapName(source.policy ?? '')}`;
    return verifiedSealingKey(jwks, from, expectations, source.kid);
  } catch (err) {
    if (isKeySetError(err)) throw new CliError(`not a usable public JWKS: ${err.message}`);
    throw err;
  }
}

/**
 * `argv` with `--flag VALUE` joined into `--flag=VALUE` for `flags`: an RFC 7638 thumbprint is
 * base64url and starts with '-' one time in 64, which parseArgs otherwise refuses as ambiguous.
 */
export function valuesMayStartWithDash(argv: readonly string[], flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = argv[i + 1];
    if (flags.includes(arg) && value !== undefined) {
      out.push(`${arg}=${value}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

export async function sealCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: valuesMayStartWithDash(argv, ['--fingerprint']),
    options: {
      namespace: { type: 'string', short: 'n' },
      name: { type: 'string' },
      key: { type: 'string' },
      policy: { type: 'string' },
      'policy-namespace': { type: 'string' },
      jwks: { type: 'string' },
      'from-file': { type: 'string' },
      output: { type: 'string', short: 'o' },
      kid: { type: 'string' },
      fingerprint: { type: 'string' },
      'merge-into': { type: 'string' },
      service: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.out(SEAL_USAGE);
    return EXIT.ok;
  }
  if (!values.jwks === !values.policy) throw new CliError(`give exactly one of --policy or --jwks\n${SEAL_USAGE}`, EXIT.usage);
  const single = values.key !== undefined;
  if (single && values['merge-into']) throw new CliError('--merge-into writes a complete sealed entry: give a Secret manifest instead of --key', EXIT.usage);
  const output = values.output ?? (single ? 'jwe' : 'yaml');
  if (output !== 'yaml' && (output !== 'jwe' || !single)) throw new CliError(`--output must be ${single ? 'jwe or yaml' : 'yaml'}`, EXIT.usage);

  const input = values['from-file'] ? await io.readFile(values['from-file']) : await io.readStdin();
  const manifest = single ? undefined : parseSecretManifest(input.toString('utf8'));
  if (manifest) input.fill(0);
  const name = values.name ?? manifest?.name;
  const namespace = values.namespace ?? manifest?.namespace ?? (values.policy && !single ? contextNamespace(io.kubeConfig()) : undefined);
  if (!namespace || !name) throw new CliError(`${single ? '--namespace, --name and --key are' : 'the Secret\'s name and namespace (in the manifest, or --name and -n) are'} required\n${SEAL_USAGE}`, EXIT.usage);

  const jwks = await sealingJwks(io, {
    policyNamespace: values['policy-namespace'] ?? namespace,
    ...(values.policy ? { policy: values.policy } : {}), ...(values.jwks ? { jwks: values.jwks } : {}),
    ...(values.fingerprint ? { fingerprint: values.fingerprint } : {}), ...(values.kid ? { kid: values.kid } : {}),
  });
  if (values.jwks && !values.fingerprint) {
    io.err(`warning: the key in ${values.jwks} was not checked; pass --fingerprint (status.sealingKeyThumbprint of the KeyPolicy) to check it\n`);
  }
  const seal = (key: string, value: Buffer) => sealFor(jwks, { namespace, name, key, value, ...(values.kid ? { kid: values.kid } : {}) });
  const encryptedData: Record<string, string> = {};
  const plain = manifest?.values ?? new Map([[values.key ?? '', input]]);
  try {
    for (const [key, value] of plain) encryptedData[key] = await seal(key, value);
  } finally {
    for (const value of plain.values()) value.fill(0);
  }
  if (single && output === 'jwe') {
    io.out(`${Object.values(encryptedData)[0]}\n`);
    return EXIT.ok;
  }
  const entry = sealedEntry(name, encryptedData, manifest?.type);
  const target = values['merge-into'];
  if (!target) {
    io.out(sealedEntryYaml(entry));
    return EXIT.ok;
  }
  if (!io.writeFile) throw new CliError('this CLI cannot write files here', EXIT.usage);
  const merged = mergeSealedEntry((await io.readFile(target)).toString('utf8'), entry, namespace, values.service);
  await io.writeFile(target, merged, { mode: 0o644 });
  io.out(`sealed Secret ${namespace}/${name} (${Object.keys(encryptedData).join(', ')}) merged into ${target}\n`);
  return EXIT.ok;
}
