// The cert-manager side of a CA rotation with overlap. The new CA is a self-signed CA Certificate
// issued by cert-manager next to the current CA Secret; the rotated issuer is switched to it only
// after every affected trust bundle publishes the new root and the workloads were shown to trust
// it. Bundles are changed through two annotations on their ConfigMaps (trust-bundle.ts) that the
// EncryptedService reconciler honours, so the bundle keeps one writer of its data.
import { X509Certificate } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import {
  ANNOTATION_ACTIVE_CA_SECRET, LABEL_COMPONENT, LABEL_KEY_POLICY, LABEL_MANAGED_BY, MANAGED_BY_VALUE, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY, type IssuerRef,
} from '../api/v1alpha1/index.js';
import {
  LABEL_BUNDLE_NAMESPACE, TRUST_CHANGES_ADDED_KEY, TRUST_CHANGES_RETIRED_KEY, splitPem, trustChangesName,
} from '../encryptedservice/trust-bundle.js';
import { Applier } from '../kube/apply.js';
import { isNotFound } from '../runtime/api-error.js';
import type { IssuerMetadata } from './grant.js';
import { LABEL_ROTATION_SCHEDULE } from './leaf-certificates.js';

/** Field manager for the bundle annotations: distinct, so the bundle's own writer never removes them. */
export const CA_ROTATION_FIELD_MANAGER = 'lockstep-ca-rotation';
export const BOOTSTRAP_ISSUER = 'lockstep-ca-bootstrap';
const CM = { group: 'cert-manager.io', version: 'v1' };

export interface ResolvedIssuer extends Required<IssuerRef> {
  /** Where its CA Secret lives: the Issuer's namespace, or the cluster resource namespace. */
  secretNamespace: string;
}

export const newCaName = (rotationId: string): string => `lockstep-ca-${rotationId}`;
export const probeName = (rotationId: string): string => `lockstep-ca-probe-${rotationId}`;

export function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/** Whether `leafPem` was signed by `rootPem` (the signature verifies with the root's key). */
export function issuedBy(leafPem: string, rootPem: string): boolean {
  try {
    const leaf = new X509Certificate(leafPem);
    const root = new X509Certificate(rootPem);
    return leaf.checkIssued(root) && leaf.verify(root.publicKey);
  } catch {
    return false;
  }
}

export function bundleHas(bundle: V1ConfigMap | undefined, rootPem: string): boolean {
  const want = fingerprint(rootPem);
  return splitPem(bundle?.data?.[TRUST_BUNDLE_KEY]).some((pem) => fingerprint(pem) === want);
}

interface IssuerObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { ca?: { secretName?: string } };
}

export interface Pem {
  cert: string;
  key: string;
}

export class CaRotation {
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;
  private readonly bundles: Applier;

  /** `operatorNamespace` keeps the trust-changes records (trust-bundle.ts), out of tenants' reach. */
  constructor(writer: k8s.KubeConfig, private readonly applier: Applier, private readonly operatorNamespace: string) {
    this.custom = writer.makeApiClient(k8s.CustomObjectsApi);
    this.core = writer.makeApiClient(k8s.CoreV1Api);
    this.bundles = new Applier(writer, CA_ROTATION_FIELD_MANAGER);
  }

  /** The issuer's labels and annotations (the rotation grant reads them); undefined when it does not exist. */
  async issuerMetadata(issuer: ResolvedIssuer): Promise<IssuerMetadata | undefined> {
    try {
      const metadata = (await this.readIssuer(issuer)).metadata;
      return { labels: metadata?.labels ?? {}, annotations: metadata?.annotations ?? {} };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The CA Secret the issuer signs with now. */
  async issuerSecretName(issuer: ResolvedIssuer): Promise<string> {
    const obj = await this.readIssuer(issuer);
    const name = obj.spec?.ca?.secretName;
    if (!name) throw new Error(`${issuer.kind} ${issuer.name} is not a CA issuer (no spec.ca.secretName): only CA issuers can be rotated`);
    return name;
  }

  async caCertificate(namespace: string, secretName: string): Promise<string | undefined> {
    const secret = await this.readSecret(namespace, secretName);
    const pem = secret?.data?.['tls.crt'];
    return pem ? splitPem(Buffer.from(pem, 'base64').toString('utf8'))[0] : undefined;
  }

  /** Applies the bootstrap self-signed Issuer and the new CA Certificate; returns its root once issued. */
  async ensureNewCa(issuer: ResolvedIssuer, rotationId: string, duration: string, scheduleName: string): Promise<string | undefined> {
    const namespace = issuer.secretNamespace;
    const labels = { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_ROTATION_SCHEDULE]: scheduleName };
    await this.applier.apply({ apiVersion: 'cert-manager.io/v1', kind: 'Issuer', metadata: { name: BOOTSTRAP_ISSUER, namespace, labels }, spec: { selfSigned: {} } } as k8s.KubernetesObject);
    const name = newCaName(rotationId);
    // No owner reference: the issuer signs with this CA after the rotation, whatever happens to the schedule.
    await this.applier.apply({
      apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name, namespace, labels },
      spec: {
        isCA: true, commonName: `Lockstep CA ${rotationId}`, secretName: name, duration,
        // Labelled so the operator may delete it (lockstep-operator-managed-objects admission policy).
        secretTemplate: { labels },
        // Renewal keeps the key, so leaves issued by this CA keep verifying against the published root.
        privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Never' },
        issuerRef: { name: BOOTSTRAP_ISSUER, kind: 'Issuer', group: 'cert-manager.io' },
      },
    } as k8s.KubernetesObject);
    return this.caCertificate(namespace, name);
  }

  /**
   * A short-lived client certificate from the new CA, to show that workloads accept peers that
   * chain to the new root before any of their own certificates does.
   */
  async ensureProbe(issuer: ResolvedIssuer, rotationId: string, scheduleName: string): Promise<Pem | undefined> {
    const namespace = issuer.secretNamespace;
    const name = probeName(rotationId);
    const labels = { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_ROTATION_SCHEDULE]: scheduleName };
    await this.applier.apply({ apiVersion: 'cert-manager.io/v1', kind: 'Issuer', metadata: { name, namespace, labels }, spec: { ca: { secretName: newCaName(rotationId) } } } as k8s.KubernetesObject);
    await this.applier.apply({
      apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name, namespace, labels },
      spec: {
        commonName: 'lockstep-rotation-probe', secretName: name, duration: '1h', usages: ['digital signature', 'client auth'],
        secretTemplate: { labels },
        privateKey: { algorithm: 'ECDSA', size: 256 }, issuerRef: { name, kind: 'Issuer', group: 'cert-manager.io' },
      },
    } as k8s.KubernetesObject);
    const secret = await this.readSecret(namespace, name);
    const cert = secret?.data?.['tls.crt'];
    const key = secret?.data?.['tls.key'];
    if (!cert || !key) return undefined;
    return { cert: Buffer.from(cert, 'base64').toString('utf8'), key: Buffer.from(key, 'base64').toString('utf8') };
  }

  async deleteProbe(issuer: ResolvedIssuer, rotationId: string): Promise<void> {
    const namespace = issuer.secretNamespace;
    const name = probeName(rotationId);
    await this.applier.delete({ apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name, namespace } });
    await this.applier.delete({ apiVersion: 'cert-manager.io/v1', kind: 'Issuer', metadata: { name, namespace } });
    await this.applier.delete({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace } });
  }

  /** Whether the rotated issuer still exists (a deleted one ends the rotation, it is not waited for). */
  async issuerExists(issuer: ResolvedIssuer): Promise<boolean> {
    try {
      await this.readIssuer(issuer);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /**
   * After a failed rotation: the new CA's Certificate and Secret (its private key) are deleted, so
   * nothing can sign with it again. Its root stays wherever `withdraw` is false (leaves it issued
   * still chain to it); where true, the bundles of `namespaces` drop it.
   */
  async discardNewCa(issuer: ResolvedIssuer, rotationId: string, newRoot: string | undefined, withdraw: { namespaces: readonly string[] } | undefined): Promise<void> {
    const namespace = issuer.secretNamespace;
    const name = newCaName(rotationId);
    await this.deleteProbe(issuer, rotationId);
    await this.applier.delete({ apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name, namespace } });
    await this.applier.delete({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace } });
    if (withdraw && newRoot) {
      for (const ns of withdraw.namespaces) await this.setBundleChanges(ns, { retired: [fingerprint(newRoot)] });
    }
  }

  /** Points the issuer at `secretName` (a merge patch of spec.ca.secretName only). */
  async switchIssuer(issuer: ResolvedIssuer, secretName: string): Promise<void> {
    const current = await this.readIssuer(issuer);
    if (current.metadata?.labels?.[LABEL_KEY_POLICY] && current.metadata.annotations?.[ANNOTATION_ACTIVE_CA_SECRET] !== secretName) {
      // A KeyPolicy's managed CA: its reconciler owns spec.ca.secretName and follows this
      // annotation (written first, under a manager of its own, so its apply never removes it).
      await this.bundles.apply({
        apiVersion: 'cert-manager.io/v1', kind: issuer.kind,
        metadata: { name: issuer.name, ...(issuer.kind === 'Issuer' ? { namespace: issuer.secretNamespace } : {}), annotations: { [ANNOTATION_ACTIVE_CA_SECRET]: secretName } },
      } as k8s.KubernetesObject);
    }
    if (current.spec?.ca?.secretName === secretName) return;
    const body = { spec: { ca: { secretName } } };
    const options = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
    if (issuer.kind === 'ClusterIssuer') {
      await this.custom.patchClusterCustomObject({ ...CM, plural: 'clusterissuers', name: issuer.name, body }, options);
    } else {
      await this.custom.patchNamespacedCustomObject({ ...CM, plural: 'issuers', namespace: issuer.secretNamespace, name: issuer.name, body }, options);
    }
  }

  /**
   * Asks for `addedRoot` to be published and the `retired` fingerprints withdrawn, in one
   * namespace's bundle: recorded in the operator's namespace, never on the tenant-writable bundle.
   */
  async setBundleChanges(namespace: string, changes: { addedRoot?: string; retired?: string[] }): Promise<void> {
    const data: Record<string, string> = {};
    if (changes.addedRoot) data[TRUST_CHANGES_ADDED_KEY] = changes.addedRoot;
    if (changes.retired?.length) data[TRUST_CHANGES_RETIRED_KEY] = changes.retired.join(',');
    // Server-side apply under its own manager: keys not named here are removed.
    await this.bundles.apply({
      apiVersion: 'v1', kind: 'ConfigMap',
      metadata: {
        name: trustChangesName(namespace), namespace: this.operatorNamespace,
        labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_COMPONENT]: 'trust', [LABEL_BUNDLE_NAMESPACE]: namespace },
      },
      data,
    } as k8s.KubernetesObject);
  }

  private async readIssuer(issuer: ResolvedIssuer): Promise<IssuerObject> {
    return (issuer.kind === 'ClusterIssuer'
      ? await this.custom.getClusterCustomObject({ ...CM, plural: 'clusterissuers', name: issuer.name })
      : await this.custom.getNamespacedCustomObject({ ...CM, plural: 'issuers', namespace: issuer.secretNamespace, name: issuer.name })) as IssuerObject;
  }

  private async readSecret(namespace: string, name: string): Promise<V1Secret | undefined> {
    try {
      return await this.core.readNamespacedSecret({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}
