import { describe, expect, it } from '@jest/globals';
import { classifyProbeError, floorProbes, judgeProbe, type ProbeOutcome } from './tls-floor.js';

describe('floorProbes', () => {
  it('TLS1.3: one probe offering every older version with every suite', () => {
    expect(floorProbes({ minVersion: 'TLS1.3', cipherSuites: ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'] })).toEqual([
      { offer: 'TLS below TLS1.3', minVersion: 'TLSv1', maxVersion: 'TLSv1.2', ciphers: 'ALL:COMPLEMENTOFALL:@SECLEVEL=0', violation: 'version' },
    ]);
  });

  it('TLS1.2 (the default): versions below it, and TLS 1.2 with every suite but the allowed ones', () => {
    const [below, suites, ...rest] = floorProbes({});
    expect(rest).toEqual([]);
    expect(below).toMatchObject({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', violation: 'version' });
    expect(suites).toMatchObject({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', violation: 'suite' });
    for (const allowed of ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305']) expect(suites!.ciphers).toContain(`!${allowed}:`);
    expect(suites!.ciphers.endsWith('@SECLEVEL=0')).toBe(true);
  });

  it('a narrower list excludes only what it allows: the rest of the AEAD suites are probed', () => {
    const [, suites] = floorProbes({ minVersion: 'TLS1.2', cipherSuites: ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'] });
    expect(suites!.ciphers).toBe('ALL:COMPLEMENTOFALL:!ECDHE-ECDSA-AES128-GCM-SHA256:@SECLEVEL=0');
  });
});

describe('classifyProbeError', () => {
  it.each<[string, string | undefined, string | undefined, ProbeOutcome['kind']]>([
    ['protocol-version alert', 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', undefined, 'refused'],
    ['handshake-failure alert (no shared suite), OpenSSL 3.5 / Node 24 name', 'ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE', undefined, 'refused'],
    ['handshake-failure alert (no shared suite), OpenSSL 3.0 name', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', undefined, 'refused'],
    ['insufficient-security alert', 'ERR_SSL_TLSV1_ALERT_INSUFFICIENT_SECURITY', undefined, 'refused'],
    ['alert after the server chose a forbidden suite', 'ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE', 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA', 'inconclusive'],
    ['connection reset', 'ECONNRESET', undefined, 'inconclusive'],
    ['broken pipe', 'EPIPE', undefined, 'inconclusive'],
    ['a non-alert TLS error', 'ERR_SSL_WRONG_VERSION_NUMBER', undefined, 'inconclusive'],
    ['no code at all', undefined, undefined, 'inconclusive'],
    ['no protocol this library can offer', 'ERR_SSL_NO_PROTOCOLS_AVAILABLE', undefined, 'unavailable'],
    ['no cipher this library can offer', 'ERR_SSL_NO_CIPHER_MATCH', undefined, 'unavailable'],
  ])('%s', (_name, code, chosen, kind) => {
    expect(classifyProbeError(code, 'message', chosen).kind).toBe(kind);
  });

  it('says which suite the server chose when it stopped afterwards', () => {
    expect(classifyProbeError('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'm', 'TLS_RSA_WITH_AES_128_CBC_SHA')).toEqual({
      kind: 'inconclusive', reason: 'the server chose TLS_RSA_WITH_AES_128_CBC_SHA, then ended the handshake (ERR_SSL_TLSV1_ALERT_UNKNOWN_CA)',
    });
  });
});

describe('judgeProbe', () => {
  const [below13] = floorProbes({ minVersion: 'TLS1.3' });
  const [below12, suites] = floorProbes({ minVersion: 'TLS1.2' });

  it('a refusal is what the policy wants: nothing to report', () => {
    expect(judgeProbe(below13!, { kind: 'refused', reason: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' }, { minVersion: 'TLS1.3' })).toEqual({});
  });

  it('a completed handshake below the minimum is a problem naming the version and suite', () => {
    expect(judgeProbe(below13!, { kind: 'completed', protocol: 'TLSv1.2', cipher: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256' }, { minVersion: 'TLS1.3' }))
      .toEqual({ problem: 'accepts TLSv1.2 with TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, below the policy minimum TLS1.3' });
    expect(judgeProbe(below12!, { kind: 'completed', protocol: 'TLSv1', cipher: 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA' }, {}).problem)
      .toBe('accepts TLSv1 with TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, below the policy minimum TLS1.2');
  });

  it('a completed handshake with a forbidden suite is a problem naming the suite', () => {
    expect(judgeProbe(suites!, { kind: 'completed', protocol: 'TLSv1.2', cipher: 'TLS_RSA_WITH_AES_128_CBC_SHA' }, {}).problem)
      .toBe('accepts TLSv1.2 with TLS_RSA_WITH_AES_128_CBC_SHA, a cipher suite the TLS policy does not allow');
  });

  it('an inconclusive probe is a problem: the floor was not shown', () => {
    expect(judgeProbe(suites!, { kind: 'inconclusive', reason: 'no answer within 5000ms' }, {}))
      .toEqual({ problem: 'could not check that the server refuses TLS 1.2 cipher suites outside the policy: no answer within 5000ms' });
  });

  it('a probe this verifier cannot make is reported as unchecked, not as a problem and not as a pass', () => {
    expect(judgeProbe(below12!, { kind: 'unavailable', reason: 'ERR_SSL_NO_PROTOCOLS_AVAILABLE' }, {}))
      .toEqual({ unchecked: 'TLS below TLS1.2 not checked: this verifier cannot offer it (ERR_SSL_NO_PROTOCOLS_AVAILABLE)' });
  });
});
