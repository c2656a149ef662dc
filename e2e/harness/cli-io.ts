// The CLI's I/O for e2e tests that run its commands in-process against the test cluster: output
// is captured, stdin is given, and files come from `files` (default: none) or the real disk.
import type { KubeConfig } from '@kubernetes/client-node';
import { processIo, type CliIo } from '../../operator/cli/io.js';

export type CapturedIo = CliIo & { stdout: () => string; stderr: () => string };

export function capturedIo(kc: KubeConfig, stdin = '', files: Record<string, string> | 'disk' = {}): CapturedIo {
  let out = '';
  let err = '';
  const real = processIo();
  const fromDisk = files === 'disk';
  return {
    out: (t) => { out += t; },
    err: (t) => { err += t; },
    readStdin: async () => Buffer.from(stdin, 'utf8'),
    readFile: fromDisk ? real.readFile : async (path) => {
      const content = files[path];
      if (content === undefined) throw new Error(`ENOENT: ${path}`);
      return Buffer.from(content, 'utf8');
    },
    ...(fromDisk && real.writeFile ? { writeFile: real.writeFile } : {}),
    kubeConfig: () => kc,
    stdout: () => out,
    stderr: () => err,
  };
}
