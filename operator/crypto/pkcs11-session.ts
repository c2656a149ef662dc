import type * as Pkcs11Js from 'pkcs11js';
import { KeyStoreError } from './key-store-errors.js';
import type { Pkcs11Config } from './pkcs11-config.js';

// One logged-in PKCS#11 session on the KeyPolicy's token, reopened on demand. Every call goes
// through `run`, which turns the Cryptoki return values that mean "the session, token or module
// went away" into KeyStoreError('Unavailable') and forgets the session, so the next call logs in
// again once the token is back. Nothing here creates or deletes keys on its own.
//
// pkcs11js is loaded when a session is first opened, not when this file is imported: an operator
// whose policies all keep their KEK in a Secret runs without the native addon.

export type Pkcs11Module = typeof Pkcs11Js;
export type Pkcs11 = InstanceType<Pkcs11Module['PKCS11']>;
export type Handle = Buffer;

// The Cryptoki return values (PKCS#11 v2.40 §5.1) this code tells apart.
export const CKR = {
  GENERAL_ERROR: 0x05,
  FUNCTION_FAILED: 0x06,
  DEVICE_ERROR: 0x30,
  DEVICE_MEMORY: 0x31,
  DEVICE_REMOVED: 0x32,
  ENCRYPTED_DATA_INVALID: 0x40,
  ENCRYPTED_DATA_LEN_RANGE: 0x41,
  KEY_HANDLE_INVALID: 0x60,
  MECHANISM_INVALID: 0x70,
  MECHANISM_PARAM_INVALID: 0x71,
  OBJECT_HANDLE_INVALID: 0x82,
  PIN_INCORRECT: 0xa0,
  PIN_EXPIRED: 0xa3,
  PIN_LOCKED: 0xa4,
  SESSION_CLOSED: 0xb0,
  SESSION_COUNT: 0xb1,
  SESSION_HANDLE_INVALID: 0xb3,
  TOKEN_NOT_PRESENT: 0xe0,
  TOKEN_NOT_RECOGNIZED: 0xe1,
  USER_ALREADY_LOGGED_IN: 0x100,
  USER_NOT_LOGGED_IN: 0x101,
  CRYPTOKI_NOT_INITIALIZED: 0x190,
  CRYPTOKI_ALREADY_INITIALIZED: 0x191,
} as const;

// Session states (PKCS#11 v2.40 §5.7) in which the user is logged in.
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;

const CKR_NAMES = new Map<number, string>(Object.entries(CKR).map(([name, code]) => [code, `CKR_${name}`]));

/** Return values after which the session (or the whole token) is gone; a retry may succeed. */
const LOST = new Set<number>([
  CKR.DEVICE_ERROR,
  CKR.DEVICE_MEMORY,
  CKR.DEVICE_REMOVED,
  CKR.SESSION_CLOSED,
  CKR.SESSION_COUNT,
  CKR.SESSION_HANDLE_INVALID,
  CKR.TOKEN_NOT_PRESENT,
  CKR.TOKEN_NOT_RECOGNIZED,
  CKR.USER_NOT_LOGGED_IN,
  CKR.CRYPTOKI_NOT_INITIALIZED,
]);
const PIN_REFUSED = new Set<number>([CKR.PIN_INCORRECT, CKR.PIN_EXPIRED, CKR.PIN_LOCKED]);

export function ckrName(code: number): string {
  return CKR_NAMES.get(code) ?? `CKR_0x${code.toString(16)}`;
}

/** The Cryptoki return value of a pkcs11js error; undefined for anything else. */
export function ckrOf(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'number') return code;
  // Some pkcs11js calls (C_SetAttributeValue) throw a plain error whose message is "CKR_NAME:code".
  const match = /^CKR_[A-Z_]+:(\d+)$/.exec(error.message);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

export function isLost(error: unknown): boolean {
  const code = ckrOf(error);
  return code !== undefined && LOST.has(code);
}

/** Loads pkcs11js; tests and callers may pass their own. */
export type Pkcs11Loader = () => Promise<Pkcs11Module>;

export const loadPkcs11js: Pkcs11Loader = async () => {
  const loaded = (await import('pkcs11js')) as Pkcs11Module & { default?: Pkcs11Module };
  return loaded.default ?? loaded;
};

export class Pkcs11Session {
  private session: Handle | undefined;

  private constructor(
    readonly lib: Pkcs11Module,
    private readonly p11: Pkcs11,
    readonly slot: Handle,
    private readonly config: Pkcs11Config,
  ) {}

  /** Loads the module, finds the token and logs in. Throws KeyStoreError. */
  static async open(config: Pkcs11Config, load: Pkcs11Loader = loadPkcs11js): Promise<Pkcs11Session> {
    let lib: Pkcs11Module;
    try {
      lib = await load();
    } catch {
      throw new KeyStoreError('Misconfigured', 'the pkcs11js native addon does not load (was it built by npm ci?)');
    }
    const p11 = new lib.PKCS11();
    try {
      p11.load(config.modulePath);
    } catch {
      throw new KeyStoreError('Misconfigured', `PKCS#11 module ${config.modulePath} does not load`);
    }
    try {
      p11.C_Initialize();
    } catch (error) {
      // One Cryptoki library per process: another KeyPolicy (or a test) initialised it already.
      if (ckrOf(error) !== CKR.CRYPTOKI_ALREADY_INITIALIZED) throw translate(error, 'C_Initialize');
    }
    const slot = findSlot(p11, config);
    const opened = new Pkcs11Session(lib, p11, slot, config);
    opened.ensure();
    return opened;
  }

  /** Where this session points, for messages: never the PIN. */
  describe(): string {
    return this.config.tokenLabel !== undefined ? `token "${this.config.tokenLabel}"` : `slot ${String(this.config.slot)}`;
  }

  /**
   * Runs one piece of Cryptoki work on the logged-in session. A lost session becomes
   * KeyStoreError('Unavailable') and is forgotten; any other Cryptoki error is rethrown as is
   * for the caller to classify.
   */
  run<T>(work: (p11: Pkcs11, session: Handle) => T): T {
    const session = this.ensure();
    try {
      return work(this.p11, session);
    } catch (error) {
      if (isLost(error)) {
        this.session = undefined;
        throw unavailable(error, this.describe());
      }
      throw error;
    }
  }

  /**
   * Whether the session still answers. Used to tell a bad ciphertext from a failing device when
   * a module reports both as CKR_GENERAL_ERROR (SoftHSM does, for a GCM tag mismatch).
   */
  healthy(): boolean {
    if (this.session === undefined) return false;
    try {
      this.p11.C_GetSessionInfo(this.session);
      return true;
    } catch {
      this.session = undefined;
      return false;
    }
  }

  /**
   * Throws KeyStoreError('Unavailable') unless the session is logged in as the user. Private
   * objects are invisible to a logged-out session, so "no such key" is only believed after this.
   */
  assertLoggedIn(): void {
    const state = this.run((p11, session) => p11.C_GetSessionInfo(session).state);
    if (state !== CKS_RO_USER_FUNCTIONS && state !== CKS_RW_USER_FUNCTIONS) {
      this.session = undefined;
      throw new KeyStoreError('Unavailable', `${this.describe()}: the session is no longer logged in; will log in again`, ckrName(CKR.USER_NOT_LOGGED_IN));
    }
  }

  /** Closes this session (the token's keys stay; other users of the module are unaffected). */
  close(): void {
    const session = this.session;
    this.session = undefined;
    if (session === undefined) return;
    try {
      this.p11.C_CloseSession(session);
    } catch {
      // Already gone: nothing to release.
    }
  }

  private ensure(): Handle {
    if (this.session !== undefined) return this.session;
    const where = this.describe();
    let session: Handle;
    try {
      session = this.p11.C_OpenSession(this.slot, this.lib.CKF_SERIAL_SESSION | this.lib.CKF_RW_SESSION);
    } catch (error) {
      // Any Cryptoki answer here (slot gone, session count, device) is the token not being usable now.
      throw ckrOf(error) !== undefined ? unavailable(error, where) : translate(error, 'C_OpenSession');
    }
    try {
      this.p11.C_Login(session, this.lib.CKU_USER, this.config.pin.reveal());
    } catch (error) {
      const code = ckrOf(error);
      // Login state belongs to the application, not the session: a second session is already in.
      if (code !== CKR.USER_ALREADY_LOGGED_IN) {
        try {
          this.p11.C_CloseSession(session);
        } catch {
          // The session may be what failed.
        }
        if (code !== undefined && PIN_REFUSED.has(code)) {
          throw new KeyStoreError('Misconfigured', `${where}: the PIN was refused (${ckrName(code)})`, ckrName(code));
        }
        throw isLost(error) ? unavailable(error, where) : translate(error, 'C_Login');
      }
    }
    this.session = session;
    return session;
  }
}

function findSlot(p11: Pkcs11, config: Pkcs11Config): Handle {
  let slots: Handle[];
  try {
    slots = p11.C_GetSlotList(true);
  } catch (error) {
    throw translate(error, 'C_GetSlotList');
  }
  if (config.slot !== undefined) {
    const slot = slots.find((candidate) => candidate.length >= 8 && candidate.readBigUInt64LE(0) === config.slot);
    if (slot === undefined) throw new KeyStoreError('Unavailable', `no token present in slot ${String(config.slot)}`);
    return slot;
  }
  const matches = slots.filter((slot) => {
    try {
      return p11.C_GetTokenInfo(slot).label.trimEnd() === config.tokenLabel;
    } catch {
      return false;
    }
  });
  if (matches.length > 1) throw new KeyStoreError('Misconfigured', `${matches.length} tokens are labelled "${config.tokenLabel ?? ''}"`);
  const [slot] = matches;
  // A token that is not there may be plugged in (or its HSM reachable) later.
  if (slot === undefined) throw new KeyStoreError('Unavailable', `no token labelled "${config.tokenLabel ?? ''}" is present`);
  return slot;
}

function unavailable(error: unknown, where: string): KeyStoreError {
  const code = ckrOf(error);
  const name = code === undefined ? undefined : ckrName(code);
  return new KeyStoreError('Unavailable', `${where}: PKCS#11 session lost${name === undefined ? '' : ` (${name})`}; will retry`, name);
}

function translate(error: unknown, call: string): KeyStoreError {
  const code = ckrOf(error);
  if (code !== undefined && LOST.has(code)) return unavailable(error, call);
  const name = code === undefined ? undefined : ckrName(code);
  return new KeyStoreError('Misconfigured', `${call} failed${name === undefined ? '' : ` (${name})`}`, name);
}
