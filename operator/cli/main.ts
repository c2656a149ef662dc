#!/usr/bin/env node
// The lockstep CLI (also `kubectl lockstep`): a small dispatcher; each command lives in its own
// file and takes its arguments and an injected CliIo, so it is testable without a terminal.
import '../runtime/node-guard.js'; // first: a clear error on an unsupported Node.js
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { AUDIT_VERIFY_USAGE, auditCommand } from './audit-verify.js';
import { BACKUP_USAGE, backupCommand } from './backup.js';
import { DRILL_USAGE, drillCommand } from './drill.js';
import { CliError, processIo, type CliIo } from './io.js';
import { RECOVERY_KEY_USAGE, recoveryKeyCommand } from './recovery-key-command.js';
import { RENDER_USAGE, renderCommand } from './render.js';
import { RESTORE_USAGE, restoreCommand } from './restore.js';
import { SEAL_USAGE, sealCommand } from './seal.js';
import { STATUS_USAGE, statusCommand } from './status.js';

export type Command = (argv: readonly string[], io: CliIo) => Promise<number>;

export interface CommandEntry {
  readonly run: Command;
  readonly summary: string;
  readonly usage: string;
}

export const COMMANDS: Record<string, CommandEntry> = {
  seal: { run: sealCommand, summary: 'encrypt a value for a sealed secret (GitOps)', usage: SEAL_USAGE },
  status: { run: statusCommand, summary: 'encryption health of a namespace (-n) or the cluster (-A)', usage: STATUS_USAGE },
  render: { run: renderCommand, summary: 'print what the operator would generate for EncryptedServices (offline)', usage: RENDER_USAGE },
  audit: { run: auditCommand, summary: 'verify a KeyPolicy\'s hash-chained audit trail (audit verify)', usage: AUDIT_VERIFY_USAGE },
  'recovery-key': { run: recoveryKeyCommand, summary: 'make the offline key pair backups are encrypted to', usage: RECOVERY_KEY_USAGE },
  backup: { run: backupCommand, summary: 'export every KeyPolicy\'s keys, encrypted to the recovery public key', usage: BACKUP_USAGE },
  restore: { run: restoreCommand, summary: 'restore a backup\'s keys, envelope stores and KeyPolicies (create-only)', usage: RESTORE_USAGE },
  drill: { run: drillCommand, summary: 'recovery drill: prove every stored ciphertext opens with a backup\'s keys', usage: DRILL_USAGE },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const list = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`).join('\n');
  return `Usage: lockstep <command> [flags]\n\nCommands:\n${list}\n\nRun lockstep <command> --help for a command's flags.\n`;
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    io.out(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`unknown command ${name}\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`error: ${err.message}\n`);
      return err.exitCode;
    }
    // parseArgs reports unknown or malformed flags with these codes.
    const code = (err as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      io.err(`error: ${(err as Error).message}\n${command.usage}`);
      return 2;
    }
    io.err(`error: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
}

// Run only as the entry point; argv[1] may be a symlink (npm's bin links, kubectl plugins).
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  runCli(process.argv.slice(2), processIo()).then((code) => process.exit(code), (err: unknown) => {
    process.stderr.write(`error: ${String(err)}\n`);
    process.exit(1);
  });
}
