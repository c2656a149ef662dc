import { describe, expect, it } from '@jest/globals';
import { judgeHandshake, type HandshakeFacts, type TlsExpectation } from './tls-verification.js';

const expected: TlsExpectation = { serial: 'AB01', roots: [], servername: 'api.ns.svc', policy: { minVersion: 'TLS1.2' } };
const good: HandshakeFacts = { serial: 'AB01', protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256' };

describe('judgeHandshake', () => {
  it.each<[string, HandshakeFacts, TlsExpectation, RegExp | undefined]>([
    ['new certificate over TLS 1.3', good, expected, undefined],
    ['allowed TLS 1.2 suite', { ...good, protocol: 'TLSv1.2', cipher: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256' }, expected, undefined],
    ['old certificate still served', { ...good, serial: 'AB00' }, expected, /serves certificate AB00, want the new AB01/],
    ['untrusted chain', { ...good, chainError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }, expected, /does not chain to the published trust bundle/],
    ['wrong name', { ...good, nameError: "Host: api.ns.svc. is not in the cert's altnames" }, expected, /does not name api.ns.svc/],
    ['TLS 1.2 against a 1.3 policy', { ...good, protocol: 'TLSv1.2', cipher: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256' }, { ...expected, policy: { minVersion: 'TLS1.3' } }, /policy requires at least TLS1.3/],
    ['suite outside the policy list', { ...good, protocol: 'TLSv1.2', cipher: 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384' }, { ...expected, policy: { cipherSuites: ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'] } }, /not allowed by the TLS policy/],
    ['any serial when none is expected', { ...good, serial: 'FF' }, { ...expected, serial: undefined } as unknown as TlsExpectation, undefined],
    ['not issued by the new root', { ...good, issuerError: 'certificate is not issued by the new root 01' }, expected, /not issued by the new root/],
    ['non-AEAD suite with the default list', { ...good, protocol: 'TLSv1.2', cipher: 'TLS_RSA_WITH_AES_128_CBC_SHA' }, expected, /not allowed/],
  ])('%s', (_name, facts, exp, problem) => {
    const problems = judgeHandshake(facts, exp);
    if (problem) expect(problems.join('; ')).toMatch(problem);
    else expect(problems).toEqual([]);
  });
});
