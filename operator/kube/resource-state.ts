// What the scrape-time gauges report of one Lockstep object (lockstep_resource_ready,
// lockstep_certificate_expiry_timestamp_seconds, lockstep_certificate_renewal_timestamp_seconds,
// lockstep_key_rotation_period_seconds,
// lockstep_rotation_phase) and of one CA certificate the operator made
// (lockstep_ca_expiry_timestamp_seconds), read from the objects as the caches hold them.
import type { KubernetesObject } from '@kubernetes/client-node';
import { CRD_DEFAULTS, LABEL_KEY_POLICY, LABEL_KEY_POLICY_NAMESPACE, LABEL_MANAGED_BY, MANAGED_BY_VALUE, parseDuration, type Condition, type KeyPolicySpec } from '../api/v1alpha1/index.js';
import type { CAState, ResourceState } from '../runtime/metrics.js';
import { findCondition } from './conditions.js';

type WithStatus = KubernetesObject & {
  spec?: object;
  status?: { observedGeneration?: number; conditions?: Condition[]; certificate?: { notAfter?: string; renewalTime?: string }; phase?: string };
};

export function resourceState(obj: WithStatus): ResourceState {
  const ready = findCondition(obj.status?.conditions, 'Ready');
  const observed = ready?.observedGeneration ?? obj.status?.observedGeneration;
  const notAfter = Date.parse(obj.status?.certificate?.notAfter ?? '');
  const renewal = Date.parse(obj.status?.certificate?.renewalTime ?? '');
  const period = obj.kind === 'KeyPolicy' ? periodSeconds((obj.spec as KeyPolicySpec | undefined)?.rotation?.period ?? CRD_DEFAULTS.keyRotationPeriod) : undefined;
  const phase = obj.kind === 'RotationSchedule' ? obj.status?.phase ?? 'Idle' : undefined;
  return {
    kind: obj.kind ?? '',
    namespace: obj.metadata?.namespace ?? '',
    name: obj.metadata?.name ?? '',
    ready: ready?.status === 'True' && observed === obj.metadata?.generation,
    ...(Number.isNaN(notAfter) ? {} : { certificateNotAfterMs: notAfter }),
    ...(Number.isNaN(renewal) ? {} : { certificateRenewalMs: renewal }),
    ...(period === undefined ? {} : { rotationPeriodSeconds: period }),
    ...(phase === undefined ? {} : { phase }),
  };
}

function periodSeconds(period: string): number | undefined {
  try {
    return parseDuration(period) / 1000;
  } catch {
    return undefined; // the CRD pattern rejects it; nothing to compare a key's age with
  }
}

type CertificateObject = KubernetesObject & { spec?: { isCA?: boolean }; status?: { notAfter?: string; conditions?: unknown } };

/**
 * A CA certificate the operator made (a KeyPolicy's managed root, or a new CA of a CA rotation)
 * once cert-manager has issued it; undefined for leaves, for certificates Lockstep did not label,
 * and before issuance.
 */
export function caState(cert: CertificateObject): CAState | undefined {
  const labels = cert.metadata?.labels ?? {};
  if (cert.spec?.isCA !== true || labels[LABEL_MANAGED_BY] !== MANAGED_BY_VALUE) return undefined;
  const notAfter = Date.parse(cert.status?.notAfter ?? '');
  if (Number.isNaN(notAfter)) return undefined;
  const policy = labels[LABEL_KEY_POLICY];
  const policyNamespace = labels[LABEL_KEY_POLICY_NAMESPACE];
  return {
    namespace: cert.metadata?.namespace ?? '',
    certificate: cert.metadata?.name ?? '',
    keypolicy: policy && policyNamespace ? `${policyNamespace}/${policy}` : '',
    notAfterMs: notAfter,
  };
}
