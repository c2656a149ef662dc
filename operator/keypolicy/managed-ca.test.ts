import { describe, expect, it } from '@jest/globals';
import { withKeyPolicyDefaults, type EncryptedService, type KeyPolicy } from '../api/v1alpha1/index.js';
import { resolveIssuer } from '../encryptedservice/policy.js';
import { buildManagedCA, managedCARefs } from './managed-ca.js';
import { managedCACertificateName, managedCAIssuerName, managedCASelfSignedIssuerName } from './names.js';

const policy = (spec: KeyPolicy['spec']): KeyPolicy => ({
  metadata: { name: 'shop', namespace: 'shop-prod', uid: 'u1' },
  spec: withKeyPolicyDefaults(spec),
});
const service: EncryptedService = {
  metadata: { name: 'api', namespace: 'shop-prod' },
  spec: { workload: { selector: {}, serviceAccountName: 'api' }, ports: [{ name: 'https', port: 443 }], keyPolicyRef: { name: 'shop' } },
};

describe('managed CA', () => {
  it('builds a self-signed root in the cluster resource namespace and a CA ClusterIssuer that uses it', () => {
    const ca = buildManagedCA(policy({ certificates: { defaultIssuer: { managedCA: { commonName: 'shop root CA', duration: '4380h' } } } }), 'cert-manager');
    expect(ca?.selfSigned).toMatchObject({ kind: 'ClusterIssuer', metadata: { name: 'lockstep-shop-prod-shop-f3790813b761e62d-selfsigned' }, spec: { selfSigned: {} } });
    expect(ca?.root).toMatchObject({
      kind: 'Certificate',
      metadata: { name: 'lockstep-shop-prod-shop-f3790813b761e62d-root', namespace: 'cert-manager' },
      spec: {
        isCA: true, commonName: 'shop root CA', duration: '4380h', secretName: 'lockstep-shop-prod-shop-f3790813b761e62d-root',
        privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
        issuerRef: { group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'lockstep-shop-prod-shop-f3790813b761e62d-selfsigned' },
      },
    });
    expect(ca?.issuer).toMatchObject({ kind: 'ClusterIssuer', metadata: { name: 'lockstep-shop-prod-shop-f3790813b761e62d-ca' }, spec: { ca: { secretName: 'lockstep-shop-prod-shop-f3790813b761e62d-root' } } });
    // Labels lead back to the policy across namespaces.
    expect(ca?.issuer.metadata?.labels).toMatchObject({ 'lockstep.dev/key-policy': 'shop', 'lockstep.dev/key-policy-namespace': 'shop-prod' });
    expect(buildManagedCA(policy({}), 'cert-manager')).toBeUndefined();
  });

  it('names the cluster-scoped objects uniquely per namespace and policy, within the name length limit', () => {
    expect(managedCAIssuerName('a-b', 'c')).not.toBe(managedCAIssuerName('a', 'b-c-x'));
    // Joined with '-', these read alike: the owner hash keeps them apart.
    for (const f of [managedCAIssuerName, managedCASelfSignedIssuerName, managedCACertificateName]) {
      expect(f('team-a', 'prod')).not.toBe(f('team', 'a-prod'));
    }
    // A cut never leaves '.' or '-' before the hash (an invalid DNS subdomain).
    const dotted = managedCAIssuerName('n'.repeat(63), `${'p'.repeat(150)}.${'q'.repeat(100)}`);
    expect(dotted).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
    const long = managedCAIssuerName('n'.repeat(63), 'p'.repeat(253));
    expect(long.length).toBeLessThanOrEqual(253);
    expect(long).not.toBe(managedCAIssuerName('n'.repeat(63), `${'p'.repeat(252)}q`));
    expect(managedCASelfSignedIssuerName('n'.repeat(63), 'p'.repeat(253)).length).toBeLessThanOrEqual(253);
  });

  it('a new root may sign CRLs; a root issued without that usage keeps its usages (a change would re-issue it with a new key)', () => {
    const p = policy({ certificates: { defaultIssuer: { managedCA: {} } } });
    expect(buildManagedCA(p, 'cert-manager')?.root.spec['usages']).toEqual(['digital signature', 'key encipherment', 'cert sign', 'crl sign']);
    expect(buildManagedCA(p, 'cert-manager', { crlSign: false })?.root.spec).not.toHaveProperty('usages');
  });

  it('lists everything cleanup must remove, including the root Secret cert-manager leaves', () => {
    expect(managedCARefs('shop-prod', 'shop', 'cert-manager').map((r) => `${r.kind}/${r.metadata?.namespace ?? ''}/${r.metadata?.name}`)).toEqual([
      'ClusterIssuer//lockstep-shop-prod-shop-f3790813b761e62d-ca',
      'Certificate/cert-manager/lockstep-shop-prod-shop-f3790813b761e62d-root',
      'Secret/cert-manager/lockstep-shop-prod-shop-f3790813b761e62d-root',
      'ClusterIssuer//lockstep-shop-prod-shop-f3790813b761e62d-selfsigned',
      // Names older operator versions gave: deleted only when they carry the policy's labels.
      'ClusterIssuer//lockstep-shop-prod-shop-ca',
      'Certificate/cert-manager/lockstep-shop-prod-shop-root',
      'Secret/cert-manager/lockstep-shop-prod-shop-root',
      'ClusterIssuer//lockstep-shop-prod-shop-selfsigned',
    ]);
  });

  it('is the issuer of services that name none', () => {
    const withCA = policy({ certificates: { defaultIssuer: { managedCA: {} } } });
    expect(resolveIssuer(service, withCA, { name: 'operator-default', kind: 'ClusterIssuer' })).toEqual({
      issuer: { name: 'lockstep-shop-prod-shop-f3790813b761e62d-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' }, source: 'policy',
    });
    const own = { ...service, spec: { ...service.spec, transit: { issuerRef: { name: 'mine', kind: 'Issuer' as const } } } };
    expect(resolveIssuer(own, withCA, undefined)).toMatchObject({ issuer: { name: 'mine' }, source: 'service' });
  });

  it('keeps a legacy root (its name, key and self-signed issuer) and moves only the CA ClusterIssuer to the new name', () => {
    const ca = buildManagedCA(policy({ certificates: { defaultIssuer: { managedCA: {} } } }), 'cert-manager', { legacyRoot: true });
    expect(ca?.root.metadata?.name).toBe('lockstep-shop-prod-shop-root');
    expect(ca?.root.spec).toMatchObject({ secretName: 'lockstep-shop-prod-shop-root', issuerRef: { name: 'lockstep-shop-prod-shop-selfsigned' } });
    expect(ca?.selfSigned.metadata?.name).toBe('lockstep-shop-prod-shop-selfsigned');
    expect(ca?.issuer).toMatchObject({ metadata: { name: managedCAIssuerName('shop-prod', 'shop') }, spec: { ca: { secretName: 'lockstep-shop-prod-shop-root' } } });
  });
});
