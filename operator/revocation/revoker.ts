// Serves lockstep.dev/revoke on EncryptedServices (state.ts decides, this file acts): records
// the request, lists the serial on the issuing CA's durable revocation list and signs a new CRL
// with the CA's key, publishes it in every trust bundle that trusts that CA (key ca.crl, under
// its own field manager, beside the roots the bundle's own writer keeps), asks cert-manager for
// a new key and certificate, and keeps the workload quarantined (quarantine-policy.ts) until the
// new certificate is issued and served. Every step is in status, Events and the audit trail;
// the CA key is read for signing only and never leaves this process.
import { X509Certificate } from 'node:crypto';
import type { CoreV1Api, V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import {
  ANNOTATION_REVOKE, ANNOTATION_REVOKE_REASON, API_VERSION, ENCRYPTED_SERVICE, EncryptedServiceConditions as C, GROUP, LABEL_COMPONENT,
  Reasons, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY, VERSION, type Reason, keyPolicyNamespaceOf, serviceNameOf, tlsSecretName,
  type Condition, type EncryptedService, type IssuerRef, type KeyPolicy, type RevocationStatus,
} from '../api/v1alpha1/index.js';
import type { AuditEvent } from '../audit/chain.js';
import type { Caches } from '../encryptedservice/reconciler.js';
import { resolveIssuer } from '../encryptedservice/policy.js';
import { rootFacts, splitPem } from '../encryptedservice/trust-bundle.js';
import type { Applier } from '../kube/apply.js';
import { setConditions } from '../kube/conditions.js';
import { isConflict, isNotFound } from '../runtime/api-error.js';
import type { EventRecorder } from '../runtime/events.js';
import { failpoint, Failpoints } from '../runtime/failpoints.js';
import type { Logger } from '../runtime/logger.js';
import type { Result } from '../runtime/workqueue.js';
import { issuedBy } from '../rotationschedule/ca-rotation.js';
import { isIssuing, isReady } from '../rotationschedule/leaf-certificates.js';
import { buildCrl, crlPem, normalSerial, type RevocationReason } from './crl.js';
import {
  COMPONENT_REVOCATION, CRL_VALIDITY_MS, LIST_CA_SECRET_KEY, LIST_CRL_KEY, buildRevocationList, crlsForBundle, readList,
  resignAt, revocationListName, unexpired, withEntry, type ListedCertificate,
} from './revocation-list.js';
import { nextRevocationStep, type RevocationStep } from './state.js';

export const REVOCATION_FIELD_MANAGER = 'lockstep-revocation';
/** The queue key of the CRL publisher (re-signing and bundle publication), beside the services' keys. */
export const PUBLISH_KEY = '@crl-publish';
/** Key of the published CRLs in each trust bundle ConfigMap. */
export const TRUST_BUNDLE_CRL_KEY = 'ca.crl';
export const DEFAULT_REISSUE_TIMEOUT_MS = 10 * 60_000;
const POLL_MS = 1_000;

export interface RevokerOptions {
  caches: Pick<Caches, 'encryptedServices' | 'keyPolicies' | 'certificates' | 'issuers' | 'clusterIssuers' | 'configMaps' | 'secrets'>;
  /** Direct reads of CA Secrets and the revocation lists (compare-and-swap writes of the lists). */
  core: Pick<CoreV1Api, 'readNamespacedSecret' | 'readNamespacedConfigMap' | 'createNamespacedConfigMap' | 'replaceNamespacedConfigMap'>;
  /** An Applier under REVOCATION_FIELD_MANAGER: status, bundles' ca.crl. */
  applier: Pick<Applier, 'apply' | 'applyStatus'>;
  /** cert-manager re-issuance (rotationschedule/leaf-certificates.ts LeafCertificates). */
  reissue: (namespace: string, certificate: string, previousSerial: string, message: string) => Promise<boolean>;
  audit: { record(policy: { namespace: string; name: string; uid: string }, events: readonly AuditEvent[], segmentSize: number): Promise<void> };
  events: EventRecorder;
  logger: Logger;
  operatorNamespace: string;
  clusterResourceNamespace: string;
  defaultIssuer?: IssuerRef;
  /** Which certificate the service's endpoints serve: 'none' when no endpoint answers. */
  served?: (es: EncryptedService, newSerial: string) => Promise<'new' | 'old' | 'none'>;
  /** A fresh read of a service (a status write that conflicted checks its revocation record against it). */
  read: (namespace: string, name: string) => Promise<EncryptedService | undefined>;
  reissueTimeoutMs?: number;
  /** nextUpdate - thisUpdate of the CRLs signed (CRL_VALIDITY_MS when unset). */
  crlValidityMs?: number;
  now?: () => Date;
}

interface CaMaterial {
  cert: string;
  key: string;
  anchors: string[];
  secret: string;
}

export class Revoker {
  private readonly o: RevokerOptions;
  private readonly log: Logger;
  private readonly now: () => Date;
  /** Per service uid: the record the last status write replaced, until the cache shows the write. */
  private readonly written = new Map<string, { basis: string; at: number }>();

  constructor(options: RevokerOptions) {
    this.o = options;
    this.log = options.logger.child('revocation');
    this.now = options.now ?? (() => new Date());
  }

  async reconcile(key: string): Promise<Result | void> {
    if (key === PUBLISH_KEY) return this.publish();
    const es = this.o.caches.encryptedServices.getByKey(key);
    if (!es || es.metadata.deletionTimestamp) return;
    // The cache has not caught up with this controller's last write yet: deciding from it would
    // take the same step (and record its audit entry) a second time.
    const record = JSON.stringify(es.status?.revocation ?? {});
    const pending = this.written.get(es.metadata.uid ?? '');
    if (pending !== undefined) {
      if (record === pending.basis && Date.now() - pending.at < 10_000) return { requeueAfter: 100 };
      this.written.delete(es.metadata.uid ?? '');
    }
    const namespace = es.metadata.namespace ?? '';
    const name = es.metadata.name ?? '';
    const secret = this.o.caches.secrets.get(namespace, tlsSecretName(name));
    const leaf = leafOf(secret);
    const certificate = this.o.caches.certificates.get(namespace, name);
    const previous = es.status?.revocation;
    const replaced = leaf && previous?.revokedSerial && normalSerial(leaf.serialNumber) !== normalSerial(previous.revokedSerial);
    const served = replaced && previous?.phase === 'Reissuing' && this.o.served
      ? await this.o.served(es, leaf.serialNumber)
      : undefined;
    const step = nextRevocationStep({
      request: es.metadata.annotations?.[ANNOTATION_REVOKE],
      reason: es.metadata.annotations?.[ANNOTATION_REVOKE_REASON],
      status: previous,
      currentSerial: leaf?.serialNumber,
      currentNamesService: leaf ? namesService(leaf, serviceNameOf(es), namespace) : false,
      issuing: isIssuing(certificate as Parameters<typeof isIssuing>[0]),
      ready: isReady(certificate as Parameters<typeof isReady>[0]),
      served,
      now: this.now(),
      reissueTimeoutMs: this.o.reissueTimeoutMs ?? DEFAULT_REISSUE_TIMEOUT_MS,
    });
    return this.act(es, step, leaf);
  }

  private async act(es: EncryptedService, step: RevocationStep, leaf: X509Certificate | undefined): Promise<Result | void> {
    const namespace = es.metadata.namespace ?? '';
    const name = es.metadata.name ?? '';
    switch (step.kind) {
      case 'idle':
        return;
      case 'wait':
        return { requeueAfter: POLL_MS };
      case 'record': {
        const quarantineChanged = (es.status?.revocation?.quarantined === true) !== (step.status.quarantined === true);
        await this.audit(es, [
          { type: 'revoke', subject: this.subject(es), details: { request: step.status.request ?? '', phase: step.status.phase ?? '', serial: step.status.revokedSerial ?? '', outcome: step.status.outcome ?? 'requested', ...(step.status.newSerial ? { newSerial: step.status.newSerial } : {}) }, time: this.now() },
          ...(quarantineChanged ? [{ type: 'quarantine' as const, subject: this.subject(es), details: { request: step.status.request ?? '', on: step.status.quarantined === true }, time: this.now() }] : []),
        ]);
        await this.writeStatus(es, step.status);
        this.event(es, step.event.type, step.event.reason, step.event.message);
        if (quarantineChanged) {
          this.event(es, 'Normal', step.status.quarantined ? 'QuarantineOn' : 'QuarantineOff', step.status.quarantined
            ? `workload isolated by NetworkPolicy ${name}-quarantine until it serves a new certificate`
            : `quarantine lifted: the workload serves certificate ${step.status.newSerial ?? ''}`);
        }
        return { requeueAfter: 0 };
      }
      case 'publish': {
        const listed = await this.listOnCrl(es, step.serial, step.reason, leaf, step.status);
        failpoint(Failpoints.AfterCrlListed);
        await this.writeStatus(es, { ...step.status, crlPublished: listed.published, message: listed.message });
        this.event(es, listed.published ? 'Normal' : 'Warning', listed.published ? 'CrlPublished' : 'CrlUnavailable', `revocation ${step.status.request}: ${listed.message}`);
        return { requeueAfter: 0 };
      }
      case 'reissue': {
        const asked = await this.o.reissue(namespace, name, step.serial, `emergency re-key: certificate ${step.serial} revoked (lockstep.dev/revoke=${step.status.request})`);
        if (asked) {
          await this.audit(es, [{ type: 'revoke', subject: this.subject(es), details: { request: step.status.request ?? '', phase: 'Reissuing', serial: step.serial, outcome: 're-key requested' }, time: this.now() }]);
          this.event(es, 'Normal', 'ReissueRequested', `revocation ${step.status.request}: new key and certificate requested from cert-manager (maintenance windows do not apply)`);
          failpoint(Failpoints.AfterReissueAsked);
        }
        await this.writeStatus(es, step.status);
        return { requeueAfter: POLL_MS };
      }
    }
  }

  /**
   * Lists `serial` on the CRL of the CA that issued it and republishes. The CA must be a
   * cert-manager CA issuer's Secret, and the certificate must chain to it: Lockstep signs CRLs
   * only for keys it can read and only for certificates that CA issued.
   */
  private async listOnCrl(es: EncryptedService, serial: string, reason: RevocationReason, leaf: X509Certificate | undefined, status: RevocationStatus): Promise<{ published: boolean; message: string }> {
    const ca = await this.caOf(es);
    if ('problem' in ca) return { published: false, message: `certificate ${serial} is not on any CRL: ${ca.problem}; peers refuse it only once it expires (re-keyed now)` };
    const leafPem = leaf && normalSerial(leaf.serialNumber) === normalSerial(serial) ? leaf.toString() : undefined;
    if (leafPem && !issuedBy(leafPem, ca.cert)) return { published: false, message: `certificate ${serial} was not issued by the issuer's current CA: no CRL of it can list it` };
    const caCert = new X509Certificate(ca.cert);
    const entry: ListedCertificate = {
      serial, reason, service: `${es.metadata.namespace}/${es.metadata.name}`, request: status.request ?? '',
      revokedAt: new Date(status.requestedAt ?? this.now().toISOString()),
      // Kept until the certificate would have expired; its own notAfter, else the CA's (an upper bound).
      notAfter: new Date(leafPem ? leaf!.validTo : caCert.validTo),
    };
    const added = await this.updateList(ca, (entries) => withEntry(entries, entry));
    if (added) {
      await this.audit(es, [{ type: 'revoke', subject: this.subject(es), details: { request: entry.request, phase: 'Revoking', serial, outcome: 'listed on CRL', ca: caCert.subject.replace(/\n/g, ', ') }, time: this.now() }]);
    }
    await this.publish();
    return { published: true, message: `certificate ${serial} (${reason}) listed on the CRL of CA "${caCert.subject.replace(/\n/g, ', ')}", published as ${TRUST_BUNDLE_CRL_KEY} in the trust bundles that trust it` };
  }

  /** The CA Secret of the service's issuer, when it is a CA issuer whose Secret holds a certificate and key. */
  private async caOf(es: EncryptedService): Promise<CaMaterial | { problem: string }> {
    const policy = this.o.caches.keyPolicies.get(keyPolicyNamespaceOf(es), es.spec.keyPolicyRef.name);
    if (!policy) return { problem: 'the service\'s KeyPolicy is not found' };
    const resolved = resolveIssuer(es, policy as KeyPolicy, this.o.defaultIssuer);
    if ('problem' in resolved) return { problem: resolved.problem.message };
    const issuer = resolved.issuer;
    const obj = issuer.kind === 'ClusterIssuer'
      ? this.o.caches.clusterIssuers.get(undefined, issuer.name)
      : this.o.caches.issuers.get(es.metadata.namespace, issuer.name);
    const secretName = (obj?.spec?.['ca'] as { secretName?: string } | undefined)?.secretName;
    if (!obj || !secretName) return { problem: `${issuer.kind} ${issuer.name} is not a cert-manager CA issuer, so Lockstep holds no CA key to sign a CRL with` };
    const secretNamespace = issuer.kind === 'ClusterIssuer' ? this.o.clusterResourceNamespace : es.metadata.namespace ?? '';
    return this.caSecret(secretNamespace, secretName);
  }

  private async caSecret(namespace: string, name: string): Promise<CaMaterial | { problem: string }> {
    let secret: V1Secret;
    try {
      secret = await this.o.core.readNamespacedSecret({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return { problem: `CA Secret ${namespace}/${name} is not found` };
      // Not retried for ever with the workload quarantined: the operator may not read that Secret
      // (RBAC); the request goes on without a CRL and says why.
      if ((err as { code?: number }).code === 403) return { problem: `the operator may not read CA Secret ${namespace}/${name}` };
      throw err;
    }
    const decode = (k: string) => (secret.data?.[k] ? Buffer.from(secret.data[k], 'base64').toString('utf8') : '');
    const cert = splitPem(decode('tls.crt'))[0];
    const key = decode('tls.key');
    if (!cert || !key) return { problem: `CA Secret ${namespace}/${name} holds no certificate and key` };
    const anchors = [cert, ...splitPem(decode('ca.crt'))].map((pem) => rootFacts(pem)?.fingerprint256).filter((f): f is string => Boolean(f));
    return { cert, key, anchors, secret: `${namespace}/${name}` };
  }

  /**
   * Read, change, sign, write the CA's list with its resourceVersion: two revocations on one CA
   * at once conflict and the second is retried from a fresh read, so neither serial is lost.
   */
  private async updateList(ca: CaMaterial, change: (entries: ListedCertificate[]) => { entries: ListedCertificate[]; added: boolean }): Promise<boolean> {
    const namespace = this.o.operatorNamespace;
    const name = revocationListName(rootFacts(ca.cert)?.fingerprint256 ?? '');
    let live: V1ConfigMap | undefined;
    try {
      live = await this.o.core.readNamespacedConfigMap({ namespace, name });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const state = readList(live);
    const now = this.now();
    const { entries, added } = change(unexpired(state.entries, now));
    const crlNumber = state.crlNumber + 1n;
    const nextUpdate = new Date(now.getTime() + (this.o.crlValidityMs ?? CRL_VALIDITY_MS));
    const pem = crlPem(buildCrl({ caCertPem: ca.cert, caKey: ca.key, revoked: entries, thisUpdate: now, nextUpdate, crlNumber }));
    const desired = buildRevocationList({ namespace, name, entries, crlNumber, crlPem: pem, anchors: ca.anchors, caSecret: ca.secret, thisUpdate: now, nextUpdate });
    try {
      if (live) {
        await this.o.core.replaceNamespacedConfigMap({ namespace, name, body: { ...desired, metadata: { ...desired.metadata, resourceVersion: live.metadata?.resourceVersion ?? '' } } });
      } else {
        await this.o.core.createNamespacedConfigMap({ namespace, body: desired });
      }
    } catch (err) {
      if (isConflict(err) || (err as { code?: number }).code === 409) throw new Error(`revocation list ${namespace}/${name} changed meanwhile; retried`);
      throw err;
    }
    this.log.info('CRL signed', { list: name, entries: entries.length, crlNumber: crlNumber.toString() });
    return added;
  }

  /**
   * Signs again every list whose CRL is half-way to its nextUpdate (or whose oldest entry
   * expired), then writes into every trust bundle the CRLs of the CAs it trusts.
   */
  async publish(): Promise<Result | void> {
    const namespace = this.o.operatorNamespace;
    const lists = () => this.o.caches.configMaps.list(namespace).filter((cm) => cm.metadata?.labels?.[LABEL_COMPONENT] === COMPONENT_REVOCATION);
    const now = this.now().getTime();
    let wake = Number.POSITIVE_INFINITY;
    const fresh = new Map<string, V1ConfigMap>();
    for (const cm of lists()) {
      const state = readList(cm);
      const due = resignAt(state);
      if (due > now) {
        wake = Math.min(wake, due);
        continue;
      }
      const [secretNamespace = '', secretName = ''] = (cm.data?.[LIST_CA_SECRET_KEY] ?? '').split('/');
      const ca = await this.caSecret(secretNamespace, secretName);
      if ('problem' in ca) {
        this.log.warn('a CRL cannot be signed again', { list: cm.metadata?.name, problem: ca.problem });
        continue;
      }
      await this.updateList(ca, (entries) => ({ entries, added: false }));
      const written = await this.o.core.readNamespacedConfigMap({ namespace, name: cm.metadata?.name ?? '' });
      fresh.set(cm.metadata?.name ?? '', written);
      wake = Math.min(wake, now + (this.o.crlValidityMs ?? CRL_VALIDITY_MS) / 2);
    }
    // Every list read directly (there is one per CA with revocations, a handful): one just
    // written, here or by a service's revocation, may not be in the cache yet.
    const all = new Map(lists().map((cm) => [cm.metadata?.name ?? '', cm] as const));
    for (const name of all.keys()) {
      if (fresh.has(name)) continue;
      try {
        fresh.set(name, await this.o.core.readNamespacedConfigMap({ namespace, name }));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    const current = [...fresh.values()].filter((cm) => cm.data?.[LIST_CRL_KEY]);
    for (const bundle of this.o.caches.configMaps.list().filter((cm) => cm.metadata?.name === TRUST_BUNDLE_CONFIGMAP)) {
      const fingerprints = new Set(splitPem(bundle.data?.[TRUST_BUNDLE_KEY]).map((pem) => rootFacts(pem)?.fingerprint256).filter((f): f is string => Boolean(f)));
      const crls = crlsForBundle(fingerprints, current);
      if ((bundle.data?.[TRUST_BUNDLE_CRL_KEY] ?? '') === crls) continue;
      // Only the ca.crl key, under this manager: the bundle's own writer keeps the roots.
      await this.o.applier.apply({
        apiVersion: 'v1', kind: 'ConfigMap',
        metadata: { name: TRUST_BUNDLE_CONFIGMAP, namespace: bundle.metadata?.namespace ?? '' },
        data: crls ? { [TRUST_BUNDLE_CRL_KEY]: crls } : {},
      } as V1ConfigMap);
    }
    return Number.isFinite(wake) ? { requeueAfter: Math.max(1_000, wake - now) } : undefined;
  }

  private async writeStatus(es: EncryptedService, revocation: RevocationStatus): Promise<void> {
    const before = es.status?.conditions?.find((c) => c.type === C.Quarantined);
    const quarantined = revocation.quarantined === true;
    const [condition] = setConditions(before ? [before] : [], [{
      type: C.Quarantined, status: quarantined ? 'True' : 'False',
      // A failed revocation names its outcome (ReissueTimedOut, NoCertificate…), a CamelCase reason too.
      reason: quarantined ? Reasons.RevocationInProgress : revocation.phase === 'Failed' ? (revocation.outcome ?? Reasons.RevocationFailed) as Reason : Reasons.NotQuarantined,
      message: quarantined
        ? `revocation ${revocation.request}: certificate ${revocation.revokedSerial} revoked; the workload is isolated until it serves a new certificate`
        : revocation.message ?? 'not quarantined',
    }], es.metadata.generation, this.now()) as [Condition];
    const ref = { group: GROUP, version: VERSION, plural: ENCRYPTED_SERVICE.plural, namespace: es.metadata.namespace ?? '', name: es.metadata.name ?? '', kind: ENCRYPTED_SERVICE.kind };
    // Compare-and-swap on the revocation record the decision was made from: the write carries the
    // resourceVersion it was read at. Other writers (the service's own reconciler, the verifier)
    // change other status fields all the time; such a conflict is retried at once when the record
    // itself is unchanged, so a step's side effects (audit entries) are not done a second time.
    let resourceVersion = es.metadata.resourceVersion;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.o.applier.applyStatus(ref, { conditions: [condition], revocation }, resourceVersion);
        this.written.set(es.metadata.uid ?? '', { basis: JSON.stringify(es.status?.revocation ?? {}), at: Date.now() });
        return;
      } catch (err) {
        if (!(isConflict(err) || (err as { code?: number }).code === 409) || attempt >= 4) throw err;
        const fresh = await this.o.read(ref.namespace, ref.name);
        if (!fresh || JSON.stringify(fresh.status?.revocation ?? {}) !== JSON.stringify(es.status?.revocation ?? {})) throw err;
        resourceVersion = fresh.metadata.resourceVersion;
      }
    }
  }

  private async audit(es: EncryptedService, events: AuditEvent[]): Promise<void> {
    const policy = this.o.caches.keyPolicies.get(keyPolicyNamespaceOf(es), es.spec.keyPolicyRef.name);
    if (!policy) return;
    await this.o.audit.record({ namespace: policy.metadata.namespace ?? '', name: policy.metadata.name ?? '', uid: policy.metadata.uid ?? '' }, events, policy.spec.audit?.segmentSize ?? 256);
  }

  private subject(es: EncryptedService) {
    return { kind: ENCRYPTED_SERVICE.kind, namespace: es.metadata.namespace ?? '', name: es.metadata.name ?? '' };
  }

  private event(es: EncryptedService, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.o.events.record({ ...es, apiVersion: API_VERSION, kind: ENCRYPTED_SERVICE.kind }, type, reason, message, 'Revoke');
  }
}

function leafOf(secret: V1Secret | undefined): X509Certificate | undefined {
  const pem = secret?.data?.['tls.crt'];
  if (!pem) return undefined;
  try {
    return new X509Certificate(Buffer.from(pem, 'base64'));
  } catch {
    return undefined;
  }
}

/** Whether the certificate names `<service>.<namespace>.svc`: only such a certificate is revoked at this service's request. */
export function namesService(cert: X509Certificate, service: string, namespace: string): boolean {
  return (cert.subjectAltName ?? '').split(', ').includes(`DNS:${service}.${namespace}.svc`);
}
