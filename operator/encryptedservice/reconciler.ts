// Converges one EncryptedService: reads everything from the informer caches, applies what the
// builders say should exist (skipping what already matches), removes what no longer should, and
// writes status only when it changed. Level-triggered: the key is all it is given.
import { X509Certificate } from 'node:crypto';
import type {
  KubernetesObject, V1ConfigMap, V1NetworkPolicy, V1PersistentVolumeClaim, V1Secret, V1StorageClass,
} from '@kubernetes/client-node';
import {
  API_VERSION, CRD_DEFAULTS, ENCRYPTED_SERVICE, EncryptedServiceConditions as C, FINALIZER, GROUP, LABEL_COMPONENT,
  LABEL_ENCRYPTED_SERVICE, LABEL_MANAGED_BY, MANAGED_BY_VALUE, Reasons, type Reason, serviceNameOf, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY, VERSION, tlsSecretName,
  volumeClaimName, withEncryptedServiceDefaults,
  type Condition, type EncryptedService, type EncryptedServiceStatus, type GeneratedObjectRef, type IssuerRef,
  type KeyPolicy, type VolumeStatus,
} from '../api/v1alpha1/index.js';
import { ANNOTATION_CERTIFICATE_NAME } from '../approver/decide.js';
import type { Applier } from '../kube/apply.js';
import { WriteRefusedError } from '../kube/refusal.js';
import { WrittenConditions, type ConditionInput } from '../kube/conditions.js';
import { setConditionsWithKstatus } from '../kube/kstatus.js';
import { isSubset } from '../kube/subset.js';
import type { DependencyCheck } from '../runtime/dependency.js';
import type { EventRecorder } from '../runtime/events.js';
import type { Informer } from '../runtime/informer.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import type { Result } from '../runtime/workqueue.js';
import { buildCertificate, spiffeId, type CertificateObject } from './certificate.js';
import { childLabels, ownerReference } from './children.js';
import { buildNetworkPolicies, resolvePeers, type ProbeSource } from './network-policy.js';
import { buildQuarantinePolicy, isQuarantined } from './quarantine-policy.js';
import { resolveIssuer, resolvePolicy, tlsWeakening, type Problem } from './policy.js';
import { dnsNamesDenied, issuerDenied, trustDomainDenied, workloadIdentityDenied, type PodIdentity } from './claims.js';
import {
  buildLuksKeySecret, buildStorageClass, buildVolumeClaim, classifyExistingClaim, generateLuksPassphrase, madeByLockstep,
  luksKeySecretName, volumeDeletedWithService,
} from './storage.js';
import {
  TRUST_CHANGES_ADDED_KEY, TRUST_CHANGES_RETIRED_KEY, buildTrustBundle, mergeRoots, trustChangesName, withoutRetired,
} from './trust-bundle.js';
import type { ServiceSecrets } from './secrets.js';
import { firstStatusDelay } from './first-status.js';
import { transitionEvents } from './transition-events.js';
import { issuerNotFound, nameTaken, portsNotExposed, unknownPeerPorts, workloadClaimedTwice, type ServicePorts } from './references.js';

/** A cert-manager object as far as the reconciler reads it. */
export type CertManagerObject = KubernetesObject & {
  spec?: Record<string, unknown>;
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[]; renewalTime?: string };
};

export interface Caches {
  encryptedServices: Informer<EncryptedService>;
  keyPolicies: Informer<KeyPolicy>;
  certificates: Informer<CertManagerObject>;
  issuers: Informer<CertManagerObject>;
  clusterIssuers: Informer<CertManagerObject>;
  networkPolicies: Informer<V1NetworkPolicy>;
  configMaps: Informer<V1ConfigMap>;
  secrets: Informer<V1Secret>;
  storageClasses: Informer<V1StorageClass>;
  claims: Informer<V1PersistentVolumeClaim>;
  /** Every Kubernetes Service, reduced to its ports (servicePortsOf). */
  services: Informer<KubernetesObject & ServicePorts>;
  /** Every pod, reduced to its labels, service account and phase (podIdentityOf). */
  pods: Informer<KubernetesObject & PodIdentity>;
}

/** Reads of objects the operator does not label (a user's own PVC, its StorageClass). */
export interface DirectReader {
  claim(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined>;
  storageClass(name: string): Promise<V1StorageClass | undefined>;
  /** Objects at names Lockstep derives, when its label-selected caches do not hold them (someone else's?). */
  secret(namespace: string, name: string): Promise<V1Secret | undefined>;
  configMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  /** `namespace/name` of every claim in the cluster on StorageClass `name`, the user's own included. */
  claimsOnClass(name: string): Promise<{ namespace: string; name: string; deleting: boolean }[]>;
}

/** Creates an object only when it does not exist; never replaces one (key material). */
export interface Creator {
  createIfMissing(obj: KubernetesObject): Promise<boolean>;
}

export interface EncryptedServiceReconcilerOptions {
  caches: Caches;
  applier: Applier;
  reader: DirectReader;
  creator: Creator;
  events: EventRecorder;
  metrics: OperatorMetrics;
  logger: Logger;
  defaultIssuer?: IssuerRef;
  /** Admitted on the TLS ports by every generated NetworkPolicy: the operator's own probes. */
  probeSource?: ProbeSource;
  /** Envelope and sealed secrets (secrets.ts). */
  secrets: ServiceSecrets;
  /** The operator's own namespace, where CA rotations record their bundle changes (trust-bundle.ts). */
  operatorNamespace?: string;
  /** Whether cert-manager is served: transit waits for it (with a condition that says so), the rest does not. */
  certManager?: DependencyCheck<typeof Reasons.CertManagerMissing>;
  /** Services waiting for a worker (the controller's queue): how far behind the operator is. */
  backlog?: () => number;
  now?: () => Date;
}

/**
 * How often a service with a refused child looks again. Nothing announces that a ResourceQuota was
 * raised or an admission policy changed, so a refusal is re-tried on a period instead of with a
 * backoff that reaches minutes: one write every 10 s per refused service.
 */
export const CHILD_REFUSED_RETRY_MS = 10_000;
/** Event reason: a generated NetworkPolicy held what another writer added, and was restored. */
export const NETWORK_POLICY_REVERTED = 'NetworkPolicyReverted';

/** A broken reference: reported in status, then retried with backoff (it may be fixed later). */
export class BrokenReferenceError extends Error {
  override readonly name = 'BrokenReferenceError';
  constructor(readonly reason: string, message: string) {
    super(message);
  }
}

interface Part {
  conditions: ConditionInput[];
  generated: GeneratedObjectRef[];
  problems: Problem[];
}

const cond = (type: string, ok: boolean, reason: Reason, message: string): ConditionInput => ({
  type, status: ok ? 'True' : 'False', reason, message,
});

const ref = (o: KubernetesObject): GeneratedObjectRef => ({
  apiVersion: o.apiVersion ?? '',
  kind: o.kind ?? '',
  ...(o.metadata?.namespace ? { namespace: o.metadata.namespace } : {}),
  name: o.metadata?.name ?? '',
});

export class EncryptedServiceReconciler {
  private readonly o: EncryptedServiceReconcilerOptions;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly written = new WrittenConditions();
  /** New services whose first status write waits for their certificate (first-status.ts). */
  private readonly waitingForFirstStatus = new Set<string>();

  constructor(options: EncryptedServiceReconcilerOptions) {
    this.o = options;
    this.log = options.logger.child('encryptedservice');
    this.now = options.now ?? (() => new Date());
  }

  async reconcile(key: string): Promise<Result | void> {
    const cached = this.o.caches.encryptedServices.getByKey(key);
    if (!cached) return;
    const es: EncryptedService = { ...cached, spec: withEncryptedServiceDefaults(cached.spec) };
    if (es.metadata.deletionTimestamp) return this.finalize(es);
    await this.ensureFinalizer(es);

    const resolved = resolvePolicy(es, (ns, name) => this.o.caches.keyPolicies.get(ns, name));
    if ('problem' in resolved) {
      await this.writeStatus(es, this.blocked(resolved.problem), [], {});
      throw new BrokenReferenceError(resolved.problem.reason, resolved.problem.message);
    }
    const policy = resolved.policy;

    // A refused write ends its own part only: the others still converge, and what the refused
    // part reported before (key ids, volumes, bundle) stays in status, since nothing of it was deleted.
    const previous = es.status ?? {};
    const transit = await this.unlessRefused(C.TransitReady, () => this.transit(es, policy), (part) => ({ part, certificate: previous.certificate ?? {}, refused: undefined }));
    const access = await this.unlessRefused(C.AccessReady, () => this.access(es), (part) => part);
    const trust = await this.unlessRefused(undefined, () => this.trust(es), (part) => ({ part, bundle: previous.trustBundle }));
    const atRest = await this.unlessRefused(C.AtRestReady, () => this.atRest(es), (part) => ({ part, volumes: previous.volumes ?? [] }));
    const secrets = await this.unlessRefused(C.SecretsReady, () => this.secrets(es, policy), (part) => ({ ...part, keyIds: previous.keyIds ?? [] }));

    const parts = [transit.part, access, trust.part, atRest.part, secrets];
    const problems = parts.flatMap((p) => p.problems);
    const weakened = tlsWeakening(es, policy);
    // Reported, not retried: nothing the operator writes depends on it, and the other service's
    // change reaches this one through the namespace's services.
    const misfit = workloadClaimedTwice(es, this.o.caches.encryptedServices.list(es.metadata.namespace), this.o.caches.pods.list(es.metadata.namespace))
      ?? portsNotExposed(es, this.o.caches.services.get(es.metadata.namespace, serviceNameOf(es)));
    const conditions = [
      ...parts.flatMap((p) => p.conditions),
      this.readyCondition(parts.flatMap((p) => p.conditions)),
      problems.length > 0
        ? cond(C.Degraded, true, problems[0]!.reason, problems.map((p) => p.message).join('; '))
        : misfit
          ? cond(C.Degraded, true, misfit.reason, misfit.message)
          : weakened
            ? cond(C.Degraded, true, Reasons.PolicyViolation, weakened)
            : cond(C.Degraded, false, Reasons.Reconciled, 'no problems found'),
    ];
    const uid = es.metadata.uid ?? '';
    const wait = firstStatusDelay({
      status: es.status, conditions, certificateCreatedAt: this.certificateCreatedAt(es, transit.certificate.name), now: this.now(),
      backlog: this.o.backlog?.() ?? 0, waiting: this.waitingForFirstStatus.has(uid),
    });
    this.waitingForFirstStatus.delete(uid);
    if (wait !== undefined) {
      this.waitingForFirstStatus.add(uid);
      // The Certificate's Ready event wakes the service before the grace is over, in the common case.
      return { requeueAfter: wait };
    }
    await this.writeStatus(es, conditions, parts.flatMap((p) => p.generated), {
      // A refused claim is not an identity the service has.
      ...(transit.refused ? {} : { spiffeID: spiffeId(es) }),
      certificate: transit.certificate,
      trustBundle: trust.bundle,
      volumes: atRest.volumes,
      keyIds: secrets.keyIds,
    });
    if (problems.some((p) => p.reason === Reasons.ChildRefused)) return { requeueAfter: CHILD_REFUSED_RETRY_MS, failing: Reasons.ChildRefused };
    if (problems.length > 0) throw new BrokenReferenceError(problems[0]!.reason, problems[0]!.message);
  }

  private certificateCreatedAt(es: EncryptedService, name: string | undefined): Date | undefined {
    const created = name ? this.o.caches.certificates.get(es.metadata.namespace, name)?.metadata?.creationTimestamp : undefined;
    return created ? new Date(created) : undefined;
  }

  /** Runs one part; when the API server refuses one of its writes, the part reports that instead. */
  private async unlessRefused<T>(type: string | undefined, run: () => Promise<T>, refused: (part: Part) => T): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (!(err instanceof WriteRefusedError)) throw err;
      const problem = { reason: Reasons.ChildRefused, message: `${err.message}; nothing was deleted, and the write is tried again every ${CHILD_REFUSED_RETRY_MS / 1000} s` };
      this.log.warn('a write was refused', { reason: err.statusReason, target: err.target });
      // Not thrown, so the controller does not count it: counted here, one per refused try.
      this.o.metrics.reconcileErrors.inc({ controller: 'encryptedservice', reason: Reasons.ChildRefused });
      return refused({ conditions: type ? [cond(type, false, problem.reason, problem.message)] : [], generated: [], problems: [problem] });
    }
  }

  // --- transit: the Certificate, and what the issued Secret says.

  private async transit(es: EncryptedService, policy: KeyPolicy) {
    const part: Part = { conditions: [], generated: [], problems: [] };
    const certificate: EncryptedServiceStatus['certificate'] = {};
    const issuerResolution = resolveIssuer(es, policy, this.o.defaultIssuer);
    if ('problem' in issuerResolution) {
      part.conditions.push(cond(C.TransitReady, false, issuerResolution.problem.reason, issuerResolution.problem.message));
      part.problems.push(issuerResolution.problem);
      return { part, certificate };
    }
    const missing = this.o.certManager?.problem();
    if (missing) {
      part.conditions.push(cond(C.TransitReady, false, missing.reason, missing.message));
      part.problems.push(missing);
      return { part, certificate };
    }
    const { issuer } = issuerResolution;
    const issuerObj = issuer.kind === 'ClusterIssuer'
      ? this.o.caches.clusterIssuers.get(undefined, issuer.name)
      : this.o.caches.issuers.get(es.metadata.namespace, issuer.name);
    if (!issuerObj) {
      const otherKind = issuer.kind === 'ClusterIssuer'
        ? this.o.caches.issuers.get(es.metadata.namespace, issuer.name)
        : this.o.caches.clusterIssuers.get(undefined, issuer.name);
      const problem = issuerNotFound(issuer, es.metadata.namespace ?? '', otherKind !== undefined);
      part.conditions.push(cond(C.TransitReady, false, problem.reason, problem.message));
      part.problems.push(problem);
      return { part, certificate };
    }

    const desired = buildCertificate(es, policy, issuer, ownerReference(es));
    const live = this.o.caches.certificates.get(es.metadata.namespace, desired.metadata.name);
    // A refused claim leaves an existing Certificate and its Secret exactly as they are: deleting
    // the Certificate would, with cert-manager's certificate-owner-ref option, delete the Secret
    // that running pods still serve.
    const refused = this.refusedClaim(es, policy, issuer, issuerObj) ?? (live ? undefined : await this.tlsSecretTaken(es, desired.metadata.name));
    if (refused) {
      part.conditions.push(cond(C.TransitReady, false, refused.reason, refused.message));
      part.problems.push(refused);
      if (!live) return { part, certificate, refused };
    } else {
      await this.o.applier.apply<CertificateObject>(desired, live);
    }
    part.generated.push(ref(desired));

    const name = desired.metadata.name;
    const secretName = tlsSecretName(es.metadata.name ?? '');
    certificate.name = name;
    certificate.secretName = secretName;
    const liveIssuer = live?.spec?.['issuerRef'] as IssuerRef | undefined;
    const shown = refused && liveIssuer ? liveIssuer : issuer;
    certificate.issuer = `${shown.kind ?? CRD_DEFAULTS.issuerKind}/${shown.name}`;
    const ready = live?.status?.conditions?.find((c) => c.type === 'Ready');
    if (live?.status?.renewalTime) certificate.renewalTime = live.status.renewalTime;

    const secret = this.o.caches.secrets.get(es.metadata.namespace, secretName);
    const pem = secret?.data?.['tls.crt'];
    if (pem) {
      try {
        const cert = new X509Certificate(Buffer.from(pem, 'base64'));
        certificate.serialNumber = cert.serialNumber;
        certificate.notBefore = new Date(cert.validFrom).toISOString().replace(/\.\d{3}Z$/, 'Z');
        certificate.notAfter = new Date(cert.validTo).toISOString().replace(/\.\d{3}Z$/, 'Z');
      } catch {
        part.problems.push({ reason: Reasons.CertificateFailed, message: `Secret ${secretName} holds no readable certificate` });
      }
    }
    // A refused claim already has its condition; the status still shows the certificate that stays.
    if (refused) return { part, certificate, refused };
    if (ready?.status === 'True' && certificate.serialNumber) {
      part.conditions.push(cond(C.TransitReady, true, Reasons.CertificateIssued, `certificate ${certificate.serialNumber} valid until ${certificate.notAfter}`));
    } else {
      const why = ready?.message ? `: ${ready.message}` : '';
      part.conditions.push(cond(C.TransitReady, false, Reasons.CertificatePending, `waiting for cert-manager to issue Certificate ${name}${why}`));
    }
    return { part, certificate };
  }

  /**
   * cert-manager writes into whatever Secret holds the Certificate's secretName: before the first
   * Certificate, a Secret there that was not issued for it is someone else's and stays theirs.
   */
  private async tlsSecretTaken(es: EncryptedService, certificate: string): Promise<Problem | undefined> {
    const namespace = es.metadata.namespace ?? '';
    const name = tlsSecretName(es.metadata.name ?? '');
    const secret = this.o.caches.secrets.get(namespace, name) ?? (await this.o.reader.secret(namespace, name));
    if (!secret || secret.metadata?.annotations?.[ANNOTATION_CERTIFICATE_NAME] === certificate) return undefined;
    return nameTaken('Secret', name, `it was not issued for Certificate ${certificate}, and cert-manager would overwrite it; no Certificate is created`);
  }

  /** Why the certificate may not claim what the spec asks (claims.ts), or undefined. */
  private refusedClaim(es: EncryptedService, policy: KeyPolicy, issuer: Required<IssuerRef>, issuerObj: KubernetesObject): Problem | undefined {
    return issuerDenied(es, policy, issuer, {
      ...(issuer.kind === 'ClusterIssuer' ? { clusterIssuer: issuerObj } : {}),
      ...(this.o.defaultIssuer ? { operatorDefault: this.o.defaultIssuer } : {}),
    })
      ?? trustDomainDenied(es, policy)
      ?? dnsNamesDenied(es, policy)
      ?? workloadIdentityDenied(es, policy, this.o.caches.pods.list(es.metadata.namespace));
  }

  // --- access: NetworkPolicies for the declared peers.

  private async access(es: EncryptedService): Promise<Part> {
    const part: Part = { conditions: [], generated: [], problems: [] };
    const { peers, missing, unknownPorts } = resolvePeers(es, (ns, name) => this.o.caches.encryptedServices.get(ns, name));
    const quarantined = isQuarantined(es);
    const desired = quarantined
      ? [buildQuarantinePolicy(es, ownerReference(es), this.o.probeSource)]
      : buildNetworkPolicies(es, peers, ownerReference(es), this.o.probeSource);
    for (const np of desired) {
      // Exactly as declared: a rule or a selector label someone else adds would open the pods.
      const { reverted } = await this.o.applier.apply(np, this.o.caches.networkPolicies.get(np.metadata?.namespace, np.metadata?.name ?? ''), { exactSpec: true });
      if (reverted) {
        this.o.events.record({ ...es, apiVersion: API_VERSION, kind: ENCRYPTED_SERVICE.kind }, 'Warning', NETWORK_POLICY_REVERTED,
          `NetworkPolicy ${np.metadata?.name} held rules or selectors the operator did not write; restored to what spec.access declares`, 'Revert');
      }
      part.generated.push(ref(np));
    }
    await this.deleteStale(this.o.caches.networkPolicies, es, 'access', desired);
    const names = missing.map((m) => `${m.namespace}/${m.name}`).join(', ');
    const problem = missing.length > 0
      ? { reason: Reasons.PeerNotFound, message: `peer EncryptedService ${names} not found; its traffic stays denied until it exists` }
      : unknownPeerPorts(unknownPorts);
    if (quarantined) {
      const revocation = es.status?.revocation;
      part.conditions.push(cond(C.AccessReady, false, Reasons.Quarantined,
        `quarantined by revocation ${revocation?.request ?? ''} of certificate ${revocation?.revokedSerial ?? ''}: only the operator's probes reach the workload until it serves its new certificate`));
    } else if (problem) {
      part.problems.push(problem);
      part.conditions.push(cond(C.AccessReady, false, problem.reason, problem.message));
    } else {
      part.conditions.push(cond(C.AccessReady, true, Reasons.NetworkPoliciesApplied, `${desired.length} NetworkPolicies admit ${peers.length} declared peers on the TLS ports`));
    }
    return part;
  }

  private async deleteStale<T extends KubernetesObject>(cache: Informer<T>, es: EncryptedService, component: string, desired: KubernetesObject[]) {
    const keep = new Set(desired.map((d) => d.metadata?.name));
    for (const live of cache.list(es.metadata.namespace)) {
      const labels = live.metadata?.labels ?? {};
      if (labels[LABEL_ENCRYPTED_SERVICE] !== es.metadata.name || labels[LABEL_COMPONENT] !== component) continue;
      if (keep.has(live.metadata?.name)) continue;
      await this.o.applier.delete({ apiVersion: live.apiVersion ?? '', kind: live.kind ?? '', metadata: { name: live.metadata?.name ?? '', namespace: es.metadata.namespace ?? '' } });
    }
  }

  // --- trust: the namespace's bundle of CA roots, from every service's issued chain.

  private async trust(es: EncryptedService) {
    const part: Part = { conditions: [], generated: [], problems: [] };
    const namespace = es.metadata.namespace ?? '';
    const services = this.o.caches.encryptedServices.list(namespace).filter((s) => !s.metadata.deletionTimestamp);
    const caBundles = services.map((s) => this.o.caches.secrets.get(namespace, tlsSecretName(s.metadata.name ?? ''))?.data?.['ca.crt'])
      .map((b) => (b ? Buffer.from(b, 'base64').toString('utf8') : undefined));
    const live = this.o.caches.configMaps.get(namespace, TRUST_BUNDLE_CONFIGMAP);
    // Roots already published stay until a CA rotation removes them explicitly: a root must
    // never disappear while a served certificate may still chain to it.
    // A CA rotation adds a root before leaves chain to it, and withdraws the old one explicitly,
    // through a record in the operator's namespace: nothing a tenant writes on the bundle adds a root.
    const rotation = (this.o.operatorNamespace ? this.o.caches.configMaps.get(this.o.operatorNamespace, trustChangesName(namespace))?.data : undefined) ?? {};
    const roots = withoutRetired(mergeRoots(live?.data?.[TRUST_BUNDLE_KEY], rotation[TRUST_CHANGES_ADDED_KEY], ...caBundles), rotation[TRUST_CHANGES_RETIRED_KEY]);
    const bundle = { configMapName: TRUST_BUNDLE_CONFIGMAP, roots: roots.length };
    if (roots.length === 0) return { part, bundle };
    // The cache holds only what carries Lockstep's label; a bundle just written may not be in it yet.
    const unseen = live ? undefined : await this.o.reader.configMap(namespace, TRUST_BUNDLE_CONFIGMAP);
    if (unseen && unseen.metadata?.labels?.[LABEL_MANAGED_BY] !== MANAGED_BY_VALUE) {
      part.problems.push(nameTaken('ConfigMap', TRUST_BUNDLE_CONFIGMAP, `the namespace's CA roots are not published into it`));
      return { part, bundle: { ...bundle, roots: 0 } };
    }
    const desired = buildTrustBundle(namespace, services.map(ownerReference), roots);
    await this.o.applier.apply(desired, live);
    part.generated.push(ref(desired));
    return { part, bundle };
  }

  // --- at rest: versioned encrypted StorageClasses, LUKS keys, and the PVCs.

  private async atRest(es: EncryptedService) {
    const part: Part = { conditions: [], generated: [], problems: [] };
    const volumes: VolumeStatus[] = [];
    const declared = es.spec.atRest?.volumes ?? [];
    if (declared.length === 0) {
      part.conditions.push(cond(C.AtRestReady, true, Reasons.NotConfigured, 'no volumes declared'));
      return { part, volumes };
    }
    const namespace = es.metadata.namespace ?? '';
    const unencrypted: string[] = [];
    for (const volume of declared) {
      const sc = buildStorageClass(es, volume);
      const scName = sc.metadata?.name ?? '';
      const claimName = volumeClaimName(es.metadata.name ?? '', volume.name);
      const liveClass = this.o.caches.storageClasses.get(undefined, scName) ?? (await this.o.reader.storageClass(scName));
      if (liveClass && !madeByLockstep(liveClass)) {
        const message = `StorageClass ${scName} exists and was not made by Lockstep: it is neither taken over nor used; no claim is created for volume ${volume.name}. An administrator must remove or rename it`;
        part.problems.push({ reason: Reasons.NameTaken, message });
        unencrypted.push(message);
        volumes.push({ name: volume.name, claimName, encrypted: false, message });
        continue;
      }
      await this.o.applier.apply(sc, liveClass);
      part.generated.push(ref(sc));

      const existing = this.o.caches.claims.get(namespace, claimName) ?? (await this.o.reader.claim(namespace, claimName));
      if (!existing) {
        if (volume.provider === 'longhorn') {
          const keyName = luksKeySecretName(es.metadata.name ?? '', volume.name);
          const liveKey = this.o.caches.secrets.get(namespace, keyName) ?? (await this.o.reader.secret(namespace, keyName));
          if (liveKey && !isOurs(liveKey, es)) {
            // Its passphrase is known to whoever made it: a volume is never encrypted with it.
            const { message } = nameTaken('Secret', keyName, `it is not used as the LUKS key of volume ${volume.name}, and no claim is created`);
            part.problems.push({ reason: Reasons.NameTaken, message });
            unencrypted.push(message);
            volumes.push({ name: volume.name, claimName, encrypted: false, message });
            continue;
          }
          // Created once, before its volume, and never re-applied: a replaced passphrase makes the volume unreadable.
          const keySecret = buildLuksKeySecret(es, volume, generateLuksPassphrase(), ownerReference(es));
          if (!liveKey) await this.o.creator.createIfMissing(keySecret);
          part.generated.push(ref(keySecret));
        }
        const claim = buildVolumeClaim(es, volume, scName, ownerReference(es));
        await this.o.applier.apply(claim);
        part.generated.push(ref(claim));
        volumes.push({ name: volume.name, claimName, storageClassName: scName, encrypted: true, message: `created on encrypted StorageClass ${scName}` });
        continue;
      }
      // An existing claim is never modified (its class is immutable and it holds data): it is
      // classified and reported.
      const className = existing.spec?.storageClassName;
      const existingClass = className
        ? (this.o.caches.storageClasses.get(undefined, className) ?? (await this.o.reader.storageClass(className)))
        : undefined;
      const verdict = classifyExistingClaim(existing, existingClass, scName);
      volumes.push({ name: volume.name, claimName, ...(className ? { storageClassName: className } : {}), encrypted: verdict.state !== 'unencrypted', message: verdict.message });
      if (verdict.state === 'unencrypted') unencrypted.push(verdict.message);
      if (isOurs(existing, es)) {
        part.generated.push(ref({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: claimName, namespace } }));
        if (volume.provider === 'longhorn') {
          const keyName = luksKeySecretName(es.metadata.name ?? '', volume.name);
          part.generated.push(ref({ apiVersion: 'v1', kind: 'Secret', metadata: { name: keyName, namespace } }));
          if (!this.o.caches.secrets.get(namespace, keyName)) {
            part.problems.push({ reason: 'VolumeKeyMissing', message: `LUKS key Secret ${keyName} of volume ${claimName} is missing; the operator never generates a replacement key for an existing volume: restore the Secret from backup` });
          }
        }
      }
    }
    if (unencrypted.length > 0) {
      part.conditions.push(cond(C.AtRestReady, false, Reasons.UnencryptedVolume, unencrypted.join('; ')));
    } else {
      part.conditions.push(cond(C.AtRestReady, true, Reasons.VolumesEncrypted, `${declared.length} volumes on encrypted StorageClasses`));
    }
    return { part, volumes };
  }

  // --- secrets: envelope-encrypted and sealed secrets (secrets.ts).

  private async secrets(es: EncryptedService, policy: KeyPolicy): Promise<Part & { keyIds: string[] }> {
    return this.o.secrets.reconcile(es, policy);
  }

  // --- status

  private readyCondition(parts: ConditionInput[]): ConditionInput {
    const notReady = parts.filter((c) => c.status !== 'True');
    if (notReady.length === 0) return cond(C.Ready, true, Reasons.Reconciled, 'encrypted in transit and at rest; access restricted to declared peers');
    return cond(C.Ready, false, notReady[0]!.reason, notReady.map((c) => `${c.type}: ${c.message}`).join('; '));
  }

  private blocked(problem: Problem): ConditionInput[] {
    return [
      cond(C.Ready, false, problem.reason, problem.message),
      cond(C.Degraded, true, problem.reason, problem.message),
    ];
  }

  private async writeStatus(
    es: EncryptedService,
    conditions: ConditionInput[],
    generated: GeneratedObjectRef[],
    fields: Partial<EncryptedServiceStatus>,
  ): Promise<void> {
    const previous = ownStatus(es.status ?? {});
    const next: EncryptedServiceStatus = {
      ...stripUndefined(fields),
      observedGeneration: es.metadata.generation ?? 0,
      conditions: setConditionsWithKstatus(previous.conditions, conditions, es.metadata.generation, this.now()),
      generatedObjects: generated,
    };
    if (!statusChanged(previous, next)) return;
    await this.o.applier.applyStatus({ ...this.resourceRef(es), kind: ENCRYPTED_SERVICE.kind }, next);
    if (this.written.alreadyWritten(es.metadata.uid, next.conditions ?? [])) return;
    this.recordTransitions(es, previous.conditions, next.conditions ?? []);
  }

  private recordTransitions(es: EncryptedService, before: Condition[] | undefined, after: Condition[]): void {
    for (const e of transitionEvents(before, after)) {
      this.o.events.record({ ...es, apiVersion: API_VERSION, kind: ENCRYPTED_SERVICE.kind }, e.type, e.reason, e.message);
    }
  }

  private resourceRef(es: EncryptedService) {
    return { group: GROUP, version: VERSION, plural: ENCRYPTED_SERVICE.plural, namespace: es.metadata.namespace ?? '', name: es.metadata.name ?? '' };
  }

  // --- deletion

  private async ensureFinalizer(es: EncryptedService): Promise<void> {
    if (es.metadata.finalizers?.includes(FINALIZER)) return;
    await this.o.applier.apply({
      apiVersion: API_VERSION, kind: ENCRYPTED_SERVICE.kind,
      metadata: { name: es.metadata.name ?? '', namespace: es.metadata.namespace ?? '', finalizers: [FINALIZER] },
    });
  }

  /**
   * Removes what owner references cannot reach: StorageClasses nobody else uses, the TLS Secret
   * cert-manager leaves behind, and volumes (with their keys) that the spec says go with the
   * service. The Certificate goes first and must be gone before its Secret is deleted, or
   * cert-manager would issue the Secret again.
   */
  private async finalize(es: EncryptedService): Promise<Result | void> {
    if (!es.metadata.finalizers?.includes(FINALIZER)) return;
    const namespace = es.metadata.namespace ?? '';
    const name = es.metadata.name ?? '';
    const certificate = this.o.caches.certificates.get(namespace, name);
    if (certificate && isOurs(certificate, es)) {
      await this.o.applier.delete({ apiVersion: certificate.apiVersion ?? '', kind: 'Certificate', metadata: { name, namespace } });
      return { requeueAfter: 1_000 };
    }
    const tls = this.o.caches.secrets.get(namespace, tlsSecretName(name));
    if (tls && isOurs(tls, es)) await this.o.applier.delete({ apiVersion: 'v1', kind: 'Secret', metadata: { name: tls.metadata?.name ?? '', namespace } });

    const others = this.o.caches.encryptedServices.list().filter((s) => s.metadata.uid !== es.metadata.uid && !s.metadata.deletionTimestamp);
    const inUse = new Set(others.flatMap((s) => (withEncryptedServiceDefaults(s.spec).atRest?.volumes ?? []).map((v) => buildStorageClass(s, v).metadata?.name)));
    const goingClaims = new Set<string>();
    for (const volume of es.spec.atRest?.volumes ?? []) {
      // Owner references already take claims and keys that go with the service; the explicit
      // deletes cover objects created before the volume's retain setting changed.
      if (!volumeDeletedWithService(es, volume)) continue;
      const claimName = volumeClaimName(name, volume.name);
      const claim = this.o.caches.claims.get(namespace, claimName);
      if (claim && isOurs(claim, es)) {
        await this.o.applier.delete({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: claimName, namespace } });
        goingClaims.add(`${namespace}/${claimName}`);
      }
      const keyName = luksKeySecretName(name, volume.name);
      const key = this.o.caches.secrets.get(namespace, keyName);
      if (key && isOurs(key, es)) await this.o.applier.delete({ apiVersion: 'v1', kind: 'Secret', metadata: { name: keyName, namespace } });
    }
    for (const scName of new Set((es.spec.atRest?.volumes ?? []).map((v) => buildStorageClass(es, v).metadata?.name ?? ''))) {
      if (inUse.has(scName)) continue;
      const live = this.o.caches.storageClasses.get(undefined, scName) ?? (await this.o.reader.storageClass(scName));
      if (!live || !madeByLockstep(live)) continue;
      // A claim anywhere (a retained volume, a tenant's own claim naming the class) keeps it.
      const users = (await this.o.reader.claimsOnClass(scName)).filter((c) => !c.deleting && !goingClaims.has(`${c.namespace}/${c.name}`));
      if (users.length > 0) {
        this.log.info('keeping a StorageClass claims are still on', { storageClass: scName, claims: users.length });
        continue;
      }
      await this.o.applier.delete({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: scName } });
    }
    await this.o.applier.removeFinalizer(this.resourceRef(es), es.metadata.finalizers ?? [], FINALIZER);
    this.written.forget(es.metadata.uid);
    this.waitingForFirstStatus.delete(es.metadata.uid ?? '');
    this.log.info('finalized', { namespace, name });
  }
}

function isOurs(obj: KubernetesObject, es: EncryptedService): boolean {
  return obj.metadata?.labels?.[LABEL_ENCRYPTED_SERVICE] === es.metadata.name;
}

function stripUndefined<T extends object>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}

/**
 * The part of status this reconciler writes. Continuous verification writes Verified and
 * status.verification, revocation Quarantined and status.revocation, under their own field managers: applying a copy of them here would make this
 * manager co-own them and force a cached, older value over the verifier's.
 */
export function ownStatus(status: EncryptedServiceStatus): EncryptedServiceStatus {
  const { verification: _verification, revocation: _revocation, ...rest } = status;
  return { ...rest, ...(status.conditions ? { conditions: status.conditions.filter((c) => c.type !== C.Verified && c.type !== C.Quarantined) } : {}) };
}

/** Whether writing `next` would change anything a user can see (conditions compared without the
 * timestamps that setConditions keeps stable anyway). */
export function statusChanged(previous: EncryptedServiceStatus, next: EncryptedServiceStatus): boolean {
  return !(isSubset(next, previous) && isSubset(previous.conditions ?? [], next.conditions ?? []));
}

