// The cert-manager Certificate that gives an EncryptedService its identity for mutual TLS.
import type { V1OwnerReference } from '@kubernetes/client-node';
import {
  ANNOTATION_SPIFFE_ID, CRD_DEFAULTS, effectivePrivateKey, effectiveRenewal, formatDuration, parseDuration,
  serviceNameOf, tlsSecretName, type EncryptedService, type IssuerRef, type KeyPolicy,
} from '../api/v1alpha1/index.js';
import { childLabels } from './children.js';

export const CERT_MANAGER_API_VERSION = 'cert-manager.io/v1';

export interface CertificateObject {
  apiVersion: typeof CERT_MANAGER_API_VERSION;
  kind: 'Certificate';
  metadata: { name: string; namespace: string; labels: Record<string, string>; ownerReferences: V1OwnerReference[] };
  spec: Record<string, unknown>;
}

export function spiffeId(es: EncryptedService): string {
  const trustDomain = es.spec.transit?.trustDomain ?? CRD_DEFAULTS.trustDomain;
  return `spiffe://${trustDomain}/ns/${es.metadata.namespace}/sa/${es.spec.workload.serviceAccountName}`;
}

/** The names a client may use for the service inside the cluster: always allowed. */
export function ownDNSNames(es: EncryptedService): string[] {
  const svc = serviceNameOf(es);
  const ns = es.metadata.namespace;
  return [svc, `${svc}.${ns}`, `${svc}.${ns}.svc`, `${svc}.${ns}.svc.cluster.local`];
}

/** The service's own names, then the spec's extras (which claims.ts checks against the KeyPolicy). */
export function dnsNames(es: EncryptedService): string[] {
  return [...new Set([...ownDNSNames(es), ...(es.spec.transit?.extraDNSNames ?? [])])];
}

export interface EffectiveDuration {
  duration: string;
  /** Set when the KeyPolicy's maximum shortened what the service asked for. */
  cappedFrom?: string;
}

/** The service's certificate lifetime, never above the KeyPolicy's maximum. */
export function effectiveDuration(es: EncryptedService, policy: KeyPolicy): EffectiveDuration {
  const asked = es.spec.transit?.duration ?? CRD_DEFAULTS.certificateDuration;
  const max = policy.spec.certificates?.maxDuration ?? CRD_DEFAULTS.maxCertificateDuration;
  if (parseDuration(asked) <= parseDuration(max)) return { duration: asked };
  return { duration: formatDuration(parseDuration(max)), cappedFrom: asked };
}

export function buildCertificate(
  es: EncryptedService,
  policy: KeyPolicy,
  issuer: Required<IssuerRef>,
  owner: V1OwnerReference,
): CertificateObject {
  const name = es.metadata.name ?? '';
  const key = effectivePrivateKey(es.spec.transit?.privateKey, policy.spec.certificates?.privateKey);
  const usages = ['digital signature', ...(key.algorithm === 'RSA' ? ['key encipherment'] : []), 'server auth', 'client auth'];
  const id = spiffeId(es);
  const renewal = effectiveRenewal(es.spec.transit);
  return {
    apiVersion: CERT_MANAGER_API_VERSION,
    kind: 'Certificate',
    metadata: { name, namespace: es.metadata.namespace ?? '', labels: childLabels(es, 'transit'), ownerReferences: [owner] },
    spec: {
      secretName: tlsSecretName(name),
      secretTemplate: { labels: childLabels(es, 'transit'), annotations: { [ANNOTATION_SPIFFE_ID]: id } },
      duration: effectiveDuration(es, policy).duration,
      ...renewal,
      dnsNames: dnsNames(es),
      uris: [id],
      usages,
      privateKey: { algorithm: key.algorithm, ...(key.size ? { size: key.size } : {}), encoding: 'PKCS8', rotationPolicy: 'Always' },
      issuerRef: { name: issuer.name, kind: issuer.kind, group: issuer.group },
    },
  };
}
