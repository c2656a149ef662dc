// The NetworkPolicy that isolates a workload whose identity was revoked (operator/revocation),
// from the first recorded step of the revocation until the workload serves its new certificate.
// NetworkPolicies add up (a packet any policy admits passes), so quarantine cannot be one more
// policy beside the service's access policies: while it holds, it is the only one the access
// part applies, and the others are removed; they come back, as declared, when it is lifted.
import type { V1OwnerReference } from '@kubernetes/client-node';
import type { EncryptedService } from '../api/v1alpha1/index.js';
import { childLabels } from './children.js';
import { copySelector, probeRule, type NetworkPolicy, type ProbeSource } from './network-policy.js';

export function quarantinePolicyName(encryptedServiceName: string): string {
  return `${encryptedServiceName}-quarantine`;
}

/** Whether the revocation controller asked for the workload to be isolated. */
export function isQuarantined(es: EncryptedService): boolean {
  return es.status?.revocation?.quarantined === true;
}

/**
 * Deny all ingress and all egress of the service's pods, except the operator's probes on the TLS
 * ports: the operator must still see which certificate the workload serves to lift the quarantine.
 */
export function buildQuarantinePolicy(es: EncryptedService, owner: V1OwnerReference, probes?: ProbeSource): NetworkPolicy {
  const name = es.metadata.name ?? '';
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: quarantinePolicyName(name),
      namespace: es.metadata.namespace ?? '',
      labels: childLabels(es, 'access'),
      ownerReferences: [{ ...owner }],
    },
    spec: {
      podSelector: copySelector(es.spec.workload.selector),
      // No egress rule and (without probes) no ingress rule: the API server stores an empty list
      // as absent, and both policy types with no rule deny everything.
      policyTypes: ['Ingress', 'Egress'],
      ...(probes && es.spec.ports.length > 0 ? { ingress: [probeRule(es, probes)] } : {}),
    },
  };
}
