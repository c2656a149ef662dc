// `lockstep recovery-key`: makes the offline key pair backups are encrypted to. Run it on the
// machine (or in the vault) that keeps the private half; only the public file goes to whoever
// runs `lockstep backup`.
import { parseArgs } from 'node:util';
import { CliError, type CliIo } from './io.js';
import { RECOVERY_ALGORITHMS, generateRecoveryKey, recoveryKeyThumbprint, type RecoveryAlgorithm } from './recovery-key.js';

export const RECOVERY_KEY_USAGE = `Usage: lockstep recovery-key --private-out FILE --public-out FILE [--algorithm RSA-OAEP-256|ECDH-ES+A256KW]
Generates the offline recovery key pair (RSA 4096 by default, or EC P-384) as JWK files. The
private file (mode 0600) never goes to the cluster: keep it offline, e.g. in a password manager or
HSM-backed vault. Give the public file to lockstep backup. Existing files are never replaced.
`;

export async function recoveryKeyCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'private-out': { type: 'string' },
      'public-out': { type: 'string' },
      algorithm: { type: 'string', default: 'RSA-OAEP-256' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.out(RECOVERY_KEY_USAGE);
    return 0;
  }
  const privateOut = values['private-out'];
  const publicOut = values['public-out'];
  if (!privateOut || !publicOut) throw new CliError(`--private-out and --public-out are required\n${RECOVERY_KEY_USAGE}`, 2);
  if (!(RECOVERY_ALGORITHMS as readonly string[]).includes(values.algorithm)) throw new CliError(`--algorithm must be one of ${RECOVERY_ALGORITHMS.join(', ')}`, 2);
  if (!io.writeFile) throw new CliError('this environment cannot write files');
  const { privateKey, publicKey } = await generateRecoveryKey(values.algorithm as RecoveryAlgorithm, new Date());
  await io.writeFile(privateOut, `${JSON.stringify(privateKey, null, 2)}\n`, { mode: 0o600, exclusive: true });
  await io.writeFile(publicOut, `${JSON.stringify(publicKey, null, 2)}\n`, { mode: 0o644, exclusive: true });
  io.out(`recovery key ${publicKey.kid} (${publicKey.alg}, thumbprint ${await recoveryKeyThumbprint(publicKey)})\n`
    + `  private half: ${privateOut} — keep it offline; it never goes to the cluster\n  public half:  ${publicOut} — for lockstep backup --recovery-public-key\n`);
  return 0;
}
