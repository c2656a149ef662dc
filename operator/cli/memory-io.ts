// A CliIo that keeps what a command prints, for tests of commands that need no cluster.
import type { CliIo } from './io.js';

export function memoryIo(): CliIo & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return {
    out: (t) => { out += t; },
    err: (t) => { err += t; },
    readStdin: async () => Buffer.alloc(0),
    readFile: async () => { throw new Error('not used'); },
    kubeConfig: () => { throw new Error('no cluster in unit tests'); },
    stdout: () => out,
    stderr: () => err,
  };
}
