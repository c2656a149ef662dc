import { createSecretKey, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { generateDataKey } from './datakey.js';
import { decryptValue, encryptValue, envelopeDataKeyId } from './envelope.js';
import { DecryptError } from './errors.js';

const binding = { namespace: 'payments', name: 'ledger-db', key: 'password' };

function failure(action: () => unknown): DecryptError {
  try {
    action();
  } catch (error) {
    if (error instanceof DecryptError) return error;
    throw error;
  }
  throw new Error('expected a DecryptError');
}

function flipByte(envelope: string, part: number): string {
  const parts = envelope.split('.');
  const bytes = Buffer.from(parts[part] ?? '', 'base64url');
  bytes[0] = (bytes[0] ?? 0) ^ 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

describe('envelope encryption', () => {
  const dataKey = generateDataKey();

  it('round-trips strings, bytes and the empty value', () => {
    expect(decryptValue(dataKey, encryptValue(dataKey, 's3cr3t-ä', binding), binding).toString('utf8')).toBe('s3cr3t-ä');
    const bytes = randomBytes(300);
    expect(decryptValue(dataKey, encryptValue(dataKey, bytes, binding), binding).equals(bytes)).toBe(true);
    expect(decryptValue(dataKey, encryptValue(dataKey, '', binding), binding).length).toBe(0);
  });

  it('names the data key and uses a fresh IV each time', () => {
    const a = encryptValue(dataKey, 'same', binding);
    const b = encryptValue(dataKey, 'same', binding);
    expect(a).not.toBe(b);
    expect(a.startsWith(`lsenc1.${dataKey.id}.`)).toBe(true);
    expect(envelopeDataKeyId(a)).toBe(dataKey.id);
  });

  it.each([
    ['namespace', { ...binding, namespace: 'other' }],
    ['Secret name', { ...binding, name: 'other-db' }],
    ['data key', { ...binding, key: 'username' }],
  ])('fails authentication when moved to another %s', (_what, elsewhere) => {
    const envelope = encryptValue(dataKey, 'value', binding);
    expect(failure(() => decryptValue(dataKey, envelope, elsewhere)).reason).toBe('Tampered');
  });

  it.each([
    ['IV', 2],
    ['ciphertext', 3],
    ['tag', 4],
  ])('detects a changed %s', (_what, part) => {
    const envelope = encryptValue(dataKey, 'value', binding);
    expect(failure(() => decryptValue(dataKey, flipByte(envelope, part), binding)).reason).toBe('Tampered');
  });

  it('refuses another data key, naming ids only', () => {
    const envelope = encryptValue(dataKey, 'value', binding);
    const other = generateDataKey();
    const error = failure(() => decryptValue(other, envelope, binding));
    expect(error.reason).toBe('UnknownKey');
    expect(error.message).toContain(dataKey.id);
  });

  it('detects a data key id swapped in the envelope (the id is authenticated)', () => {
    const envelope = encryptValue(dataKey, 'value', binding);
    const impostor = { id: generateDataKey().id, key: dataKey.key };
    const relabelled = envelope.replace(dataKey.id, impostor.id);
    expect(failure(() => decryptValue(impostor, relabelled, binding)).reason).toBe('Tampered');
  });

  it('detects the right id with the wrong key bytes', () => {
    const envelope = encryptValue(dataKey, 'value', binding);
    const wrongBytes = { id: dataKey.id, key: createSecretKey(randomBytes(32)) };
    expect(failure(() => decryptValue(wrongBytes, envelope, binding)).reason).toBe('Tampered');
  });

  it.each(['', 'lsenc1', 'lsenc2.dek-000000000000000000000000.a.b.c', `lsenc1.${'x'.repeat(10)}.AAAA.AAAA.AAAA`, 'lsenc1.dek-000000000000000000000000.!!.AA.AA'])(
    'reports %p as malformed',
    (envelope) => {
      expect(failure(() => decryptValue(dataKey, envelope, binding)).reason).toBe('Malformed');
    },
  );

  it('reports a short IV or tag as malformed', () => {
    const parts = encryptValue(dataKey, 'value', binding).split('.');
    parts[4] = Buffer.alloc(8).toString('base64url');
    expect(failure(() => decryptValue(dataKey, parts.join('.'), binding)).reason).toBe('Malformed');
  });

  it('keeps plaintext and key bytes out of errors', () => {
    const envelope = encryptValue(dataKey, 'hunter2-plaintext', binding);
    const error = failure(() => decryptValue(dataKey, envelope, { ...binding, key: 'other' }));
    const keyText = dataKey.key.export().toString('base64');
    for (const rendered of [error.message, String(error), JSON.stringify(error), error.stack ?? '']) {
      expect(rendered).not.toContain('hunter2');
      expect(rendered).not.toContain(keyText);
      expect(rendered).not.toContain(envelope.split('.')[3]);
    }
  });
});
