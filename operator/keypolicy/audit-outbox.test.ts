import { describe, expect, it } from '@jest/globals';
import { generateAuditSigningKey } from '../audit/signing.js';
import { decodePending, encodePending, fingerprinted, openPending, sealPending } from './audit-outbox.js';

describe('audit outbox', () => {
  const event = { type: 'rotate' as const, time: new Date('2026-11-01T10:00:00.123Z'), subject: { namespace: 'shop', name: 'keys', kind: 'KeyPolicy', kid: 'kek-1' }, details: { trigger: 'period' } };

  it('round-trips events through the annotation, fingerprint included', () => {
    const pending = [fingerprinted(event)];
    const decoded = decodePending(encodePending(pending));
    expect(decoded).toEqual(pending);
    expect(decoded[0]?.details?.['fingerprint']).toMatch(/^[0-9a-f]{32}$/);
  });

  it('fingerprints by what is recorded: another kid or time is another event', () => {
    const fp = (e: typeof event) => fingerprinted(e).details?.['fingerprint'];
    expect(fp(event)).toBe(fp({ ...event, details: { trigger: 'on-demand' } }));
    expect(fp(event)).not.toBe(fp({ ...event, subject: { ...event.subject, kid: 'kek-2' } }));
    expect(fp(event)).not.toBe(fp({ ...event, time: new Date('2026-11-01T10:00:01Z') }));
  });

  it('drops what it cannot read instead of failing the reconcile', () => {
    expect(decodePending(undefined)).toEqual([]);
    expect(decodePending('{oops')).toEqual([]);
    expect(decodePending(JSON.stringify([{ type: 'explode', time: '2026-01-01T00:00:00Z', subject: {} }, { type: 'rotate', time: 'never', subject: {} }, 3]))).toEqual([]);
  });

  it('opens only what the operator key sealed for this Secret', () => {
    const key = generateAuditSigningKey();
    const pending = [fingerprinted(event)];
    const sealed = sealPending(pending, key, 'shop/keys-keys');
    expect(openPending(sealed, key.publicKey, 'shop/keys-keys')).toEqual({ events: pending, tampered: false });
    expect(openPending(undefined, key.publicKey, 'shop/keys-keys')).toEqual({ events: [], tampered: false });
    // Copied to another policy's Secret, written by a tenant, edited, or signed by another key.
    expect(openPending(sealed, key.publicKey, 'shop/other-keys').tampered).toBe(true);
    expect(openPending(encodePending(pending), key.publicKey, 'shop/keys-keys').tampered).toBe(true);
    expect(openPending(sealed.replace('kek-1', 'kek-9'), key.publicKey, 'shop/keys-keys').tampered).toBe(true);
    expect(openPending(sealPending(pending, generateAuditSigningKey(), 'shop/keys-keys'), key.publicKey, 'shop/keys-keys').tampered).toBe(true);
  });
});
