import { inspect } from 'node:util';
import { KeyStoreError } from './key-store-errors.js';

// Where a KeyPolicy's HSM is: the PKCS#11 module (a shared library in the operator's image or a
// mounted volume), the token (by label, or by slot id), and the user PIN — all read from a Secret
// the operator is allowed to read. The PIN is held in a Pin object that prints, serialises and
// inspects as [REDACTED], so passing the config to a logger or an error cannot leak it; HSM PINs
// are often shorter than the logger's registry scrubs (8 characters), so this is the guard.

export const PKCS11_SECRET_KEYS = { module: 'module', tokenLabel: 'tokenLabel', slot: 'slot', pin: 'pin' } as const;

const REDACTED = '[REDACTED]';

export class Pin {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The PIN itself, for C_Login only. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

export interface Pkcs11Config {
  /** Absolute path of the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so). */
  readonly modulePath: string;
  /** The token, by label (preferred: slot ids can change when tokens are added) ... */
  readonly tokenLabel?: string;
  /** ... or by slot id. */
  readonly slot?: bigint;
  readonly pin: Pin;
}

/** Reads the Secret's data (base64, as the API returns it) or stringData-like decoded values. */
export function parsePkcs11Secret(data: Readonly<Record<string, string>>, options: { encoded: boolean } = { encoded: true }): Pkcs11Config {
  const read = (key: string): string | undefined => {
    const raw = data[key];
    if (raw === undefined) return undefined;
    return options.encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  };
  const modulePath = read(PKCS11_SECRET_KEYS.module)?.trim();
  const tokenLabel = read(PKCS11_SECRET_KEYS.tokenLabel)?.trim();
  const slot = read(PKCS11_SECRET_KEYS.slot)?.trim();
  const pin = read(PKCS11_SECRET_KEYS.pin)?.replace(/\r?\n$/, '');
  if (modulePath === undefined || modulePath === '') throw misconfigured(`no "${PKCS11_SECRET_KEYS.module}" (path of the PKCS#11 module)`);
  if (!modulePath.startsWith('/') || modulePath.includes('\0')) throw misconfigured(`"${PKCS11_SECRET_KEYS.module}" must be an absolute path`);
  if ((tokenLabel === undefined || tokenLabel === '') === (slot === undefined || slot === '')) {
    throw misconfigured(`exactly one of "${PKCS11_SECRET_KEYS.tokenLabel}" and "${PKCS11_SECRET_KEYS.slot}" is needed`);
  }
  // PKCS#11 token labels are 32 bytes, blank-padded.
  if (tokenLabel !== undefined && tokenLabel !== '' && Buffer.byteLength(tokenLabel, 'utf8') > 32) {
    throw misconfigured(`"${PKCS11_SECRET_KEYS.tokenLabel}" is longer than a PKCS#11 token label (32 bytes)`);
  }
  if (slot !== undefined && slot !== '' && !/^[0-9]{1,20}$/.test(slot)) throw misconfigured(`"${PKCS11_SECRET_KEYS.slot}" must be a decimal slot id`);
  if (pin === undefined || pin === '') throw misconfigured(`no "${PKCS11_SECRET_KEYS.pin}" (the token's user PIN)`);
  return {
    modulePath,
    ...(tokenLabel !== undefined && tokenLabel !== '' ? { tokenLabel } : {}),
    ...(slot !== undefined && slot !== '' ? { slot: BigInt(slot) } : {}),
    pin: new Pin(pin),
  };
}

function misconfigured(what: string): KeyStoreError {
  return new KeyStoreError('Misconfigured', `PKCS#11 Secret: ${what}`);
}
