#!/usr/bin/env node
// The lockstep CLI (also `kubectl lockstep`): a small dispatcher; each command lives in its own
// file and takes its arguments and an injected CliIo, so it is testable without a terminal.
import '../runtime/node-guard.js'; // first: a clear error on an unsupported Node.js
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { apiErrorCode, describeApiError } from '../runtime/api-error.js';
import { AUDIT_VERIFY_USAGE, auditCommand } from './audit-verify.js';
import { BACKUP_USAGE, backupCommand } from './backup.js';
import { CHECK_USAGE, checkCommand } from './check.js';
import { COMPLETION_USAGE, completionCommand } from './completion.js';
import { DRILL_USAGE, drillCommand } from './drill.js';
import { ETCD_ENCRYPTION_USAGE, etcdEncryptionCommand } from './etcd-encryption.js';
import { EXIT_CODES_HELP } from './errors.js';
import { FETCH_KEY_USAGE, fetchKeyCommand } from './fetch-key.js';
import { CliError, EXIT, processIo, type CliIo } from './io.js';
import { KUBE_FLAGS_USAGE, clusterFailure, extractKubeFlags } from './kube-flags.js';
import { KMS_PLUGIN_USAGE, kmsPluginCommand } from './kms-plugin.js';
import { PAUSE_USAGE, pauseCommand, resumeCommand } from './pause.js';
import { RECOVERY_KEY_USAGE, recoveryKeyCommand } from './recovery-key-command.js';
import { RENDER_USAGE, renderCommand } from './render.js';
import { RESTORE_USAGE, restoreCommand } from './restore.js';
import { REVOKE_USAGE, revokeCommand } from './revoke.js';
import { ROTATE_USAGE, rotateCommand } from './rotate.js';
import { SEAL_USAGE, sealCommand } from './seal.js';
import { STATUS_USAGE, statusCommand } from './status.js';
import { VERSION_USAGE, versionCommand } from './version.js';

export type Command = (argv: readonly string[], io: CliIo) => Promise<number>;

export interface CommandEntry {
  readonly run: Command;
  readonly summary: string;
  readonly usage: string;
}

export const COMMANDS: Record<string, CommandEntry> = {
  seal: { run: sealCommand, summary: 'encrypt a value for a sealed secret (GitOps)', usage: SEAL_USAGE },
  'fetch-key': { run: fetchKeyCommand, summary: 'save a KeyPolicy\'s sealing public key and its fingerprint for offline sealing', usage: FETCH_KEY_USAGE },
  status: { run: statusCommand, summary: 'encryption health of a namespace (-n) or the cluster (-A)', usage: STATUS_USAGE },
  check: { run: checkCommand, summary: 'for scripts: exit 0 when an EncryptedService is Ready (--wait until it is)', usage: CHECK_USAGE },
  revoke: { run: revokeCommand, summary: 'revoke an EncryptedService\'s certificate now: CRL, re-key, quarantine (--wait for its outcome)', usage: REVOKE_USAGE },
  rotate: { run: rotateCommand, summary: 'start a rotation of a RotationSchedule now (--wait for its outcome)', usage: ROTATE_USAGE },
  pause: { run: pauseCommand, summary: 'pause a RotationSchedule (annotation lockstep.dev/paused)', usage: PAUSE_USAGE },
  resume: { run: resumeCommand, summary: 'resume a paused RotationSchedule', usage: PAUSE_USAGE },
  render: { run: renderCommand, summary: 'print what the operator would generate for EncryptedServices (offline)', usage: RENDER_USAGE },
  audit: { run: auditCommand, summary: 'verify a KeyPolicy\'s hash-chained audit trail (audit verify)', usage: AUDIT_VERIFY_USAGE },
  'recovery-key': { run: recoveryKeyCommand, summary: 'make the offline key pair backups are encrypted to', usage: RECOVERY_KEY_USAGE },
  backup: { run: backupCommand, summary: 'export every KeyPolicy\'s keys, encrypted to the recovery public key', usage: BACKUP_USAGE },
  restore: { run: restoreCommand, summary: 'restore a backup\'s keys, envelope stores and KeyPolicies (create-only)', usage: RESTORE_USAGE },
  drill: { run: drillCommand, summary: 'recovery drill: prove every stored ciphertext opens with a backup\'s keys', usage: DRILL_USAGE },
  'kms-plugin': { run: (argv, io) => kmsPluginCommand(argv, io), summary: 'KMS v2 plugin: Secrets in etcd encrypted under Lockstep\'s keys (serve, init, rotate, status)', usage: KMS_PLUGIN_USAGE },
  'etcd-encryption': { run: etcdEncryptionCommand, summary: 'whether the API server encrypts Secrets in etcd with a KMS provider (and on EKS/GKE/AKS, with what)', usage: ETCD_ENCRYPTION_USAGE },
  version: { run: versionCommand, summary: 'the CLI\'s, API server\'s and operator\'s versions', usage: VERSION_USAGE },
  completion: { run: (argv, io) => completionCommand(argv, io, COMMANDS), summary: 'shell completion script (bash, zsh, fish)', usage: COMPLETION_USAGE },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const list = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`).join('\n');
  return `Usage: lockstep <command> [flags]   (also: kubectl lockstep <command> [flags])\n\nCommands:\n${list}\n\n`
    + `${KUBE_FLAGS_USAGE}\n${EXIT_CODES_HELP}\nRun lockstep <command> --help for a command's flags.\n`;
}

/** The message and exit code for an error a command threw. */
function failure(err: unknown, command: CommandEntry, io: CliIo, requestTimeoutMs?: number): { message: string; code: number } {
  if (err instanceof CliError) return { message: err.message, code: err.exitCode };
  const unreachable = clusterFailure(err, requestTimeoutMs);
  if (unreachable) {
    let server = '';
    try {
      server = io.kubeConfig().getCurrentCluster()?.server ?? '';
    } catch { /* the kubeconfig loaded before the request; nothing more to say */ }
    return { message: `could not talk to the cluster${server ? ` at ${server}` : ''}: ${unreachable}`, code: EXIT.unreachable };
  }
  if (apiErrorCode(err) !== undefined) {
    const api = describeApiError(err);
    return { message: `the API server answered ${api.code} ${api.reason}: ${api.message}`, code: EXIT.notReady };
  }
  // parseArgs reports unknown or malformed flags with these codes.
  const code = (err as { code?: string }).code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) return { message: `${(err as Error).message}\n${command.usage}`, code: EXIT.usage };
  return { message: (err as Error).message ?? String(err), code: EXIT.notReady };
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let split: ReturnType<typeof extractKubeFlags>;
  try {
    split = extractKubeFlags(argv);
  } catch (err) {
    io.err(`error: ${(err as Error).message}\n`);
    return EXIT.usage;
  }
  const [name, ...rest] = split.rest;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    io.out(usage());
    return name ? EXIT.ok : EXIT.usage;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`unknown command ${name}\n${usage()}`);
    return EXIT.usage;
  }
  io.useKubeFlags?.(split.flags);
  try {
    return await command.run(rest, io);
  } catch (err) {
    const { message, code } = failure(err, command, io, split.flags.requestTimeoutMs);
    io.err(`error: ${message}\n`);
    return code;
  }
}

// Run only as the entry point; argv[1] may be a symlink (npm's bin links, kubectl plugins).
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  runCli(process.argv.slice(2), processIo()).then((code) => process.exit(code), (err: unknown) => {
    process.stderr.write(`error: ${String(err)}\n`);
    process.exit(1);
  });
}
