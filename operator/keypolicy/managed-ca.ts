// A KeyPolicy's own CA (spec.certificates.defaultIssuer.managedCA), built from cert-manager
// objects: a self-signed ClusterIssuer signs a root Certificate whose Secret lives in
// cert-manager's cluster resource namespace, and a CA ClusterIssuer signs the services' leaves
// with it. ClusterIssuers, not Issuers, because services in every namespace the policy allows
// must be able to use it. None of these can carry an owner reference to the namespaced
// KeyPolicy, so the policy holds a finalizer and the reconciler deletes them — only those that
// carry the policy's labels (names.ts ownedByPolicy): a name held by anyone else is never
// applied over or deleted.
import type { KubernetesObject } from '@kubernetes/client-node';
import { effectivePrivateKey, type KeyPolicy } from '../api/v1alpha1/index.js';
import {
  keyPolicyLabels, legacyManagedCANames, managedCACertificateName, managedCAIssuerName, managedCASelfSignedIssuerName,
} from './names.js';

export type CertManagerResource = KubernetesObject & { spec: Record<string, unknown> };

const CERT_MANAGER = 'cert-manager.io';

export interface ManagedCAObjects {
  selfSigned: CertManagerResource;
  root: CertManagerResource;
  issuer: CertManagerResource;
}

export interface ManagedCAOptions {
  /**
   * The policy's root was issued under the name an older operator gave it (names.ts
   * legacyManagedCANames) and carries its labels: it keeps its name, key and self-signed issuer,
   * so services moved to the new issuer name still chain to the root their peers trust.
   */
  legacyRoot?: boolean;
  /**
   * The root carries the CRL-signing key usage (default), so the CRLs Lockstep signs with it
   * (operator/revocation) verify in Go, OpenSSL and BoringSSL. False for a root issued without
   * it: a changed usage makes cert-manager issue a new root at once, with a new key (rotationPolicy
   * Always), which no published bundle trusts yet.
   */
  crlSign?: boolean;
}

/** Key usages of a managed root: cert-manager's defaults for a CA, plus CRL signing. */
export const MANAGED_ROOT_USAGES = ['digital signature', 'key encipherment', 'cert sign', 'crl sign'];

/** The three objects of a policy's managed CA, or undefined when the policy has none. */
export function buildManagedCA(policy: KeyPolicy, clusterResourceNamespace: string, options: ManagedCAOptions = {}): ManagedCAObjects | undefined {
  const managed = policy.spec.certificates?.defaultIssuer?.managedCA;
  if (!managed) return undefined;
  const namespace = policy.metadata.namespace ?? '';
  const name = policy.metadata.name ?? '';
  const labels = keyPolicyLabels(namespace, name, 'trust');
  const legacy = options.legacyRoot ? legacyManagedCANames(namespace, name) : undefined;
  const rootName = legacy?.root ?? managedCACertificateName(namespace, name);
  const selfSignedName = legacy?.selfSigned ?? managedCASelfSignedIssuerName(namespace, name);
  const key = effectivePrivateKey(undefined, policy.spec.certificates?.privateKey);
  return {
    selfSigned: {
      apiVersion: `${CERT_MANAGER}/v1`,
      kind: 'ClusterIssuer',
      metadata: { name: selfSignedName, labels },
      spec: { selfSigned: {} },
    },
    root: {
      apiVersion: `${CERT_MANAGER}/v1`,
      kind: 'Certificate',
      metadata: { name: rootName, namespace: clusterResourceNamespace, labels },
      spec: {
        isCA: true,
        commonName: managed.commonName ?? 'Lockstep root CA',
        duration: managed.duration ?? '8760h',
        secretName: rootName,
        secretTemplate: { labels },
        privateKey: { algorithm: key.algorithm, ...(key.size === undefined ? {} : { size: key.size }), rotationPolicy: 'Always' },
        ...(options.crlSign === false ? {} : { usages: [...MANAGED_ROOT_USAGES] }),
        issuerRef: { group: CERT_MANAGER, kind: 'ClusterIssuer', name: selfSignedName },
      },
    },
    issuer: {
      apiVersion: `${CERT_MANAGER}/v1`,
      kind: 'ClusterIssuer',
      metadata: { name: managedCAIssuerName(namespace, name), labels },
      spec: { ca: { secretName: rootName } },
    },
  };
}

/**
 * References to every object a managed CA may have left, under its names and its legacy names,
 * for cleanup. The caller deletes only those that carry the policy's labels.
 */
export function managedCARefs(namespace: string, policy: string, clusterResourceNamespace: string): KubernetesObject[] {
  const legacy = legacyManagedCANames(namespace, policy);
  const refs = (issuer: string, root: string, selfSigned: string): KubernetesObject[] => [
    { apiVersion: `${CERT_MANAGER}/v1`, kind: 'ClusterIssuer', metadata: { name: issuer } },
    { apiVersion: `${CERT_MANAGER}/v1`, kind: 'Certificate', metadata: { name: root, namespace: clusterResourceNamespace } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: root, namespace: clusterResourceNamespace } },
    { apiVersion: `${CERT_MANAGER}/v1`, kind: 'ClusterIssuer', metadata: { name: selfSigned } },
  ];
  return [
    ...refs(managedCAIssuerName(namespace, policy), managedCACertificateName(namespace, policy), managedCASelfSignedIssuerName(namespace, policy)),
    ...refs(legacy.issuer, legacy.root, legacy.selfSigned),
  ];
}
