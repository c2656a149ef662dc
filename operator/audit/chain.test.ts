import { describe, expect, it } from '@jest/globals';
import {
  AuditEntryError,
  computeEntryHash,
  genesisHash,
  genesisPosition,
  nextEntry,
  verifyEntries,
  type AuditEntry,
  type AuditEvent,
} from './chain.js';

const t0 = Date.parse('2026-11-15T12:00:00Z');

function event(i: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    type: 'rewrap',
    subject: { namespace: 'payments', name: `svc-${i}`, kind: 'EncryptedService', kid: 'kek-20261115t120000z-0a1b2c3d' },
    details: { fromKid: 'kek-20261015t120000z-99887766', attempt: i, ok: true },
    time: new Date(t0 + i * 1000),
    ...overrides,
  };
}

function chainOf(count: number): AuditEntry[] {
  const entries: AuditEntry[] = [];
  let position = genesisPosition('payments/default');
  for (let i = 0; i < count; i += 1) {
    const entry = nextEntry(position, event(i));
    entries.push(entry);
    position = { seq: entry.seq, hash: entry.hash };
  }
  return entries;
}

describe('audit entries', () => {
  it('chain from the trail genesis with consecutive seqs', () => {
    const entries = chainOf(3);
    expect(entries.map((entry) => entry.seq)).toEqual([1, 2, 3]);
    expect(entries[0]?.prevHash).toBe(genesisHash('payments/default'));
    expect(entries[1]?.prevHash).toBe(entries[0]?.hash);
    expect(entries[0]?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(entries[0]?.time).toBe('2026-11-15T12:00:00.000Z');
    expect(verifyEntries(entries, genesisPosition('payments/default'))).toEqual({
      problems: [],
      end: { seq: 3, hash: entries[2]?.hash },
    });
  });

  it('binds the genesis to the trail', () => {
    expect(genesisHash('a/b')).not.toBe(genesisHash('a/c'));
    expect(verifyEntries(chainOf(2), genesisPosition('other/trail')).problems.map((p) => p.kind)).toEqual(['entry-link']);
  });

  it('hashes every member', () => {
    const [entry] = chainOf(1) as [AuditEntry];
    const variants: Omit<AuditEntry, 'hash'>[] = [
      { ...entry, seq: 2 },
      { ...entry, time: '2026-11-15T12:00:00.001Z' },
      { ...entry, type: 'retire' },
      { ...entry, subject: { ...entry.subject, kid: 'kek-other' } },
      { ...entry, details: { ...entry.details, ok: false } },
      { ...entry, prevHash: '0'.repeat(64) },
    ];
    for (const variant of variants) expect(computeEntryHash(variant)).not.toBe(entry.hash);
  });

  it.each([
    ['a detail that looks like key material', event(0, { details: { k: 'abc' } })],
    ['a plaintext detail', event(0, { details: { plaintext: 'x' } })],
    ['a password detail', event(0, { details: { Password: 'x' } })],
    ['a long detail string', event(0, { details: { note: 'x'.repeat(513) } })],
    ['a float detail', event(0, { details: { ratio: 0.5 } })],
    ['an object detail', event(0, { details: { nested: {} as unknown as string } })],
    ['an unknown subject field', event(0, { subject: { secret: 'x' } as never })],
    ['a subject with spaces', event(0, { subject: { name: 'a b' } })],
    ['an unknown type', event(0, { type: 'delete' as never })],
    ['an invalid time', event(0, { time: new Date('nope') })],
  ])('refuses %s', (_case, bad) => {
    expect(() => nextEntry(genesisPosition('t'), bad)).toThrow(AuditEntryError);
  });
});
