// `lockstep fetch-key`: the KeyPolicy's sealing public key for offline sealing, checked against the
// kid and thumbprint in its status (as `seal --policy` does), printed or saved with its fingerprint
// so `lockstep seal --jwks FILE --fingerprint X` can refuse any other key later.
import { parseArgs } from 'node:util';
import { jwkThumbprint } from '../crypto/thumbprint.js';
import { CliError, EXIT, type CliIo } from './io.js';
import { contextNamespace } from './kube-flags.js';
import { sealingJwks } from './seal.js';

export const FETCH_KEY_USAGE = `Usage: lockstep fetch-key --policy POLICY [-n NAMESPACE] [--out FILE]
Reads KeyPolicy POLICY's published sealing key (ConfigMap <POLICY>-jwks), checks it against the kid
and RFC 7638 thumbprint in the KeyPolicy's status, and prints it as a JWKS (or writes it to FILE)
with its fingerprint. Seal offline with it:
  lockstep seal --jwks FILE --fingerprint FINGERPRINT < secret.yaml
`;

export async function fetchKeyCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      policy: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(FETCH_KEY_USAGE);
    return EXIT.ok;
  }
  if (!values.policy) throw new CliError(`--policy is required\n${FETCH_KEY_USAGE}`, EXIT.usage);
  const namespace = values.namespace ?? contextNamespace(io.kubeConfig());
  const jwks = await sealingJwks(io, { policy: values.policy, policyNamespace: namespace }).catch((err: unknown) => {
    // The checks are seal's; here nothing is printed or saved rather than sealed.
    throw err instanceof CliError ? new CliError(err.message.replace('nothing was sealed', 'no key was fetched'), err.exitCode) : err;
  });
  const key = jwks.keys[0];
  if (!key) throw new CliError(`KeyPolicy ${namespace}/${values.policy} publishes no sealing key`);
  const fingerprint = jwkThumbprint(key);
  const text = `${JSON.stringify(jwks, null, 2)}\n`;
  const about = `KeyPolicy ${namespace}/${values.policy} sealing key ${key.kid}, fingerprint ${fingerprint}`;
  if (!values.out) {
    io.out(text);
    io.err(`${about}\n`);
    return EXIT.ok;
  }
  if (!io.writeFile) throw new CliError('this CLI cannot write files here', EXIT.usage);
  await io.writeFile(values.out, text, { mode: 0o644 });
  io.out(`${about} written to ${values.out}\nseal offline with: lockstep seal --jwks ${values.out} --fingerprint ${fingerprint} -n ${namespace} < secret.yaml\n`);
  return EXIT.ok;
}
