import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isSensitiveKey, MIN_SECRET_LENGTH, REDACTED, Redactor, SecretRegistry } from './redact.js';

const fresh = (): Redactor => new Redactor(new SecretRegistry());

describe('isSensitiveKey', () => {
  it.each([
    'secret', 'token', 'password', 'key', 'privateKey', 'private_key', 'data', 'stringData', 'jwk',
    'plaintext', 'ciphertext', 'clientSecret', 'apiKey', 'bearerToken', 'encryptionKey', 'CRYPTO_KEY_VALUE',
    'Authorization', 'tls.key',
  ])('%s is sensitive', (name) => expect(isSensitiveKey(name)).toBe(true));

  it.each(['secretName', 'secretRef', 'kid', 'keyPolicy', 'namespace', 'name', 'reason', 'object', 'tokenFile'])(
    '%s is not',
    (name) => expect(isSensitiveKey(name)).toBe(false),
  );
});

describe('Redactor.redact (structured values)', () => {
  it('replaces sensitive fields at any depth, in arrays too, and leaves the rest', () => {
    const out = fresh().redact({
      name: 'web',
      spec: { auth: { password: 'hunter2hunter2', user: 'bob' }, items: [{ token: 't0k3n-abcdef' }] },
      secret: { data: { 'tls.key': 'AAAA' } },
    });
    expect(out).toEqual({
      name: 'web',
      spec: { auth: { password: REDACTED, user: 'bob' }, items: [{ token: REDACTED }] },
      secret: REDACTED,
    });
  });

  it('redacts a Kubernetes Secret object but keeps its identity', () => {
    const out = fresh().redact({
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'shop' },
      data: { password: 'c2VjcmV0' }, stringData: { x: 'y' },
    }) as Record<string, unknown>;
    expect(out['data']).toBe(REDACTED);
    expect(out['stringData']).toBe(REDACTED);
    expect(out['metadata']).toEqual({ name: 'db', namespace: 'shop' });
  });

  it('strips the private members of a JWK and keeps the public ones', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = privateKey.export({ format: 'jwk' });
    const out = fresh().redact({ jwkPublic: { ...jwk, kid: 'k1' } }) as { jwkPublic: Record<string, unknown> };
    expect(out.jwkPublic['d']).toBe(REDACTED);
    expect(out.jwkPublic['x']).toBe(jwk.x);
    expect(out.jwkPublic['kid']).toBe('k1');
    const oct = fresh().redact({ material: { kty: 'oct', k: 'c2VjcmV0LWJ5dGVzLWhlcmU' } });
    expect(oct).toEqual({ material: { kty: 'oct', k: REDACTED } });
  });

  it('redacts raw bytes, survives cycles, and renders dates and maps', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    const out = fresh().redact({
      bytes: randomBytes(32), cyclic, when: new Date(0), m: new Map<string, unknown>([['password', 'x'], ['n', 1]]),
    });
    expect(out).toEqual({
      bytes: REDACTED,
      cyclic: { a: 1, self: '[Circular]' },
      when: '1970-01-01T00:00:00.000Z',
      m: { password: REDACTED, n: 1 },
    });
  });

  it('describes errors by name and message only, never by their enumerable properties', () => {
    const err = Object.assign(new Error('boom'), { body: '{"data":{"k":"dmVyeXNlY3JldA=="}}', requestBody: 'plaintext!' });
    expect(fresh().redact({ err })).toEqual({ err: { name: 'Error', message: 'boom' } });
  });
});

describe('Redactor.redactString (patterns anywhere in text)', () => {
  const r = fresh();

  it('redacts PEM private keys of every flavour, even truncated, and keeps certificates', () => {
    const pkcs8 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const sec1 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'sec1' }).toString();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs1' }).toString();
    const cert = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----';
    for (const pem of [pkcs8, sec1, rsa]) {
      const body = pem.split('\n')[1] ?? '';
      const out = r.redactString(`before ${pem} after ${cert}`);
      expect(out).not.toContain(body);
      expect(out).toContain('[REDACTED PRIVATE KEY]');
      expect(out).toContain('before');
      expect(out).toContain('after');
      expect(out).toContain(cert);
    }
    const truncated = pkcs8.slice(0, 80);
    expect(r.redactString(`x ${truncated}`)).toBe('x [REDACTED PRIVATE KEY]');
  });

  it('redacts JWE and JWT compact serialisations', () => {
    const header = Buffer.from('{"alg":"A256KW","enc":"A256GCM","kid":"k1"}').toString('base64url');
    const jwe = `${header}.${randomBytes(40).toString('base64url')}.${randomBytes(12).toString('base64url')}.${randomBytes(64).toString('base64url')}.${randomBytes(16).toString('base64url')}`;
    const dirJwe = `${header}..${randomBytes(12).toString('base64url')}.${randomBytes(30).toString('base64url')}.${randomBytes(16).toString('base64url')}`;
    const jwt = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('{"sub":"x"}').toString('base64url')}.${randomBytes(64).toString('base64url')}`;
    expect(r.redactString(`sealed=${jwe} end`)).toBe('sealed=[REDACTED JWE] end');
    expect(r.redactString(`v: ${dirJwe}`)).toBe('v: [REDACTED JWE]');
    expect(r.redactString(`got ${jwt}.`)).toBe('got [REDACTED JWT].');
  });

  it('redacts bearer tokens and credential assignments but not prose', () => {
    expect(r.redactString('Authorization: Bearer abc.def-123_xyz')).toBe(`Authorization: Bearer ${REDACTED}`);
    expect(r.redactString('curl -H "authorization: bearer sha256~AbCdEf0123"')).toBe(`curl -H "authorization: bearer ${REDACTED}"`);
    expect(r.redactString('https://x/?token=abcd1234&ns=a')).toBe(`https://x/?token=${REDACTED}&ns=a`);
    expect(r.redactString('Basic authentication is disabled')).toBe('Basic authentication is disabled');
  });

  it('redacts sensitive fields of JSON embedded in text, escaped or not', () => {
    const body = JSON.stringify({ kind: 'Secret', metadata: { name: 'db' }, data: { 'tls.key': 'c2VjcmV0LXZhbHVl' }, stringData: { pw: 'p4ss' } });
    const message = `HTTP-Code: 422\nBody: ${JSON.stringify(body)}`;
    for (const text of [body, message]) {
      const out = r.redactString(text);
      expect(out).not.toContain('c2VjcmV0LXZhbHVl');
      expect(out).not.toContain('p4ss');
      expect(out).toContain('db');
    }
    expect(r.redactString('{"password": "hunter2", "user": "bob"}')).toBe(`{"password": "${REDACTED}", "user": "bob"}`);
  });

  it('redacts private members of a JWK serialised into a string', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = privateKey.export({ format: 'jwk' });
    const out = r.redactString(`loaded ${JSON.stringify(jwk)}`);
    expect(out).not.toContain(String(jwk.d));
    expect(out).toContain(String(jwk.x));
  });
});

describe('SecretRegistry', () => {
  it('scrubs registered values and their base64 forms from strings', () => {
    const registry = new SecretRegistry();
    const r = new Redactor(registry);
    const dek = randomBytes(32);
    registry.register('correct horse battery staple');
    registry.register(dek);
    const text = `pw=correct horse battery staple b64=${Buffer.from('correct horse battery staple').toString('base64')} dek=${dek.toString('base64')} url=${dek.toString('base64url')} hex=${dek.toString('hex')}`;
    const out = r.redactString(text);
    expect(out).not.toContain('correct horse');
    expect(out).not.toContain(dek.toString('base64'));
    expect(out).not.toContain(dek.toString('base64url'));
    expect(out).not.toContain(dek.toString('hex'));
    expect(r.redact({ note: `x correct horse battery staple y` })).toEqual({ note: `x ${REDACTED} y` });
  });

  it('ignores values too short to scrub safely', () => {
    const registry = new SecretRegistry();
    registry.register('a'.repeat(MIN_SECRET_LENGTH - 1));
    expect(new Redactor(registry).redactString('aaaa banana')).toBe('aaaa banana');
  });
});
