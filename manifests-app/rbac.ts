// The operator's permissions, as data: every rule carries the reason it exists. The same list
// renders the ClusterRole / Role in manifests/rbac.yaml and the table in docs/rbac.md, so the
// documentation cannot drift from what is granted. Adding a permission means writing its reason.

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface ExplainedRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly Verb[];
  readonly why: string;
}

const LOCKSTEP_KINDS = ['encryptedservices', 'keypolicies', 'rotationschedules'] as const;

/** Cluster-wide: Lockstep resources and their children live in any namespace. */
export const clusterRules: readonly ExplainedRule[] = [
  {
    apiGroups: ['lockstep.dev'],
    resources: [...LOCKSTEP_KINDS],
    verbs: ['get', 'list', 'watch', 'update', 'patch'],
    why:
      'Reconcile inputs, read through informers. update/patch only add and remove the ' +
      'lockstep.dev/cleanup finalizer and apply the operator\'s own rotation requests ' +
      '(lockstep.dev/rotation-request, reactivate-kid, rotate-data-key, restore-data-key), each ' +
      'under a field manager of its own; the spec and the user\'s annotations are never written.',
  },
  {
    apiGroups: ['lockstep.dev'],
    resources: LOCKSTEP_KINDS.map((kind) => `${kind}/status`),
    verbs: ['get', 'update', 'patch'],
    why:
      'Conditions, observedGeneration, certificate and key state, and the persisted rotation ' +
      'state machine are written to status (server-side apply).',
  },
  {
    apiGroups: ['lockstep.dev'],
    resources: LOCKSTEP_KINDS.map((kind) => `${kind}/finalizers`),
    verbs: ['update'],
    why:
      'Children carry owner references with blockOwnerDeletion; clusters running the ' +
      'OwnerReferencesPermissionEnforcement admission plugin require update on the owner\'s finalizers.',
  },
  {
    apiGroups: ['cert-manager.io'],
    resources: ['certificates'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
    why:
      'One Certificate per EncryptedService (the service identity and mTLS certificate); ' +
      're-issued during rotation and deleted when no longer desired.',
  },
  {
    apiGroups: ['cert-manager.io'],
    resources: ['certificates/status'],
    verbs: ['update', 'patch'],
    why:
      'A rotation triggers re-issuance the way cmctl renew does: it sets the Certificate\'s ' +
      'Issuing condition on the status subresource.',
  },
  {
    apiGroups: ['cert-manager.io'],
    resources: ['certificaterequests'],
    verbs: ['get', 'list', 'watch', 'delete'],
    why:
      'Reports why issuance is stuck; a leaf rollback deletes the request of the failed revision, ' +
      'or cert-manager would re-issue over the restored certificate at once.',
  },
  {
    apiGroups: ['cert-manager.io'],
    resources: ['issuers', 'clusterissuers'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
    why:
      'Reads issuer readiness before issuing; a KeyPolicy\'s managed CA is a pair of ClusterIssuers ' +
      'the operator creates and deletes with the policy; CA rotation creates the new CA issuer and ' +
      'points leaf Certificates at it while the old root stays trusted.',
  },
  {
    apiGroups: ['networking.k8s.io'],
    resources: ['networkpolicies'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
    why: 'Default-deny ingress plus the allowed peers and TLS ports declared by each EncryptedService.',
  },
  {
    apiGroups: ['storage.k8s.io'],
    resources: ['storageclasses'],
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why:
      'Encrypted, versioned StorageClasses per CSI provider. Parameters are immutable, so there ' +
      'is no update; cluster-scoped, so owner references cannot reach them and the finalizer deletes them.',
  },
  {
    apiGroups: [''],
    resources: ['secrets', 'configmaps', 'persistentvolumeclaims'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
    why:
      'Secrets: TLS secrets (read), KEK JWKS, wrapped DEKs, materialised sealed secrets and LUKS ' +
      'keys. ConfigMaps: published CA bundles and public JWKS. PVCs: volumes on encrypted classes.',
  },
  {
    apiGroups: [''],
    resources: ['services', 'endpoints'],
    verbs: ['get', 'list', 'watch'],
    why:
      'Resolves the Service an EncryptedService names (DNS SANs, ports); endpoints for clusters ' +
      'or tools that still publish only the legacy Endpoints API.',
  },
  {
    apiGroups: ['discovery.k8s.io'],
    resources: ['endpointslices'],
    verbs: ['get', 'list', 'watch'],
    why: 'Rotation and continuous verification connect to each endpoint over TLS to check the served certificate.',
  },
  {
    apiGroups: [''],
    resources: ['namespaces'],
    verbs: ['get', 'list', 'watch'],
    why: 'Cross-namespace peers in access policies select namespaces by name or label.',
  },
  {
    apiGroups: ['', 'events.k8s.io'],
    resources: ['events'],
    verbs: ['create', 'patch'],
    why: 'Events on Lockstep resources (rotation steps, rollbacks, failed decrypts); patch aggregates repeats.',
  },
  {
    apiGroups: ['apps'],
    resources: ['deployments', 'statefulsets', 'daemonsets'],
    verbs: ['get', 'list', 'watch', 'patch'],
    why:
      'Workloads that cannot hot-reload certificates are restarted in batches by patching the ' +
      'pod template\'s restartedAt annotation (in a rotation, or when continuous verification finds ' +
      'a replaced certificate still served); rollout status gates the next batch.',
  },
];

/** Namespaced to the operator's own namespace: the leader-election Lease and the audit trails. */
export const leaderElectionRules: readonly ExplainedRule[] = [
  {
    apiGroups: ['coordination.k8s.io'],
    resources: ['leases'],
    verbs: ['get', 'list', 'create', 'update', 'delete'],
    why:
      'Leader election between replicas: read the Lease, create it on first start, renew or take ' +
      'it over. Rotation claims (one rotation at a time per service, issuer, KeyPolicy and trust ' +
      'bundle): Leases named lockstep-rotation-*, listed and deleted when a rotation ends. Granted ' +
      'only in the operator namespace.',
  },
  {
    apiGroups: [''],
    resources: ['configmaps'],
    verbs: ['get', 'list', 'create', 'update', 'delete'],
    why:
      'Audit trails, kept where tenants cannot write: segments (lockstep-audit-<hash>-NNNNNN, ' +
      'immutable once full), the signed head each append is checked against (…-head, updated with ' +
      'its resourceVersion), archived segments (…-archive-NNNNNN; live ones are deleted only ' +
      'after their archive copy exists, archived ones beyond the retention), and the public half ' +
      'of the audit signing key (lockstep-audit-signing-key) for verifiers.',
  },
  {
    apiGroups: [''],
    resources: ['secrets'],
    verbs: ['get', 'create'],
    why:
      'The Ed25519 key that signs audit entries and heads (Secret lockstep-audit-signing-key): ' +
      'created once, then only read; never updated or deleted by the operator.',
  },
  {
    apiGroups: [''],
    resources: ['configmaps'],
    verbs: ['get', 'list', 'watch', 'patch'],
    why:
      'CA rotation records which roots a rotation adds to and withdraws from each namespace\'s ' +
      'trust bundle (lockstep-trust-changes-<namespace>, server-side applied), here where tenants ' +
      'cannot write; a root is never taken from an annotation on the tenant-writable bundle.',
  },
];

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** The rules as Kubernetes PolicyRules: the reason is documentation, not part of the API. */
export function toPolicyRules(rules: readonly ExplainedRule[]): PolicyRule[] {
  return rules.map((rule) => ({
    apiGroups: [...rule.apiGroups],
    resources: [...rule.resources],
    verbs: [...rule.verbs],
  }));
}

function cell(values: readonly string[]): string {
  return values.map((v) => (v === '' ? '`""` (core)' : `\`${v}\``)).join(', ');
}

/** docs/rbac.md, rendered from the same rules as the manifests. */
export function renderRbacDoc(roleNames: { clusterRole: string; role: string; namespace: string }): string {
  const header = '| API group | Resources | Verbs | Why |\n|---|---|---|---|\n';
  const rows = (rules: readonly ExplainedRule[]): string =>
    rules
      .map((r) => `| ${cell(r.apiGroups)} | ${cell(r.resources)} | ${r.verbs.join(', ')} | ${r.why} |`)
      .join('\n');
  return [
    '<!-- Generated by `npm run manifests` from manifests-app/rbac.ts; do not edit. -->',
    '# Operator RBAC',
    '',
    'Everything the operator may do, and why. No wildcard verbs, resources or API groups; no',
    '`escalate`, `bind` or `impersonate`; no `deletecollection`.',
    '',
    `## ClusterRole \`${roleNames.clusterRole}\``,
    '',
    header + rows(clusterRules),
    '',
    `## Role \`${roleNames.role}\` (namespace \`${roleNames.namespace}\`)`,
    '',
    header + rows(leaderElectionRules),
    '',
  ].join('\n');
}
