// Starts the operator for a test: in-process (fast, logs captured in memory) or as a child
// process (what `make run` does; can be killed like a crashed pod). On a cluster where the
// operator is already installed (the kind path), LOCKSTEP_E2E_OPERATOR=external makes both a
// no-op, so the same suite runs unchanged.
import { spawn, type ChildProcess } from 'node:child_process';
import type { KubeConfig } from '@kubernetes/client-node';
import { buildOperator, type Operator } from '../../operator/app.js';
import type { OperatorConfig } from '../../operator/config.js';
import { parseIssuerSetting } from '../../operator/encryptedservice/policy.js';
import { createLogger, MemorySink } from '../../operator/runtime/logger.js';
import { repoRoot } from './manifests.js';

export const externalOperator = process.env.LOCKSTEP_E2E_OPERATOR === 'external';

export interface RunningOperator {
  /** Everything the operator logged (JSON lines). */
  logs(): string;
  stop(): Promise<void>;
}

export function testConfig(overrides: Partial<OperatorConfig> = {}): OperatorConfig {
  return {
    identity: `e2e-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    namespace: 'lockstep-system',
    // Host-process workloads read their Secret at once; pods get it within a kubelet sync (10s here).
    secretPropagationMs: 20_000,
    leaderElection: undefined,
    healthPort: 0,
    healthHost: '127.0.0.1',
    defaultIssuer: parseIssuerSetting('ClusterIssuer/lockstep-ca'),
    logLevel: 'debug',
    // The local cluster runs cert-manager without its built-in approver: the operator approves
    // every request (and denies forged Lockstep identities), so nothing issues without one.
    approver: 'all',
    ...overrides,
  };
}

export function startInProcess(kc: KubeConfig, overrides: Partial<OperatorConfig> = {}): RunningOperator & { operator?: Operator } {
  if (externalOperator) return { logs: () => '', stop: async () => undefined };
  const sink = new MemorySink();
  const config = testConfig(overrides);
  const operator = buildOperator(kc, config, createLogger({ level: config.logLevel, sink, fields: { instance: config.identity } }));
  const abort = new AbortController();
  const done = operator.manager.run(abort.signal);
  return {
    operator,
    logs: () => sink.text(),
    async stop() {
      abort.abort();
      await done;
    },
  };
}

export interface ChildOperator extends RunningOperator {
  readonly process: ChildProcess;
  /** SIGKILL: a crash, no cleanup, lease not released. */
  kill(): Promise<void>;
}

export function startChild(env: Record<string, string> = {}): ChildOperator {
  const child = spawn(process.execPath, ['--import', 'tsx', 'operator/main.ts'], {
    cwd: repoRoot,
    env: { ...process.env, LOCKSTEP_DEFAULT_ISSUER: 'ClusterIssuer/lockstep-ca', LOCKSTEP_METRICS_ADDR: '127.0.0.1:0', LOCKSTEP_LOG_LEVEL: 'debug', LOCKSTEP_SECRET_PROPAGATION: '20s', LOCKSTEP_APPROVER: 'all', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  let stopping = false;
  const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => {
    // An operator that dies on its own is a finding: show why, the test alone would only time out.
    if (!stopping && !env.LOCKSTEP_FAILPOINTS) console.error(`operator child ${child.pid} exited by itself (code ${code}, signal ${signal}); last output:\n${out.slice(-4000)}`);
    resolve();
  }));
  return {
    process: child,
    logs: () => out,
    async stop() {
      stopping = true;
      if (child.exitCode === null) child.kill('SIGTERM');
      // The manager drains for at most 20 s: an operator still running well after that is a
      // finding to show, not a reason for the test file's teardown to time out without a word.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 45_000)));
      if (await Promise.race([exited, late]) === 'late') {
        console.error(`operator child ${child.pid} still running 45 s after SIGTERM; killed. Last output:\n${out.slice(-4000)}`);
        child.kill('SIGKILL');
        await exited;
      }
      clearTimeout(timer);
    },
    async kill() {
      stopping = true;
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
