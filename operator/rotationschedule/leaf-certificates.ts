// Leaf certificate rotation against cert-manager. Re-issuance is triggered the way `cmctl renew`
// and cert-manager's own trigger controller do it: the Certificate's Issuing condition is set to
// True on its status subresource, and cert-manager issues a new revision (a new key too, as the
// Certificates ask for rotationPolicy Always). Before that, the current TLS Secret's certificate,
// key and CA are copied into an operator-owned rollback Secret, so a failed step can put the
// previous, still-valid revision back.
import { X509Certificate } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import { LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY_VALUE, parseDuration, tlsSecretName } from '../api/v1alpha1/index.js';
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
  spec?: RenewalSpec;
  status?: { revision?: number; lastFailureTime?: string; conditions?: { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string; observedGeneration?: number }[] };
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

/**
 * - restored / already-current: the kept revision is (now) in the TLS Secret;
 * - no-backup: nothing kept for this rotation (the target failed before it was backed up, or the
 *   backup belongs to another rotation or revision: restoring it would install a stale certificate);
 * - target-gone: the TLS Secret or Certificate no longer exists;
 * - in-renewal-window: the kept certificate is already due for renewal, so cert-manager would
 *   replace it at once with another unverified one; it is not put back.
 */
export type RestoreResult = 'restored' | 'already-current' | 'no-backup' | 'target-gone' | 'in-renewal-window';

/** What a restore must find in the backup: made by this rotation, holding the revision it recorded. */
export interface BackupExpectation {
  rotationId: string;
  serial: string;
}

interface RenewalSpec {
  renewBefore?: string;
  renewBeforePercentage?: number;
}

/**
 * When cert-manager renews a certificate valid from notBefore to notAfter (its
 * pkg/util/pki RenewalTime): renewBefore, else renewBeforePercentage of the lifetime, else a
 * third of it, before notAfter.
 */
export function renewalTime(notBefore: number, notAfter: number, spec: RenewalSpec, parse: (d: string) => number): number {
  const lifetime = notAfter - notBefore;
  let before = lifetime / 3;
  if (spec.renewBefore) before = parse(spec.renewBefore);
  else if (spec.renewBeforePercentage !== undefined) before = (lifetime * spec.renewBeforePercentage) / 100;
  if (before >= lifetime) before = lifetime / 3;
  return notAfter - before;
}

/** cert-manager reported a failed issuance at or after `since` (it then backs off for at least an hour). */
export function issuanceFailedSince(cert: CertificateLike | undefined, since: number): string | undefined {
  const failedAt = cert?.status?.lastFailureTime;
  if (!failedAt || Date.parse(failedAt) < since) return undefined;
  const issuing = cert?.status?.conditions?.find((c) => c.type === 'Issuing');
  return issuing?.message ?? 'cert-manager reported a failed issuance';
}

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
    const cert = await this.certificate(namespace, name);
    if (!cert || isIssuing(cert)) return false;
    if (secretSerial(await this.read(namespace, tlsSecretName(name))) !== previousSerial) return false;
    // resourceVersion in the body makes this a compare-and-swap: a concurrent change is a conflict, retried.
    await this.custom.replaceNamespacedCustomObjectStatus({
      ...CERT_MANAGER, namespace, plural: 'certificates', name, body: withIssuingCondition(cert, message, this.now()), fieldManager: FIELD_MANAGER,
    });
    return true;
  }

  /**
   * Puts the kept revision back into the TLS Secret, if `expected` says it is this rotation's.
   * First the CertificateRequest of the current revision is deleted: cert-manager re-issues when
   * the Secret's key differs from that request's, and would otherwise undo the rollback at once.
   * Idempotent: a Secret already serving the kept serial is left alone.
   */
  async restore(namespace: string, serviceName: string, certificateName: string, expected: BackupExpectation): Promise<{ result: RestoreResult; serial?: string }> {
    const backup = await this.read(namespace, rollbackSecretName(serviceName));
    const kept = secretSerial(backup);
    const annotations = backup?.metadata?.annotations ?? {};
    if (!backup || !kept || kept !== expected.serial || annotations[ANNOTATION_ROTATION_ID] !== expected.rotationId) return { result: 'no-backup' };
    const live = await this.read(namespace, tlsSecretName(serviceName));
    if (!live) return { result: 'target-gone', serial: kept };
    if (secretSerial(live) === kept) return { result: 'already-current', serial: kept };
    const cert = await this.certificate(namespace, certificateName);
    if (!cert) return { result: 'target-gone', serial: kept };
    const keptCert = new X509Certificate(Buffer.from(backup.data?.['tls.crt'] ?? '', 'base64'));
    if (renewalTime(Date.parse(keptCert.validFrom), Date.parse(keptCert.validTo), cert.spec ?? {}, parseDuration) <= this.now().getTime()) {
      return { result: 'in-renewal-window', serial: kept };
    }
    const revision = cert.status?.revision;
    if (revision !== undefined) await this.deleteRequests(namespace, certificateName, (r) => r === revision);
    const data: Record<string, string> = {};
    for (const key of REVISION_KEYS) {
      const value = backup.data?.[key];
      if (value !== undefined) data[key] = value;
    }
    try {
      await this.core.patchNamespacedSecret(
        { namespace, name: tlsSecretName(serviceName), body: { data }, fieldManager: FIELD_MANAGER },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (isNotFound(err)) return { result: 'target-gone', serial: kept };
      throw err;
    }
    return { result: 'restored', serial: kept };
  }

  /**
   * Stops an issuance this rotation asked for and gave up on: Issuing=True is removed (cert-manager
   * installs a new revision only while it is set) and the pending CertificateRequest deleted, so
   * no unverified certificate lands after the rotation ended. Idempotent; a gone Certificate is fine.
   */
  async cancelIssuance(namespace: string, name: string): Promise<void> {
    const cert = await this.certificate(namespace, name);
    if (!cert) return;
    if (isIssuing(cert)) {
      const conditions = (cert.status?.conditions ?? []).filter((c) => c.type !== 'Issuing');
      try {
        await this.custom.replaceNamespacedCustomObjectStatus({
          ...CERT_MANAGER, namespace, plural: 'certificates', name, body: { ...cert, status: { ...cert.status, conditions } }, fieldManager: FIELD_MANAGER,
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    const revision = cert.status?.revision ?? 0;
    await this.deleteRequests(namespace, name, (r) => r > revision);
  }

  private async certificate(namespace: string, name: string): Promise<CertificateLike | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({ ...CERT_MANAGER, namespace, plural: 'certificates', name })) as CertificateLike;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async deleteRequests(namespace: string, certificateName: string, revision: (r: number) => boolean): Promise<void> {
    const requests = (await this.custom.listNamespacedCustomObject({ ...CERT_MANAGER, namespace, plural: 'certificaterequests' })) as { items: CertificateLike[] };
    for (const cr of requests.items) {
      const a = (cr.metadata as { annotations?: Record<string, string> } | undefined)?.annotations ?? {};
      if (a[ANNOTATION_CERTIFICATE_NAME] !== certificateName || !revision(Number(a[ANNOTATION_CERTIFICATE_REVISION]))) continue;
      try {
        await this.custom.deleteNamespacedCustomObject({ ...CERT_MANAGER, namespace, plural: 'certificaterequests', name: cr.metadata?.name ?? '' });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
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
