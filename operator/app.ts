// Assembles the operator from its parts: one KubeConfig in, a running Manager out. main.ts
// calls it with settings from the environment; the e2e suite calls it in-process.
import * as k8s from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { ENCRYPTED_SERVICE, GROUP, KEY_POLICY, Reasons, VERSION, type EncryptedService, type KeyPolicy } from './api/v1alpha1/index.js';
import { OPERATOR_VERSION, SERVICE_WORKERS_DEFAULT, type OperatorConfig } from './config.js';
import { MANAGED_SELECTOR } from './encryptedservice/children.js';
import { encryptedServiceController } from './encryptedservice/controller.js';
import { EncryptedServiceReconciler, type Caches, type Creator, type DirectReader } from './encryptedservice/reconciler.js';
import { podIdentityOf } from './encryptedservice/claims.js';
import { servicePortsOf } from './encryptedservice/references.js';
import { Applier } from './kube/apply.js';
import { refusable } from './kube/refusal.js';
import { DekCache } from './crypto/dek-cache.js';
import { ServiceSecrets } from './encryptedservice/secrets.js';
import { AUDIT_FIELD_MANAGER, AuditTrail } from './keypolicy/audit-trail.js';
import { buildRevocationController } from './revocation/controller.js';
import { keyPolicyController } from './keypolicy/controller.js';
import { HsmSessions } from './keypolicy/hsm-sessions.js';
import { KeyRing } from './keypolicy/key-ring.js';
import { KeyPolicyReconciler } from './keypolicy/reconciler.js';
import { isAlreadyExists, isNotFound } from './runtime/api-error.js';
import { ApiDependency } from './runtime/dependency.js';
import { kubeEventSink } from './runtime/event-sink.js';
import { KubeEventRecorder } from './runtime/events.js';
import { Informer, collectionPath, type ResourceRef } from './runtime/informer.js';
import { kubeTransport } from './runtime/kube-transport.js';
import { apiClientConfig, readyzProbe } from './runtime/api-client.js';
import { kubeLeaseStore } from './runtime/lease-store.js';
import { leaderGuardedKubeConfig } from './runtime/leader-guard.js';
import type { Logger } from './runtime/logger.js';
import { Manager } from './runtime/manager.js';
import { Reachability } from './runtime/reachability.js';
import { buildRotationScheduleController } from './rotationschedule/assemble.js';
import { createMetrics, kubeClientObserver, type OperatorMetrics } from './runtime/metrics.js';
import { caState, resourceState } from './kube/resource-state.js';
import { lockstepVersion } from './version.js';
import { buildVerificationController } from './verification/controller.js';
import { buildApproverController } from './approver/controller.js';

const CERT_MANAGER = { group: 'cert-manager.io', version: 'v1' } as const;

export interface Operator {
  manager: Manager;
  metrics: OperatorMetrics;
  events: KubeEventRecorder;
}

/** What the API server's audit log shows for this replica's requests. */
export function userAgent(identity: string): string {
  return `lockstep-operator/${OPERATOR_VERSION} (${identity})`;
}

export function buildOperator(cluster: k8s.KubeConfig, config: OperatorConfig, logger: Logger): Operator {
  const metrics = createMetrics({ version: lockstepVersion() });
  let manager: Manager | undefined;
  const agent = userAgent(config.identity);
  // Every client tells it whether the API server answered; its probe has a connection of its own.
  const reachability = new Reachability({
    probe: readyzProbe(apiClientConfig(cluster, { userAgent: agent })), logger, report: (v) => metrics.apiserverReachable.set(v),
  });
  // One connection pool per client; each reports its 429s and waits under its name.
  const client = (name: string, limited: boolean) => apiClientConfig(cluster, {
    userAgent: agent, observer: kubeClientObserver(metrics, name), reachability, ...(limited && config.kubeRateLimit ? { rateLimit: config.kubeRateLimit } : {}),
    ...(config.kubeRequestTimeoutMs ? { requestTimeoutMs: config.kubeRequestTimeoutMs } : {}),
  });
  // Reads, lists and writes share one connection pool and one rate limit.
  const kc = client('main', true);
  // Every write goes through a KubeConfig that refuses to mutate unless this replica leads.
  const writer = leaderGuardedKubeConfig(kc, () => manager?.isLeader() ?? false);
  const transport = kubeTransport(kc);
  // cert-manager may be installed after the operator (or not yet): its kinds' informers treat
  // "not served" as empty and look again, so everything that does not need it starts.
  const informer = <T extends KubernetesObject>(name: string, ref: ResourceRef, transform?: (obj: KubernetesObject) => T, labelSelector?: string) =>
    new Informer<T>({
      name, path: collectionPath(ref), transport, logger, ...(labelSelector ? { labelSelector } : {}), ...(transform ? { transform } : {}),
      ...(ref.group === CERT_MANAGER.group ? { optionalApi: true } : {}),
    });

  const caches: Caches = {
    encryptedServices: informer<EncryptedService>('encryptedservices', { group: GROUP, version: VERSION, plural: ENCRYPTED_SERVICE.plural }),
    keyPolicies: informer<KeyPolicy>('keypolicies', { group: GROUP, version: VERSION, plural: KEY_POLICY.plural }),
    // Only what the operator generated is cached: memory does not grow with unrelated objects.
    certificates: informer('certificates', { ...CERT_MANAGER, plural: 'certificates' }, undefined, MANAGED_SELECTOR),
    issuers: informer('issuers', { ...CERT_MANAGER, plural: 'issuers' }),
    clusterIssuers: informer('clusterissuers', { ...CERT_MANAGER, plural: 'clusterissuers' }),
    networkPolicies: informer('networkpolicies', { group: 'networking.k8s.io', version: 'v1', plural: 'networkpolicies' }, undefined, MANAGED_SELECTOR),
    configMaps: informer('configmaps', { group: '', version: 'v1', plural: 'configmaps' }, undefined, MANAGED_SELECTOR),
    secrets: informer('secrets', { group: '', version: 'v1', plural: 'secrets' }, undefined, MANAGED_SELECTOR),
    storageClasses: informer('storageclasses', { group: 'storage.k8s.io', version: 'v1', plural: 'storageclasses' }, undefined, MANAGED_SELECTOR),
    claims: informer('persistentvolumeclaims', { group: '', version: 'v1', plural: 'persistentvolumeclaims' }, undefined, MANAGED_SELECTOR),
    // Not the operator's: every pod, to check that a service's pods run as the account its
    // certificate names. Reduced to labels, service account and phase, so the cache stays small.
    // Not the operator's: every Service, reduced to its ports, to report a TLS port no Service routes to.
    services: new Informer({ name: 'services', path: collectionPath({ group: '', version: 'v1', plural: 'services' }), transport, logger, transform: servicePortsOf }),
    pods: new Informer({ name: 'pods', path: collectionPath({ group: '', version: 'v1', plural: 'pods' }), transport, logger, transform: podIdentityOf }),
  };

  const certManager = new ApiDependency({
    name: 'cert-manager', reason: Reasons.CertManagerMissing, fix: 'install cert-manager v1.x', groupVersion: `${CERT_MANAGER.group}/${CERT_MANAGER.version}`,
    kinds: { Certificate: caches.certificates, Issuer: caches.issuers, ClusterIssuer: caches.clusterIssuers }, metrics,
  });

  const core = kc.makeApiClient(k8s.CoreV1Api);
  const storage = kc.makeApiClient(k8s.StorageV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const orUndefined = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await read();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  const reader: DirectReader = {
    claim: (namespace, name) => orUndefined(() => core.readNamespacedPersistentVolumeClaim({ namespace, name })),
    storageClass: (name) => orUndefined(() => storage.readStorageClass({ name })),
    secret: (namespace, name) => orUndefined(() => core.readNamespacedSecret({ namespace, name })),
    // Listed, not fetched: the operator's role lists ConfigMaps in tenant namespaces but never gets one (rbac.ts).
    configMap: async (namespace, name) => (await core.listNamespacedConfigMap({ namespace, fieldSelector: `metadata.name=${name}` })).items[0],
    async claimsOnClass(name) {
      const claims = (await core.listPersistentVolumeClaimForAllNamespaces()).items;
      return claims
        .filter((c) => (c.spec?.storageClassName || c.metadata?.annotations?.['volume.beta.kubernetes.io/storage-class']) === name)
        .map((c) => ({ namespace: c.metadata?.namespace ?? '', name: c.metadata?.name ?? '', deleting: Boolean(c.metadata?.deletionTimestamp) }));
    },
  };
  const objects = k8s.KubernetesObjectApi.makeApiClient(writer);
  const creator: Creator = {
    async createIfMissing(obj) {
      try {
        await refusable(obj, () => objects.create(obj));
        return true;
      } catch (err) {
        if (isAlreadyExists(err)) return false;
        throw err;
      }
    },
  };
  // Events get a rate limit of their own, as client-go's event broadcaster has (its own client):
  // a burst of Events never delays the writes that converge services, nor the other way round.
  const eventClient = client('events', true);
  const events = new KubeEventRecorder({
    sink: kubeEventSink(leaderGuardedKubeConfig(eventClient, () => manager?.isLeader() ?? false).makeApiClient(k8s.EventsV1Api)),
    logger,
    reportingInstance: config.identity,
    reportingController: 'lockstep.dev/operator',
  });
  // Keys and secrets: the key Secret and application Secrets are read directly (the cache holds
  // only what the operator labels), unwrapped data keys live only in the bounded DEK cache.
  const writerCore = writer.makeApiClient(k8s.CoreV1Api);
  const applier = new Applier(writer);
  // keyStore PKCS11 policies: HSM sessions from config Secrets in the operator's namespace.
  const keyRing = new KeyRing(new HsmSessions({ core: writerCore, operatorNamespace: config.namespace }));
  // The trail, its head and its signing key live in the operator's own namespace (tenants cannot write there).
  const audit = new AuditTrail({
    core: writerCore, statusApplier: new Applier(writer, AUDIT_FIELD_MANAGER), logger, metrics, operatorNamespace: config.namespace,
    ...(config.auditRateLimit ? { rateLimit: config.auditRateLimit } : {}),
    ...(config.auditRetention ? { maxSegments: config.auditRetention.liveSegments, archiveSegments: config.auditRetention.archiveSegments } : {}),
  });
  const dekCache = new DekCache({ maxEntries: 1024, ttlMs: 15 * 60_000 });
  // Expiry is lazy; the sweep bounds how long an unwrapped key outlives its TTL in an idle process.
  const dekSweeper = setInterval(() => dekCache.sweep(), 60_000);
  dekSweeper.unref();
  const dropDataKeys = { flush: async () => { clearInterval(dekSweeper); dekCache.clear(); } };
  const adopt = config.adoptUntaggedStores ? { adoptUntaggedStores: true } : {};
  const secrets = new ServiceSecrets({ core: writerCore, applier, keyRing, audit, events, logger, dekCache, ...adopt });
  const keyPolicies = new KeyPolicyReconciler({
    caches, applier, core: writerCore, keyRing, audit, events, metrics, logger, certManager, ...adopt,
    clusterResourceNamespace: config.clusterResourceNamespace ?? 'cert-manager',
    read: (ref) => orUndefined(async () => {
      const [group = '', version = ''] = (ref.apiVersion ?? '').split('/');
      const plural = `${(ref.kind ?? '').toLowerCase()}s`;
      const name = ref.metadata?.name ?? '';
      const namespace = ref.metadata?.namespace;
      return (namespace
        ? await custom.getNamespacedCustomObject({ group, version, plural, namespace, name })
        : await custom.getClusterCustomObject({ group, version, plural, name })) as KubernetesObject;
    }),
  });
  let serviceQueue: { backlog(): number } | undefined;
  const reconciler = new EncryptedServiceReconciler({
    caches, applier, reader, creator, events, metrics, logger, secrets, certManager, operatorNamespace: config.namespace,
    backlog: () => serviceQueue?.backlog() ?? 0,
    ...(config.defaultIssuer ? { defaultIssuer: config.defaultIssuer } : {}),
    ...(config.probeSource ? { probeSource: config.probeSource } : {}),
  });

  manager = new Manager({
    logger,
    metrics,
    ...(config.leaderElection
      ? {
        leaderElection: {
          identity: config.identity,
          // Outside the rate limit: a renewal queued behind a backlog of reconciles would lose the lease.
          store: kubeLeaseStore(client('lease', false).makeApiClient(k8s.CoordinationV1Api), config.leaderElection.namespace, config.leaderElection.leaseName),
        },
      }
      : {}),
    health: config.healthPort === undefined ? false : { port: config.healthPort, ...(config.healthHost ? { host: config.healthHost } : {}) },
    flushers: [events, dropDataKeys],
    reachability,
  });
  // RotationSchedules report from their own cache (rotationschedule/assemble.ts).
  metrics.reportResources(() => [...caches.keyPolicies.list().map(resourceState), ...caches.encryptedServices.list().map(resourceState)]);
  metrics.reportCAs(() => caches.certificates.list().flatMap((cert) => caState(cert) ?? []));
  manager.addReadinessCheck(certManager.readinessCheck());
  const services = encryptedServiceController(caches, reconciler, logger, metrics, config.serviceWorkers ?? SERVICE_WORKERS_DEFAULT);
  serviceQueue = services;
  manager.addController(services);
  manager.addController(keyPolicyController(caches, keyPolicies, logger, metrics));
  manager.addController(buildRotationScheduleController({
    kc, writer, caches, informer, applier, events, metrics, logger, operatorNamespace: config.namespace, secretPropagationMs: config.secretPropagationMs, certManager, keyRing,
    ...(config.defaultIssuer ? { defaultIssuer: config.defaultIssuer } : {}),
    ...(config.clusterResourceNamespace ? { clusterResourceNamespace: config.clusterResourceNamespace } : {}),
  }));
  manager.addController(buildRevocationController({
    writer, caches, audit, events, metrics, logger, operatorNamespace: config.namespace,
    clusterResourceNamespace: config.clusterResourceNamespace ?? 'cert-manager',
    ...(config.crlValidityMs ? { crlValidityMs: config.crlValidityMs } : {}),
    ...(config.defaultIssuer ? { defaultIssuer: config.defaultIssuer } : {}),
  }));
  if (config.approver !== undefined && config.approver !== 'off') {
    manager.addController(buildApproverController({
      kc, writer, caches, informer, events, metrics, logger, approveOthers: config.approver === 'all',
      ...(config.defaultIssuer ? { defaultIssuer: config.defaultIssuer } : {}),
    }));
  }
  if (config.verification) {
    manager.addController(buildVerificationController({ kc, writer, caches, settings: config.verification, events, metrics, logger }));
  }
  return { manager, metrics, events };
}
