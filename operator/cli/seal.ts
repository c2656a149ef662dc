// `lockstep seal`: encrypts a value to a KeyPolicy's published sealing key, bound to the target
// namespace, Secret name and key, so the committed ciphertext opens only there.
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { GROUP, KEY_POLICY, PUBLIC_JWKS_KEY, VERSION, publicJwksConfigMapName, type KeyPolicy } from '../api/v1alpha1/index.js';
import { isKeySetError } from '../crypto/errors.js';
import { parsePublicJwks, type PublicJwks } from '../crypto/keyset.js';
import { sealValue } from '../crypto/seal.js';
import { CliError, type CliIo } from './io.js';
import { verifiedSealingKey, type ExpectedSealingKey } from './sealing-key.js';

export const SEAL_USAGE = `Usage: lockstep seal --namespace NS --name SECRET --key KEY (--policy POLICY [--policy-namespace NS] | --jwks FILE)
                    [--fingerprint THUMBPRINT] [--from-file FILE] [--output jwe|yaml] [--kid KID]
Encrypts a value (stdin, or --from-file) for Secret SECRET's KEY in namespace NS, to the public
key KeyPolicy POLICY publishes in ConfigMap <POLICY>-jwks (or to a JWKS file for offline use).
With --policy the key must match the kid and RFC 7638 thumbprint in the KeyPolicy's status
(status.sealingKid, status.sealingKeyThumbprint). --fingerprint checks the key against a
thumbprint obtained from a trusted source (required to trust a --jwks file).
--output yaml prints an encryptedData snippet for an EncryptedService's spec.secrets.sealed.
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

/** The sealed-secret entry for spec.secrets.sealed, as YAML. */
export function sealedSecretSnippet(name: string, encryptedData: Readonly<Record<string, string>>): string {
  const lines = [`- name: ${name}`, '  encryptedData:'];
  for (const [key, jwe] of Object.entries(encryptedData)) lines.push(`    ${key}: ${jwe}`);
  return `${lines.join('\n')}\n`;
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

export async function sealCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      namespace: { type: 'string', short: 'n' },
      name: { type: 'string' },
      key: { type: 'string' },
      policy: { type: 'string' },
      'policy-namespace': { type: 'string' },
      jwks: { type: 'string' },
      'from-file': { type: 'string' },
      output: { type: 'string', short: 'o', default: 'jwe' },
      kid: { type: 'string' },
      fingerprint: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.out(SEAL_USAGE);
    return 0;
  }
  const { namespace, name, key } = values;
  if (!namespace || !name || !key) throw new CliError(`--namespace, --name and --key are required\n${SEAL_USAGE}`, 2);
  if (!values.jwks === !values.policy) throw new CliError(`give exactly one of --policy or --jwks\n${SEAL_USAGE}`, 2);
  if (values.output !== 'jwe' && values.output !== 'yaml') throw new CliError('--output must be jwe or yaml', 2);

  const policyNamespace = values['policy-namespace'] ?? namespace;
  let jwks: PublicJwks;
  const expectations: ExpectedSealingKey[] = values.fingerprint ? [{ source: '--fingerprint', thumbprint: values.fingerprint }] : [];
  try {
    if (values.jwks) {
      jwks = parsePublicJwks((await io.readFile(values.jwks)).toString('utf8'));
    } else {
      const kc = io.kubeConfig();
      expectations.unshift(await readSealingKeyStatus(kc, policyNamespace, values.policy ?? ''));
      jwks = await readPublishedJwks(kc, policyNamespace, values.policy ?? '');
    }
    const from = values.jwks ? `JWKS file ${values.jwks}` : `ConfigMap ${policyNamespace}/${publicJwksConfigMapName(values.policy ?? '')}`;
    jwks = verifiedSealingKey(jwks, from, expectations, values.kid);
  } catch (err) {
    if (isKeySetError(err)) throw new CliError(`not a usable public JWKS: ${err.message}`);
    throw err;
  }
  if (values.jwks && !values.fingerprint) {
    io.err(`warning: the key in ${values.jwks} was not checked; pass --fingerprint (status.sealingKeyThumbprint of the KeyPolicy) to check it\n`);
  }
  const value = values['from-file'] ? await io.readFile(values['from-file']) : await io.readStdin();
  const jwe = await sealFor(jwks, { namespace, name, key, value, ...(values.kid ? { kid: values.kid } : {}) });
  value.fill(0);
  io.out(values.output === 'yaml' ? sealedSecretSnippet(name, { [key]: jwe }) : `${jwe}\n`);
  return 0;
}
