// Which KeyPolicy governs an EncryptedService, whether the service may use it, and which issuer
// signs its certificate. Pure: the reconciler passes what its caches hold.
import {
  CRD_DEFAULTS, Reasons, effectiveTLS, keyPolicyNamespaceOf, type Reason,
  type EncryptedService, type IssuerRef, type KeyPolicy, type TLSVersion,
} from '../api/v1alpha1/index.js';
import { managedCAIssuerName } from '../keypolicy/names.js';

export interface Problem {
  reason: Reason;
  message: string;
}

export type PolicyResolution = { policy: KeyPolicy } | { problem: Problem };

export function resolvePolicy(
  es: EncryptedService,
  lookup: (namespace: string, name: string) => KeyPolicy | undefined,
): PolicyResolution {
  const namespace = keyPolicyNamespaceOf(es);
  const name = es.spec.keyPolicyRef.name;
  const policy = lookup(namespace, name);
  if (!policy) {
    return { problem: { reason: Reasons.KeyPolicyNotFound, message: `KeyPolicy ${namespace}/${name} does not exist: create it or fix spec.keyPolicyRef` } };
  }
  const denied = accessDenied(es, policy);
  return denied ? { problem: denied } : { policy };
}

/** Why the policy refuses this service, or undefined when it is allowed. */
export function accessDenied(es: EncryptedService, policy: KeyPolicy): Problem | undefined {
  const ns = es.metadata.namespace ?? '';
  const policyName = `${policy.metadata.namespace}/${policy.metadata.name}`;
  const namespaces = policy.spec.allowed?.namespaces ?? [policy.metadata.namespace ?? ''];
  if (!namespaces.includes('*') && !namespaces.includes(ns)) {
    return {
      reason: Reasons.KeyPolicyNotAllowed,
      message: `KeyPolicy ${policyName} does not allow namespace ${ns}: add it to the policy's spec.allowed.namespaces`,
    };
  }
  const accounts = policy.spec.allowed?.serviceAccounts;
  const sa = es.spec.workload.serviceAccountName;
  if (accounts && accounts.length > 0 && !accounts.includes(`${ns}/${sa}`) && !accounts.includes(`${ns}/*`)) {
    return {
      reason: Reasons.KeyPolicyNotAllowed,
      message: `KeyPolicy ${policyName} does not allow service account ${ns}/${sa}: add it to the policy's spec.allowed.serviceAccounts`,
    };
  }
  return undefined;
}

const TLS_RANK: Record<TLSVersion, number> = { 'TLS1.2': 2, 'TLS1.3': 3 };

/** Where the service's TLS settings are weaker than the policy's; the policy's then apply. */
export function tlsWeakening(es: EncryptedService, policy: KeyPolicy): string | undefined {
  const asked = es.spec.transit?.tls;
  if (!asked) return undefined;
  const floor = effectiveTLS(policy.spec.tls);
  if (asked.minVersion && TLS_RANK[asked.minVersion] < TLS_RANK[floor.minVersion]) {
    return `spec.transit.tls.minVersion ${asked.minVersion} is below the KeyPolicy's ${floor.minVersion}; ${floor.minVersion} applies`;
  }
  const extra = (asked.cipherSuites ?? []).filter((s) => !floor.cipherSuites.includes(s));
  if (floor.minVersion === 'TLS1.2' && extra.length > 0) {
    return `cipher suites ${extra.join(', ')} are not allowed by the KeyPolicy and are ignored`;
  }
  return undefined;
}

export type IssuerResolution = { issuer: Required<IssuerRef>; source: 'service' | 'policy' | 'operator' } | { problem: Problem };

/** The service's issuer, else the policy's default issuer, else the operator's default. */
export function resolveIssuer(es: EncryptedService, policy: KeyPolicy, operatorDefault: IssuerRef | undefined): IssuerResolution {
  const complete = (ref: IssuerRef): Required<IssuerRef> => ({
    name: ref.name,
    kind: ref.kind ?? CRD_DEFAULTS.issuerKind,
    group: ref.group ?? CRD_DEFAULTS.issuerGroup,
  });
  if (es.spec.transit?.issuerRef) return { issuer: complete(es.spec.transit.issuerRef), source: 'service' };
  const fromPolicy = policy.spec.certificates?.defaultIssuer?.issuerRef;
  if (fromPolicy) return { issuer: complete(fromPolicy), source: 'policy' };
  if (policy.spec.certificates?.defaultIssuer?.managedCA) {
    const name = managedCAIssuerName(policy.metadata.namespace ?? '', policy.metadata.name ?? '');
    return { issuer: { name, kind: 'ClusterIssuer', group: CRD_DEFAULTS.issuerGroup }, source: 'policy' };
  }
  if (operatorDefault) return { issuer: complete(operatorDefault), source: 'operator' };
  return {
    problem: {
      reason: Reasons.IssuerNotFound,
      message: 'no issuer: set spec.transit.issuerRef, the KeyPolicy\'s certificates.defaultIssuer, or the operator\'s LOCKSTEP_DEFAULT_ISSUER',
    },
  };
}

/** Parses the operator's default issuer setting, `Kind/name` or `name` (a ClusterIssuer). */
export function parseIssuerSetting(value: string | undefined): IssuerRef | undefined {
  if (!value) return undefined;
  const [kind, name] = value.includes('/') ? value.split('/', 2) : ['ClusterIssuer', value];
  if (kind !== 'Issuer' && kind !== 'ClusterIssuer') throw new Error(`LOCKSTEP_DEFAULT_ISSUER: kind must be Issuer or ClusterIssuer, got ${kind}`);
  if (!name) throw new Error('LOCKSTEP_DEFAULT_ISSUER: missing issuer name');
  return { kind, name, group: 'cert-manager.io' };
}
