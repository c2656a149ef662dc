import { describe, expect, it } from '@jest/globals';
import { nextRevocationStep, type RevocationInput, type RevocationStatus } from './state.js';
import { crlsForBundle, parseEntries, readList, resignAt, serializeEntries, unexpired, withEntry, type ListedCertificate } from './revocation-list.js';

const now = new Date('2026-12-01T05:00:00Z');
const input = (over: Partial<RevocationInput> = {}): RevocationInput => ({
  request: 'r1', reason: undefined, status: undefined, currentSerial: 'AA01', currentNamesService: true,
  issuing: false, ready: true, served: undefined, now, reissueTimeoutMs: 600_000, ...over,
});
/** Runs a step's recorded status as the next input's status, as the controller does after its write. */
const after = (step: ReturnType<typeof nextRevocationStep>): RevocationStatus => {
  if (!('status' in step)) throw new Error(`step ${step.kind} records nothing`);
  return step.status;
};

describe('nextRevocationStep', () => {
  it('does nothing without a request', () => {
    expect(nextRevocationStep(input({ request: undefined })).kind).toBe('idle');
    expect(nextRevocationStep(input({ request: '  ' })).kind).toBe('idle');
  });

  it('records the request and quarantines before any other side effect', () => {
    const step = nextRevocationStep(input());
    expect(step).toMatchObject({ kind: 'record', status: { request: 'r1', phase: 'Revoking', revokedSerial: 'AA01', reason: 'keyCompromise', quarantined: true } });
  });

  it('walks Revoking -> publish -> reissue -> wait -> Completed, each side effect once', () => {
    let status = after(nextRevocationStep(input()));
    const publish = nextRevocationStep(input({ status }));
    expect(publish).toMatchObject({ kind: 'publish', serial: 'AA01', reason: 'keyCompromise' });
    status = after(publish);
    expect(status.phase).toBe('Reissuing');
    const reissue = nextRevocationStep(input({ status }));
    expect(reissue).toMatchObject({ kind: 'reissue', serial: 'AA01' });
    status = after(reissue);
    // Restarted after the ask was recorded: never asked twice.
    expect(nextRevocationStep(input({ status, issuing: true })).kind).toBe('wait');
    // New serial, still issuing or not ready: wait.
    expect(nextRevocationStep(input({ status, currentSerial: 'BB02', issuing: true })).kind).toBe('wait');
    expect(nextRevocationStep(input({ status, currentSerial: 'BB02', ready: false })).kind).toBe('wait');
    // An endpoint still serves the revoked certificate: the quarantine stays.
    expect(nextRevocationStep(input({ status, currentSerial: 'BB02', served: 'old' })).kind).toBe('wait');
    const done = nextRevocationStep(input({ status, currentSerial: 'BB02', served: 'new' }));
    expect(done).toMatchObject({ kind: 'record', status: { phase: 'Completed', newSerial: 'BB02', quarantined: false, outcome: 'Revoked' }, event: { reason: 'RevocationCompleted' } });
    expect(nextRevocationStep(input({ status: after(done), currentSerial: 'BB02' })).kind).toBe('idle');
  });

  it('skips the ask when cert-manager already replaced the certificate (a restart after the ask, before its record)', () => {
    const status: RevocationStatus = { request: 'r1', phase: 'Reissuing', revokedSerial: 'AA01', requestedAt: '2026-12-01T04:59:00Z', quarantined: true };
    expect(nextRevocationStep(input({ status, currentSerial: 'BB02' })).kind).toBe('record');
  });

  it('compares serials as numbers in hex', () => {
    const status: RevocationStatus = { request: 'r1', phase: 'Reissuing', revokedSerial: '00aa01', reissueRequested: true, requestedAt: '2026-12-01T04:59:00Z' };
    expect(nextRevocationStep(input({ status, currentSerial: 'AA01' })).kind).toBe('wait');
  });

  it('a new request value starts a new revocation of the current certificate', () => {
    const status: RevocationStatus = { request: 'r1', phase: 'Completed', revokedSerial: 'AA01', newSerial: 'BB02' };
    expect(nextRevocationStep(input({ request: 'r2', status, currentSerial: 'BB02' }))).toMatchObject({ kind: 'record', status: { request: 'r2', revokedSerial: 'BB02', phase: 'Revoking' } });
  });

  it('bad input ends Failed with a reason and revokes nothing', () => {
    expect(nextRevocationStep(input({ reason: 'stolen' }))).toMatchObject({ status: { phase: 'Failed', outcome: 'InvalidRevocationReason', quarantined: false } });
    expect(nextRevocationStep(input({ currentSerial: undefined }))).toMatchObject({ status: { phase: 'Failed', outcome: 'NoCertificate' } });
    expect(nextRevocationStep(input({ currentNamesService: false }))).toMatchObject({ status: { phase: 'Failed', outcome: 'NotThisService' } });
  });

  it('a re-issuance that never comes ends Failed, still quarantined', () => {
    const status: RevocationStatus = { request: 'r1', phase: 'Reissuing', revokedSerial: 'AA01', reissueRequested: true, quarantined: true, requestedAt: '2026-12-01T04:40:00Z' };
    expect(nextRevocationStep(input({ status }))).toMatchObject({ kind: 'record', status: { phase: 'Failed', outcome: 'ReissueTimedOut', quarantined: true } });
  });
});

describe('revocation list', () => {
  const entry = (serial: string, notAfter: string): ListedCertificate => ({
    serial, revokedAt: now, reason: 'keyCompromise', notAfter: new Date(notAfter), service: 'shop/b', request: 'r1',
  });

  it('round-trips and keeps the first revocation of a serial', () => {
    const first = withEntry([], entry('aa01', '2026-12-02T00:00:00Z'));
    expect(first.added).toBe(true);
    const again = withEntry(first.entries, { ...entry('AA01', '2026-12-02T00:00:00Z'), request: 'r2' });
    expect(again.added).toBe(false);
    const back = parseEntries(serializeEntries(again.entries));
    expect(back).toHaveLength(1);
    expect(back[0]).toMatchObject({ serial: 'AA01', request: 'r1', reason: 'keyCompromise' });
  });

  it('drops certificates past their notAfter', () => {
    const list = [entry('01', '2026-12-01T04:00:00Z'), entry('02', '2026-12-01T06:00:00Z')];
    expect(unexpired(list, now).map((e) => e.serial)).toEqual(['02']);
  });

  it('signs again half-way to nextUpdate, or when an entry expires first', () => {
    const thisUpdate = new Date('2026-12-01T00:00:00Z');
    const nextUpdate = new Date('2026-12-02T00:00:00Z');
    expect(resignAt({ entries: [], crlNumber: 1n, thisUpdate, nextUpdate })).toBe(Date.parse('2026-12-01T12:00:00Z'));
    expect(resignAt({ entries: [entry('01', '2026-12-01T03:00:00Z')], crlNumber: 1n, thisUpdate, nextUpdate })).toBe(Date.parse('2026-12-01T03:00:00Z'));
    expect(resignAt(readList(undefined))).toBe(0);
  });

  it('refuses an unreadable list instead of starting an empty one', () => {
    expect(() => parseEntries('{}')).toThrow();
    expect(() => parseEntries('[{"serial":"01","revokedAt":"x","notAfter":"y"}]')).toThrow();
  });

  it('publishes to a bundle the CRLs of the CAs it trusts, only those', () => {
    const lists = [
      { metadata: { name: 'b' }, data: { anchors: 'F1,F2', 'ca.crl': 'CRL-B\n' } },
      { metadata: { name: 'a' }, data: { anchors: 'F3', 'ca.crl': 'CRL-A\n' } },
    ];
    expect(crlsForBundle(new Set(['F2']), lists)).toBe('CRL-B\n');
    expect(crlsForBundle(new Set(['F2', 'F3']), lists)).toBe('CRL-A\nCRL-B\n');
    expect(crlsForBundle(new Set(['F9']), lists)).toBe('');
  });
});

describe('judgeServed', () => {
  it('lifts only when every endpoint serves the new serial', async () => {
    const { judgeServed } = await import('./served.js');
    expect(judgeServed([], 'BB02')).toBe('none');
    expect(judgeServed(['bb02', '00BB02'], 'BB02')).toBe('new');
    expect(judgeServed(['BB02', 'AA01'], 'BB02')).toBe('old');
    // Unreachable: its pod may still hold the revoked key.
    expect(judgeServed(['BB02', undefined], 'BB02')).toBe('old');
  });
});
