// Leaf certificate rotation against cert-manager. Re-issuance is triggered the way `cmctl renew`
// and cert-manager's own trigger controller do it: the Certificate's Issuing condition is set to
// True on its status subresource, and cert-manager issues a new revision (a new key too, as the
// Certificates ask for rotationPolicy Always). Before that, the current TLS Secret's certificate,
// key and CA are copied into an operator-owned rollback Secret, so a failed step can put the
// previous, still-valid revision back.
import * as k8s from '@kubernetes/client-node';
import type { V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import { LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY_VALUE, tlsSecretName } from '../api/v1alpha1/index.js';
import { FIELD_MANAGER, type Applier } from '../kube/apply.js';
import { isNotFound } from '../runtime/api-error.js';
import { serialOf } from './tls-verification.js';

export const LABEL_ROTATION_SCHEDULE = 'lockstep.dev/rotation-schedule';
export const ANNOTATION_ROTATION_ID = 'lockstep.dev/rotation-id';
export const ANNOTATION_SERIAL = 'lockstep.dev/serial';
/** Data keys of a cert-manager TLS Secret that make up one certificate revision. */
export const REVISION_KEYS = ['tls.crt', 'tls.key', 'ca.crt'] as const;

const CERT_MANAGER = { group: 'cert-manager.io', version: 'v1' };
const ANNOTATION_CERTIFICATE_NAME = 'cert-manager.io/certificate-name';
const ANNOTATION_CERTIFICATE_REVISION = 'cert-manager.io/certificate-revision';

export function rollbackSecretName(serviceName: string): string {
  return `${tlsSecretName(serviceName)}-previous`;
}

/** Serial of the certificate a TLS Secret holds, or undefined when it holds none readable. */
export function secretSerial(secret: V1Secret | undefined): string | undefined {
  const pem = secret?.data?.['tls.crt'];
  if (!pem) return undefined;
  try {
    return serialOf(Buffer.from(pem, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
}

export function buildRollbackSecret(
  namespace: string, serviceName: string, scheduleName: string, rotationId: string, tls: V1Secret, owner: V1OwnerReference,
): V1Secret {
  const data: Record<string, string> = {};
  for (const key of REVISION_KEYS) {
    const value = tls.data?.[key];
    if (value !== undefined) data[key] = value;
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: rollbackSecretName(serviceName),
      namespace,
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_COMPONENT]: 'transit', [LABEL_ROTATION_SCHEDULE]: scheduleName },
      annotations: { [ANNOTATION_ROTATION_ID]: rotationId, [ANNOTATION_SERIAL]: secretSerial(tls) ?? '' },
      ownerReferences: [owner],
    },
    // Opaque, not kubernetes.io/tls: nothing should mount or pick up the retired revision.
    type: 'Opaque',
    data,
  };
}

interface CertificateLike {
  metadata?: { name?: string; generation?: number; resourceVersion?: string };
  status?: { revision?: number; conditions?: { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string; observedGeneration?: number }[] };
}

export function isIssuing(cert: CertificateLike | undefined): boolean {
  return cert?.status?.conditions?.some((c) => c.type === 'Issuing' && c.status === 'True') ?? false;
}

export function isReady(cert: CertificateLike | undefined): boolean {
  return cert?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** The Certificate with Issuing=True added (what cert-manager's trigger controller writes). */
export function withIssuingCondition(cert: CertificateLike, message: string, now: Date): CertificateLike {
  const conditions = (cert.status?.conditions ?? []).filter((c) => c.type !== 'Issuing');
  conditions.push({
    type: 'Issuing', status: 'True', reason: 'ManuallyTriggered', message,
    lastTransitionTime: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    ...(cert.metadata?.generation !== undefined ? { observedGeneration: cert.metadata.generation } : {}),
  });
  return { ...cert, status: { ...cert.status, conditions } };
}

export type RestoreResult = 'restored' | 'already-current' | 'no-backup';

export class LeafCertificates {
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;

  constructor(writer: k8s.KubeConfig, private readonly applier: Applier, private readonly now: () => Date = () => new Date()) {
    this.custom = writer.makeApiClient(k8s.CustomObjectsApi);
    this.core = writer.makeApiClient(k8s.CoreV1Api);
  }

  /**
   * Keeps the current revision for rollback and returns its serial. A backup already made for
   * this rotation is kept as it is: after a crash the live Secret may already hold the new one.
   */
  async backup(namespace: string, serviceName: string, rotationId: string, build: () => V1Secret): Promise<string> {
    const existing = await this.read(namespace, rollbackSecretName(serviceName));
    const annotations = existing?.metadata?.annotations ?? {};
    const keptSerial = annotations[ANNOTATION_SERIAL];
    if (annotations[ANNOTATION_ROTATION_ID] === rotationId && keptSerial) return keptSerial;
    const desired = build();
    const serial = desired.metadata?.annotations?.[ANNOTATION_SERIAL];
    if (!serial) throw new Error(`Secret ${tlsSecretName(serviceName)} holds no readable certificate to keep for rollback`);
    await this.applier.apply(desired);
    return serial;
  }

  /**
   * Sets Issuing=True, unless cert-manager is already issuing or the Secret no longer holds
   * `previousSerial` (issued already). The Certificate is read before the Secret: cert-manager
   * writes the Secret before it clears Issuing, so "not issuing, old serial" means not issued.
   * Returns whether it wrote.
   */
  async triggerIssuance(namespace: string, name: string, previousSerial: string, message: string): Promise<boolean> {
    const cert = (await this.custom.getNamespacedCustomObject({ ...CERT_MANAGER, namespace, plural: 'certificates', name })) as CertificateLike;
    if (isIssuing(cert)) return false;
    if (secretSerial(await this.read(namespace, tlsSecretName(name))) !== previousSerial) return false;
    // resourceVersion in the body makes this a compare-and-swap: a concurrent change is a conflict, retried.
    await this.custom.replaceNamespacedCustomObjectStatus({
      ...CERT_MANAGER, namespace, plural: 'certificates', name, body: withIssuingCondition(cert, message, this.now()), fieldManager: FIELD_MANAGER,
    });
    return true;
  }

  /**
   * Puts the kept revision back into the TLS Secret. First the CertificateRequest of the current
   * revision is deleted: cert-manager re-issues when the Secret's key differs from that request's,
   * and would otherwise undo the rollback at once. Idempotent: a Secret already serving the kept
   * serial is left alone.
   */
  async restore(namespace: string, serviceName: string, certificateName: string): Promise<{ result: RestoreResult; serial?: string }> {
    const backup = await this.read(namespace, rollbackSecretName(serviceName));
    const kept = secretSerial(backup);
    if (!backup || !kept) return { result: 'no-backup' };
    const live = await this.read(namespace, tlsSecretName(serviceName));
    if (secretSerial(live) === kept) return { result: 'already-current', serial: kept };

    const cert = (await this.custom.getNamespacedCustomObject({ ...CERT_MANAGER, namespace, plural: 'certificates', name: certificateName })) as CertificateLike;
    const revision = cert.status?.revision;
    if (revision !== undefined) {
      const requests = (await this.custom.listNamespacedCustomObject({ ...CERT_MANAGER, namespace, plural: 'certificaterequests' })) as { items: CertificateLike[] };
      for (const cr of requests.items) {
        const a = (cr.metadata as { annotations?: Record<string, string> } | undefined)?.annotations ?? {};
        if (a[ANNOTATION_CERTIFICATE_NAME] !== certificateName || a[ANNOTATION_CERTIFICATE_REVISION] !== String(revision)) continue;
        try {
          await this.custom.deleteNamespacedCustomObject({ ...CERT_MANAGER, namespace, plural: 'certificaterequests', name: cr.metadata?.name ?? '' });
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
    }
    const data: Record<string, string> = {};
    for (const key of REVISION_KEYS) {
      const value = backup.data?.[key];
      if (value !== undefined) data[key] = value;
    }
    await this.core.patchNamespacedSecret(
      { namespace, name: tlsSecretName(serviceName), body: { data }, fieldManager: FIELD_MANAGER },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    return { result: 'restored', serial: kept };
  }

  private async read(namespace: string, name: string): Promise<V1Secret | undefined> {
    try {
      return await this.core.readNamespacedSecret({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}
