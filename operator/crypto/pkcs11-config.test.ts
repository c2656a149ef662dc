import { describe, expect, it } from '@jest/globals';
import { inspect } from 'node:util';
import { createLogger, MemorySink } from '../runtime/logger.js';
import { SecretRegistry } from '../runtime/redact.js';
import { parsePkcs11Secret } from './pkcs11-config.js';

const b64 = (value: string) => Buffer.from(value, 'utf8').toString('base64');
// Short on purpose: HSM PINs often are, and the logger's value registry ignores values under 8.
const PIN = '4711';

describe('parsePkcs11Secret', () => {
  it('reads module, token label and PIN from the Secret data', () => {
    const config = parsePkcs11Secret({ module: b64('/usr/lib/softhsm/libsofthsm2.so'), tokenLabel: b64('lockstep'), pin: b64(`${PIN}\n`) });
    expect(config.modulePath).toBe('/usr/lib/softhsm/libsofthsm2.so');
    expect(config.tokenLabel).toBe('lockstep');
    expect(config.slot).toBeUndefined();
    expect(config.pin.reveal()).toBe(PIN);
  });

  it('reads a slot id instead of a label', () => {
    expect(parsePkcs11Secret({ module: '/opt/hsm/lib.so', slot: '1136386585', pin: PIN }, { encoded: false }).slot).toBe(1136386585n);
  });

  it.each([
    [{ tokenLabel: 'x', pin: PIN }, 'no "module"'],
    [{ module: 'lib.so', tokenLabel: 'x', pin: PIN }, 'absolute path'],
    [{ module: '/lib.so', pin: PIN }, 'exactly one of'],
    [{ module: '/lib.so', tokenLabel: 'x', slot: '1', pin: PIN }, 'exactly one of'],
    [{ module: '/lib.so', tokenLabel: 'x'.repeat(33), pin: PIN }, '32 bytes'],
    [{ module: '/lib.so', slot: '-1', pin: PIN }, 'decimal slot id'],
    [{ module: '/lib.so', tokenLabel: 'x' }, 'no "pin"'],
  ])('refuses %j as Misconfigured (%s)', (data, message) => {
    expect(() => parsePkcs11Secret(data as Record<string, string>, { encoded: false })).toThrow(expect.objectContaining({ name: 'KeyStoreError', reason: 'Misconfigured', message: expect.stringContaining(message) }));
  });

  it('never shows the PIN: string, JSON, inspect, and the operator logger', () => {
    const data = { module: b64('/usr/lib/softhsm/libsofthsm2.so'), tokenLabel: b64('lockstep'), pin: b64(PIN) };
    const config = parsePkcs11Secret(data);
    const sink = new MemorySink();
    const log = createLogger({ sink, secrets: new SecretRegistry() });
    log.info('hsm config', { config, pin: config.pin, secretData: { pin: PIN }, decoded: { pin: PIN, userPin: PIN } });
    const shown = [String(config.pin), `${config.pin}`, JSON.stringify(config), inspect(config), inspect(config.pin), ...sink.lines].join('\n');
    expect(shown).toContain('[REDACTED]');
    expect(shown).not.toContain(PIN);
    expect(shown).not.toContain(b64(PIN));
  });
});
