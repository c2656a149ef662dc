import { describe, expect, it } from '@jest/globals';
import { judgeEtcdEncryption, managedProvider } from './etcd-encryption.js';

// /readyz?verbose as kube-apiserver 1.36 prints it (the e2e/kms suite's encrypting API server).
const readyz = (kms: string | undefined) => [
  '[+]ping ok', '[+]log ok', '[+]etcd ok', ...(kms ? [kms] : []), '[+]informer-sync ok',
  '[+]poststarthook/start-apiserver-admission-initializer ok', 'readyz check passed', '',
].join('\n');
const plain = { gitVersion: 'v1.36.3', nodeLabelKeys: ['kubernetes.io/hostname'] };

describe('judgeEtcdEncryption', () => {
  it('a passing kms-providers check is a KMS provider; an older server\'s kms-provider-0 too', () => {
    expect(judgeEtcdEncryption({ ...plain, readyz: readyz('[+]kms-providers ok') })).toMatchObject({ kms: 'kms', message: expect.stringContaining('kms-providers check passes') });
    expect(judgeEtcdEncryption({ ...plain, readyz: readyz('[+]kms-provider-0 ok') }).kms).toBe('kms');
  });

  it('a failing check says the provider cannot encrypt, whatever else passes', () => {
    const r = judgeEtcdEncryption({ ...plain, readyz: readyz('[-]kms-providers failed: reason withheld') });
    expect(r).toMatchObject({ kms: 'failing', message: expect.stringContaining('kms-providers fails') });
  });

  it('no check on a self-managed server: none, pointing at the plugin', () => {
    const r = judgeEtcdEncryption({ ...plain, readyz: readyz(undefined) });
    expect(r.kms).toBe('none');
    expect(r.provider).toBeUndefined();
    expect(r.message).toContain('docs/kms.md');
    // A server that hid its checks (403) says nothing either way.
    expect(judgeEtcdEncryption({ ...plain, readyz: undefined }).kms).toBe('none');
  });

  it('a managed control plane without the check is unconfirmed, with what to switch on there', () => {
    const eks = judgeEtcdEncryption({ readyz: readyz(undefined), gitVersion: 'v1.33.5-eks-3025e55', nodeLabelKeys: undefined });
    expect(eks).toMatchObject({ kms: 'unconfirmed', provider: 'Amazon EKS', message: expect.stringContaining('aws eks associate-encryption-config') });
    const aks = judgeEtcdEncryption({ readyz: readyz(undefined), gitVersion: 'v1.33.2', nodeLabelKeys: ['kubernetes.azure.com/cluster'] });
    expect(aks).toMatchObject({ kms: 'unconfirmed', provider: 'Azure AKS' });
    // With the check, a managed cluster is judged by it.
    expect(judgeEtcdEncryption({ readyz: readyz('[+]kms-providers ok'), gitVersion: 'v1.34.1-gke.1200', nodeLabelKeys: undefined }))
      .toMatchObject({ kms: 'kms', provider: 'Google GKE' });
  });
});

describe('managedProvider', () => {
  it('reads the version string and node labels; a plain build is nobody\'s', () => {
    expect(managedProvider({ readyz: undefined, gitVersion: 'v1.34.1-gke.1200', nodeLabelKeys: undefined })?.name).toBe('Google GKE');
    expect(managedProvider({ readyz: undefined, gitVersion: 'v1.33.0', nodeLabelKeys: ['cloud.google.com/gke-nodepool'] })?.name).toBe('Google GKE');
    expect(managedProvider({ readyz: undefined, gitVersion: 'v1.36.3', nodeLabelKeys: ['kubernetes.io/os'] })).toBeUndefined();
  });
});
