import { describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { withoutRetired } from '../encryptedservice/trust-bundle.js';
import { bundleHas, fingerprint, issuedBy } from './ca-rotation.js';
import { TEST_LEAF } from './test-certificates.js';

// Public test certificates only (made once with openssl; their keys were discarded): two
// self-signed roots A and B, and a leaf signed by A.
const ROOT_A = `-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUGwB/uH32FtTdTPxCj3qGmw63hy0wCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLdGVzdCByb290IEEwIBcNMjYxMTI4MDE1ODE5WhgPMjEyNjEx
MDQwMTU4MTlaMBYxFDASBgNVBAMMC3Rlc3Qgcm9vdCBBMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEF1tlNY+16170Y9HI2Miz3JHGPsgEsRRWoRzB13KXFO49iskt
Ah1yopIzKYktGiMXrp14vOD4hVYiE4w3E+Cc96NjMGEwHQYDVR0OBBYEFIYxvS4Y
evcpisltJ0aXpi0Gm7PrMB8GA1UdIwQYMBaAFIYxvS4YevcpisltJ0aXpi0Gm7Pr
MA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMAoGCCqGSM49BAMCA0gA
MEUCIG/7RtaGilkKEQXV2esF2ah+4Nd3o46P3E763DrJMjngAiEAwDb+ySOtQsXX
fNYCEM3b04lHS0L+WlLlg3TaFvW7t1g=
-----END CERTIFICATE-----
`;
const ROOT_B = `-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUeeQzAfN11t6ubLl33GAK9XozCAowCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLdGVzdCByb290IEIwIBcNMjYxMTI4MDE1ODE5WhgPMjEyNjEx
MDQwMTU4MTlaMBYxFDASBgNVBAMMC3Rlc3Qgcm9vdCBCMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEycln2nG0OyvI+TwEFB/dUEE4aadMQBmi8de67qyL/4qEunW9
43gOWZHxw7a6KzmLnyitetQOx63b1FmEibngLKNjMGEwHQYDVR0OBBYEFP2MdhyF
kO8mCnQkgDTP9F74BBVnMB8GA1UdIwQYMBaAFP2MdhyFkO8mCnQkgDTP9F74BBVn
MA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMAoGCCqGSM49BAMCA0gA
MEUCIQD8OzRUY/Ca2nRkz9C0gcS6VoCIngfuGXW81UNB6W4etQIgPnUWs424Nf48
E3jTqX6Dez4aGY7fypJ89QuUHGZabHc=
-----END CERTIFICATE-----
`;
const LEAF_A = TEST_LEAF;

const bundle = (...pems: string[]) => ({ data: { 'ca.crt': pems.join('') } });

describe('issuedBy', () => {
  it('is true only for the root whose key signed the leaf', () => {
    expect(issuedBy(LEAF_A, ROOT_A)).toBe(true);
    expect(issuedBy(LEAF_A, ROOT_B)).toBe(false);
    expect(issuedBy('not a certificate', ROOT_A)).toBe(false);
  });
});

describe('bundleHas', () => {
  it('finds a root by fingerprint among several', () => {
    expect(bundleHas(bundle(ROOT_B, ROOT_A), ROOT_A)).toBe(true);
    expect(bundleHas(bundle(ROOT_B), ROOT_A)).toBe(false);
    expect(bundleHas(undefined, ROOT_A)).toBe(false);
  });
});

describe('withoutRetired', () => {
  it('drops exactly the listed fingerprints and keeps the rest', () => {
    expect(withoutRetired([ROOT_A, ROOT_B], fingerprint(ROOT_A))).toEqual([ROOT_B]);
    expect(withoutRetired([ROOT_A, ROOT_B], ` ${fingerprint(ROOT_B)} ,${fingerprint(ROOT_A)}`)).toEqual([]);
    expect(withoutRetired([ROOT_A, ROOT_B], undefined)).toEqual([ROOT_A, ROOT_B]);
    expect(withoutRetired([ROOT_A], '')).toEqual([ROOT_A]);
  });

  it('compares the same fingerprint form that X509Certificate reports', () => {
    expect(fingerprint(ROOT_A)).toBe(new X509Certificate(ROOT_A).fingerprint256);
  });
});
