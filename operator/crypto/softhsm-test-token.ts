// A real SoftHSM2 token in a temporary directory, for tests (never imported by production code).
// SoftHSM reads SOFTHSM2_CONF with getenv() at C_Initialize, once per process, and jest runs
// several test files in one process: the library is finalised before and after, so each file's
// token is the one C_Initialize sees, whichever file ran first.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHARE_ENV, Worker } from 'node:worker_threads';
import { Pin, type Pkcs11Config } from './pkcs11-config.js';
import { loadPkcs11js, Pkcs11Session } from './pkcs11-session.js';

const MODULE_CANDIDATES = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so'];
export const softhsmModule = MODULE_CANDIDATES.find((path) => existsSync(path));
export const softhsmAvailable = softhsmModule !== undefined && (() => {
  try {
    execFileSync('softhsm2-util', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
export const SOFTHSM_MISSING = 'SoftHSM2 is not installed (Debian: apt-get install -y softhsm2, or bash e2e/node/install-deps.sh)';

export interface TestToken {
  readonly dir: string;
  readonly config: Pkcs11Config;
  readonly session: Pkcs11Session;
  close(): Promise<void>;
}

/** Sets a variable in the process environment C code reads (jest gives each file a copy of process.env). */
export async function setProcessEnvironment(name: string, value: string): Promise<void> {
  await new Promise((resolve, reject) => {
    const worker = new Worker('const { workerData } = require("node:worker_threads"); process.env[workerData.name] = workerData.value;', {
      eval: true, env: SHARE_ENV, workerData: { name, value },
    });
    worker.on('exit', resolve);
    worker.on('error', reject);
  });
}

async function finalize(): Promise<void> {
  const lib = await loadPkcs11js();
  const p11 = new lib.PKCS11();
  p11.load(softhsmModule as string);
  try {
    p11.C_Finalize();
  } catch {
    // Not initialised: nothing to finalise.
  }
}

export async function openTestToken(label: string): Promise<TestToken> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-softhsm-'));
  mkdirSync(join(dir, 'tokens'));
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  await setProcessEnvironment('SOFTHSM2_CONF', conf);
  const pin = randomBytes(8).toString('hex');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', randomBytes(8).toString('hex')], {
    env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: 'ignore',
  });
  await finalize();
  const config: Pkcs11Config = { modulePath: softhsmModule as string, tokenLabel: label, pin: new Pin(pin) };
  const session = await Pkcs11Session.open(config);
  return {
    dir, config, session,
    async close() {
      session.close();
      await finalize();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
