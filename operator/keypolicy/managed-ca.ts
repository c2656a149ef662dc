// A KeyPolicy's own CA (spec.certificates.defaultIssuer.managedCA), built from cert-manager
// objects: a self-signed ClusterIssuer signs a root Certificate whose Secret lives in
// cert-manager's cluster resource namespace, and a CA ClusterIssuer signs the services' leaves
// with it. ClusterIssuers, not Issuers, because services in every namespace the policy allows
// must be able to use it. None of these can carry an owner reference to the namespaced
// KeyPolicy, so the policy holds a finalizer and the reconciler deletes them.
import type { KubernetesObject } from '@kubernetes/client-node';
import { effectivePrivateKey, type KeyPolicy } from '../api/v1alpha1/index.js';
import {
  keyPolicyLabels, managedCACertificateName, managedCAIssuerName, managedCASelfSignedIssuerName,
} from './names.js';

export type CertManagerResource = KubernetesObject & { spec: Record<string, unknown> };

const CERT_MANAGER = 'cert-manager.io';

export interface ManagedCAObjects {
  selfSigned: CertManagerResource;
  root: CertManagerResource;
  issuer: CertManagerResource;
}

/** The three objects of a policy's managed CA, or undefined when the policy has none. */
export function buildManagedCA(policy: KeyPolicy, clusterResourceNamespace: string): ManagedCAObjects | undefined {
  const managed = policy.spec.certificates?.defaultIssuer?.managedCA;
  if (!managed) return undefined;
  const namespace = policy.metadata.namespace ?? '';
  const name = policy.metadata.name ?? '';
  const labels = keyPolicyLabels(namespace, name, 'trust');
  const rootName = managedCACertificateName(namespace, name);
  const key = effectivePrivateKey(undefined, policy.spec.certificates?.privateKey);
  return {
    selfSigned: {
      apiVersion: `${CERT_MANAGER}/v1`,
      kind: 'ClusterIssuer',
      metadata: { name: managedCASelfSignedIssuerName(namespace, name), labels },
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
        issuerRef: { group: CERT_MANAGER, kind: 'ClusterIssuer', name: managedCASelfSignedIssuerName(namespace, name) },
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

/** References to every object a managed CA may have left, for cleanup. */
export function managedCARefs(namespace: string, policy: string, clusterResourceNamespace: string): KubernetesObject[] {
  const rootName = managedCACertificateName(namespace, policy);
  return [
    { apiVersion: `${CERT_MANAGER}/v1`, kind: 'ClusterIssuer', metadata: { name: managedCAIssuerName(namespace, policy) } },
    { apiVersion: `${CERT_MANAGER}/v1`, kind: 'Certificate', metadata: { name: rootName, namespace: clusterResourceNamespace } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: rootName, namespace: clusterResourceNamespace } },
    { apiVersion: `${CERT_MANAGER}/v1`, kind: 'ClusterIssuer', metadata: { name: managedCASelfSignedIssuerName(namespace, policy) } },
  ];
}
