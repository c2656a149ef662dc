// What a CLI command may touch, injected so commands run in tests without a terminal or cluster.
import { readFile, writeFile } from 'node:fs/promises';
import * as k8s from '@kubernetes/client-node';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  readStdin(): Promise<Buffer>;
  readFile(path: string): Promise<Buffer>;
  /** Writes a file with `mode`; `exclusive` refuses to replace an existing one (key files). */
  writeFile?(path: string, data: string, options: { mode: number; exclusive?: boolean }): Promise<void>;
  /** The cluster to talk to (KUBECONFIG / in-cluster), created on first use. */
  kubeConfig(): k8s.KubeConfig;
}

/** A failure the user can act on: printed without a stack, exit code 1 (2 for usage errors). */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

export function processIo(): CliIo {
  let kc: k8s.KubeConfig | undefined;
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
      if (!kc) {
        kc = new k8s.KubeConfig();
        kc.loadFromDefault();
      }
      return kc;
    },
  };
}
