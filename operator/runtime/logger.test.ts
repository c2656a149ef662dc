import { describe, expect, it } from '@jest/globals';
import { ApiException } from '@kubernetes/client-node';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import jose from 'node-jose';
import { describeApiError } from './api-error.js';
import { FakeClock } from './fake-clock.js';
import { createLogger, MemorySink, parseLogLevel } from './logger.js';
import { Redactor, SecretRegistry } from './redact.js';

function capture(level: 'debug' | 'info' = 'debug') {
  const sink = new MemorySink();
  const secrets = new SecretRegistry();
  const log = createLogger({ name: 'lockstep', sink, secrets, level, clock: new FakeClock(Date.UTC(2026, 10, 1)) });
  return { sink, secrets, log };
}

describe('Logger', () => {
  it('writes one JSON object per line with ts, level, logger name, msg and fields', () => {
    const { sink, log } = capture();
    log.info('reconciled', { object: 'shop/web', durationMs: 12 });
    expect(sink.lines).toHaveLength(1);
    expect(sink.records()[0]).toEqual({
      ts: '2026-11-01T00:00:00.000Z', level: 'info', logger: 'lockstep', msg: 'reconciled', object: 'shop/web', durationMs: 12,
    });
  });

  it('filters by level', () => {
    const { sink, log } = capture('info');
    log.debug('hidden');
    log.warn('shown');
    expect(sink.records().map((r) => r['msg'])).toEqual(['shown']);
    expect(log.enabled('debug')).toBe(false);
    expect(parseLogLevel('WARN')).toBe('warn');
    expect(parseLogLevel('loud', 'error')).toBe('error');
  });

  it('child loggers extend the name and bind fields; call fields win; reserved names are kept aside', () => {
    const { sink, log } = capture();
    const child = log.child('controller', { controller: 'es' }).child('worker', { worker: 1 });
    child.info('x', { worker: 2, msg: 'field named msg' });
    expect(sink.records()[0]).toMatchObject({
      logger: 'lockstep.controller.worker', controller: 'es', worker: 2, msg: 'x', _msg: 'field named msg',
    });
  });

  it('logs an ApiException by its Status reason and message, not by its body', () => {
    const { sink, log } = capture();
    const secretBody = JSON.stringify({
      kind: 'Status', code: 422, reason: 'Invalid', message: 'Secret "db" is invalid: metadata.labels: Invalid value',
      details: { causes: [{ field: 'data', message: 'echo c3VwZXJzZWNyZXQ=' }] },
    });
    const err = new ApiException(422, 'Unprocessable', secretBody, { 'content-type': 'application/json' });
    log.error('apply failed', { err });
    const rec = sink.records()[0] as { err: Record<string, unknown> };
    expect(rec.err).toEqual({
      name: 'Error', reason: 'Invalid', code: 422, message: 'Secret "db" is invalid: metadata.labels: Invalid value',
    });
    expect(sink.text()).not.toContain('c3VwZXJzZWNyZXQ=');
  });

  it('logs other errors with reason, message and stack frames but not the first stack line', () => {
    const { sink, log } = capture();
    log.warn('failed', { err: new TypeError('bad thing') });
    const rec = sink.records()[0] as { err: { name: string; reason: string; message: string; stack: string[] } };
    expect(rec.err.name).toBe('TypeError');
    expect(rec.err.reason).toBe('TypeError');
    expect(rec.err.message).toBe('bad thing');
    expect(rec.err.stack.length).toBeGreaterThan(0);
    expect(rec.err.stack.every((l) => l.startsWith('at '))).toBe(true);
  });
});

describe('no secret value reaches the log output', () => {
  it('through message, fields, nested values, bound fields, arrays, maps, errors and API errors', async () => {
    const { sink, secrets, log } = capture('debug');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = ec.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const jwk = ec.privateKey.export({ format: 'jwk' });
    const keystore = jose.JWK.createKeyStore();
    const kek = await keystore.generate('oct', 256, { alg: 'A256KW', use: 'enc' });
    const kekJson = kek.toJSON(true) as { k: string };
    const jwe = String(await jose.JWE.createEncrypt({ format: 'compact' }, kek).update('the plaintext value').final());
    const dek = randomBytes(32);
    const token = `sha256~${randomBytes(24).toString('base64url')}`;
    const password = `pw-${randomBytes(12).toString('hex')}`;
    secrets.register(dek);
    secrets.register(password);

    // What must never appear, in any encoding the operator handles.
    const forbidden = [
      pem.split('\n')[1] ?? '', String(jwk.d), kekJson.k, jwe, jwe.split('.')[3] ?? '', 'the plaintext value',
      dek.toString('base64'), dek.toString('base64url'), dek.toString('hex'), token, password,
      Buffer.from(password).toString('base64'),
    ];
    for (const f of forbidden) expect(f.length).toBeGreaterThanOrEqual(8);

    const secretObject = {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'shop' },
      data: { 'tls.key': Buffer.from(pem).toString('base64'), dek: dek.toString('base64') },
    };
    const apiErr = new ApiException(409, 'Conflict', JSON.stringify({ kind: 'Status', reason: 'Conflict', message: `conflict on ${password}`, details: secretObject }), {});
    const plainErr = new Error(`decrypt of ${jwe} with ${dek.toString('base64')} failed`);
    const bound = log.child('ctl', { seal: jwe, auth: `Bearer ${token}` });

    log.info(`message with ${pem}`);
    log.info(`message with ${password} and ${dek.toString('hex')}`);
    log.info('fields', { privateKey: pem, jwkMaterial: jwk, kek: kekJson, sealed: jwe, header: `Bearer ${token}` });
    log.info('nested', { object: secretObject, list: [{ password }, dek], map: new Map([['value', dek.toString('base64url')]]) });
    log.info('opaque names', { note: `value is ${password}`, something: dek.toString('base64'), embedded: JSON.stringify({ k: kekJson.k, kty: 'oct' }) });
    log.error('errors', { err: apiErr, cause: plainErr, errors: [plainErr] });
    log.warn('api error', { ...describeApiError(apiErr, new Redactor(secrets)) });
    bound.debug('bound fields');
    bound.child(undefined, { again: password }).error(`retry with Authorization: Bearer ${token}`);

    const out = sink.text();
    expect(sink.lines.length).toBe(9);
    for (const f of forbidden) expect(out).not.toContain(f);
  });
});
