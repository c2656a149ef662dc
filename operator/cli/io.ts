// What a CLI command may touch, injected so commands run in tests without a terminal or cluster.
import { readFile, writeFile } from 'node:fs/promises';
import type * as k8s from '@kubernetes/client-node';
import { loadKubeConfig, type KubeFlags } from './kube-flags.js';

export { CliError, EXIT } from './errors.js';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  readStdin(): Promise<Buffer>;
  readFile(path: string): Promise<Buffer>;
  /** Writes a file with `mode`; `exclusive` refuses to replace an existing one (key files). */
  writeFile?(path: string, data: string, options: { mode: number; exclusive?: boolean }): Promise<void>;
  /** The cluster to talk to (--kubeconfig/--context, KUBECONFIG, ~/.kube/config, in-cluster), created on first use. */
  kubeConfig(): k8s.KubeConfig;
  /** The cluster flags of this run (runCli passes them before a command runs); ignored by ios with a fixed cluster. */
  useKubeFlags?(flags: KubeFlags): void;
  /** Resolves on Ctrl-C (SIGINT) once a command asked for it; without it, Ctrl-C ends the process. */
  interrupted?(): Promise<void>;
  /** Waits `ms` (watch and wait loops); defaults to a timer. */
  sleep?(ms: number): Promise<void>;
}

export const sleepFor = (io: CliIo, ms: number): Promise<void> =>
  io.sleep ? io.sleep(ms) : new Promise((resolve) => setTimeout(resolve, ms));

export function processIo(): CliIo {
  let kc: k8s.KubeConfig | undefined;
  let flags: KubeFlags = {};
  let interrupt: Promise<void> | undefined;
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    async readStdin() {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
      return Buffer.concat(chunks);
    },
    readFile: (path) => readFile(path),
    writeFile: (path, data, options) => writeFile(path, data, { mode: options.mode, flag: options.exclusive ? 'wx' : 'w' }),
    kubeConfig() {
      kc ??= loadKubeConfig(flags);
      return kc;
    },
    useKubeFlags(given) {
      flags = given;
      kc = undefined;
    },
    interrupted() {
      interrupt ??= new Promise((resolve) => process.once('SIGINT', () => resolve()));
      return interrupt;
    },
  };
}
