import { describe, expect, it } from '@jest/globals';
import { API_VERSION, withEncryptedServiceDefaults, type EncryptedService, type KeyPolicy } from '../api/v1alpha1/index.js';
import { expectedCertificate } from './expected.js';

const es: EncryptedService = {
  apiVersion: API_VERSION, kind: 'EncryptedService', metadata: { name: 'api', namespace: 'shop', uid: 'u1' },
  spec: withEncryptedServiceDefaults({
    workload: { selector: { matchLabels: { app: 'api' } }, serviceAccountName: 'api' },
    ports: [{ name: 'https', port: 8443 }], keyPolicyRef: { name: 'default' },
  }),
};
const policy = { apiVersion: API_VERSION, kind: 'KeyPolicy', metadata: { name: 'default', namespace: 'shop' }, spec: {} } as KeyPolicy;
const lookup = () => policy;
const issuer = { kind: 'ClusterIssuer', name: 'lockstep-ca', group: 'cert-manager.io' } as const;

describe('expectedCertificate', () => {
  it('is the reconciler\'s Certificate when nothing refuses the service', () => {
    const got = expectedCertificate(es, lookup, issuer);
    expect('certificate' in got && got.certificate.spec['uris']).toEqual(['spiffe://cluster.local/ns/shop/sa/api']);
  });

  it('is nothing when the reconciler refuses the service\'s claim, so its old Certificate cannot renew', () => {
    const got = expectedCertificate(es, lookup, issuer, () => ({ reason: 'DNSNameNotAllowed', message: 'not allowed' }));
    expect(got).toEqual({ problem: { reason: 'DNSNameNotAllowed', message: 'not allowed' } });
  });
});
