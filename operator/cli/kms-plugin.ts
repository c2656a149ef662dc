// `lockstep kms-plugin`: the Kubernetes KMS v2 plugin that encrypts Secrets in etcd under keys
// Lockstep makes (operator/kms/), and the commands that make and rotate its key file.
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parsePkcs11Secret } from '../crypto/pkcs11-config.js';
import { Pkcs11Session } from '../crypto/pkcs11-session.js';
import { createLogger, parseLogLevel, type LogSink } from '../runtime/logger.js';
import { kmsClient } from '../kms/client.js';
import { FileKeyBackend } from '../kms/file-backend.js';
import { createKeyFile, rotateKeyFile } from '../kms/key-file.js';
import type { KmsKeyBackend } from '../kms/backend.js';
import { startKmsPlugin } from '../kms/server.js';
import { TokenKeyBackend } from '../kms/token-backend.js';
import { createTokenIndex, rotateTokenIndex } from '../kms/token-index-file.js';
import { CliError, EXIT, type CliIo } from './io.js';

export const KMS_PLUGIN_USAGE = `Usage: lockstep kms-plugin --socket PATH --keys FILE      serve KMS v2 on a Unix socket
       lockstep kms-plugin init --keys FILE                 make a key file (never replaces one)
       lockstep kms-plugin rotate --keys FILE               new active key; earlier keys stay decrypt-only
       lockstep kms-plugin status --socket PATH             ask a running plugin for its health and key ID
With --pkcs11 CONFIG (serve, init, rotate) the root keys are made and kept in a PKCS#11 token
(an HSM) and never leave it; --keys FILE then holds only their index (kids and dates). CONFIG is
a JSON file readable only by its owner: {"module": "/path/to/pkcs11.so", "tokenLabel": "...",
"pin": "..."} ("slot" instead of "tokenLabel" also works).
The API server's EncryptionConfiguration names the socket (kms provider, apiVersion v2,
endpoint unix://PATH). The key file lives on the control-plane host, readable only by the user
that runs the plugin, never in a Secret (the plugin would need itself to read it). A running
plugin picks up a rotated key file on its next call; the API server then re-encrypts each
Secret under the new key when it is next written. Logs: JSON lines on stdout, key IDs only
(LOCKSTEP_LOG_LEVEL=debug adds one line per Decrypt).
`;

/** Resolves when the process is asked to stop (SIGTERM from cluster-down, Ctrl-C). */
function stopSignal(): Promise<string> {
  return new Promise((resolveStop) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => resolveStop(signal));
  });
}

export interface KmsPluginRun {
  /** Resolves when serving should end (default: SIGTERM or SIGINT). */
  readonly stopped?: () => Promise<string>;
  /** Where the plugin's log lines go (default: stdout). */
  readonly logSink?: LogSink;
}

export async function kmsPluginCommand(argv: readonly string[], io: CliIo, run: KmsPluginRun = {}): Promise<number> {
  const [first, ...rest] = argv;
  const action = first === 'init' || first === 'rotate' || first === 'status' ? first : 'serve';
  const { values } = parseArgs({
    args: action === 'serve' ? [...argv] : rest,
    options: { socket: { type: 'string' }, keys: { type: 'string' }, pkcs11: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    io.out(KMS_PLUGIN_USAGE);
    return EXIT.ok;
  }
  const token = async (): Promise<Pkcs11Session | undefined> => (values.pkcs11 ? openToken(resolve(values.pkcs11)) : undefined);
  const need = (name: 'socket' | 'keys'): string => {
    const value = values[name];
    if (!value) throw new CliError(`--${name} is required\n${KMS_PLUGIN_USAGE}`, EXIT.usage);
    return resolve(value);
  };
  switch (action) {
    case 'init': {
      const keys = need('keys');
      const session = await token();
      try {
        const kid = await (session ? createTokenIndex(keys, session, new Date()) : createKeyFile(keys, new Date())).catch((err: NodeJS.ErrnoException) => {
          throw new CliError(err.code === 'EEXIST' ? `${keys} exists; rotate it with lockstep kms-plugin rotate` : err.message);
        });
        io.out(session ? `key index ${keys}: active key ${kid}, made in ${session.describe()}\n` : `key file ${keys}: active key ${kid}\n`);
        return EXIT.ok;
      } finally {
        session?.close();
      }
    }
    case 'rotate': {
      const keys = need('keys');
      const session = await token();
      try {
        const rotation = await (session ? rotateTokenIndex(keys, session, new Date()) : rotateKeyFile(keys, new Date())).catch((err: Error) => {
          throw new CliError(`cannot rotate ${keys}: ${err.message}`);
        });
        io.out(`key ${session ? 'index' : 'file'} ${keys}: active key ${rotation.activated}; ${rotation.deactivated} and earlier keys are decrypt-only (${rotation.keys} keys)\n`);
        return EXIT.ok;
      } finally {
        session?.close();
      }
    }
    case 'status': {
      const client = kmsClient(need('socket'));
      try {
        const status = await client.status();
        io.out(`version ${status.version}, healthz ${status.healthz}, key ID ${status.key_id}\n`);
        return status.healthz === 'ok' ? EXIT.ok : EXIT.notReady;
      } catch (err) {
        throw new CliError(`no answer from the plugin: ${(err as Error).message}`);
      } finally {
        client.close();
      }
    }
    case 'serve': {
      const socket = need('socket');
      const keys = need('keys');
      const log = createLogger({ name: 'kms-plugin', level: parseLogLevel(process.env.LOCKSTEP_LOG_LEVEL), ...(run.logSink ? { sink: run.logSink } : {}) });
      const events = {
        loaded: (activeKid: string, count: number) => log.info('key file loaded', { file: keys, activeKeyId: activeKid, decryptKeyCount: count }),
        failed: (message: string, serving: boolean) => log.error(serving ? 'key file unusable; serving with the last good keys' : 'key file unusable', { error: message }),
      };
      const session = await token();
      const backend: KmsKeyBackend = session ? new TokenKeyBackend(keys, session, events) : new FileKeyBackend(keys, events);
      const plugin = await startKmsPlugin({ socket, backend, log }).catch((err: Error) => {
        throw new CliError(`cannot start the KMS plugin: ${err.message}`);
      });
      const signal = await (run.stopped ?? stopSignal)();
      log.info('stopping', { signal });
      await plugin.close();
      session?.close();
      return EXIT.ok;
    }
  }
}

/** The token the CONFIG file names; the file must be readable by its owner only (it holds the PIN). */
async function openToken(path: string): Promise<Pkcs11Session> {
  const info = await stat(path).catch((err: Error) => {
    throw new CliError(`cannot read the PKCS#11 configuration: ${err.message}`);
  });
  if ((info.mode & 0o077) !== 0) throw new CliError(`${path} holds the token's PIN: make it readable by its owner only (chmod 600 ${path})`);
  let data: Record<string, string>;
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    data = Object.fromEntries(Object.entries(parsed).map(([key, value]) => [key, String(value)]));
  } catch {
    throw new CliError(`${path} is not a JSON object with "module", "tokenLabel" (or "slot") and "pin"`);
  }
  try {
    return await Pkcs11Session.open(parsePkcs11Secret(data, { encoded: false }));
  } catch (err) {
    throw new CliError(`cannot open the PKCS#11 token: ${(err as Error).message}`);
  }
}
