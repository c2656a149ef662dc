// The operator's permissions, as data: every rule carries the reason it exists. The same list
// renders the ClusterRole / Role in manifests/rbac.yaml and the table in docs/rbac.md, so the
// documentation cannot drift from what is granted. Adding a permission means writing its reason.

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'approve';

export interface ExplainedRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly Verb[];
  /** Only these objects (signers are named, not listed). */
  readonly resourceNames?: readonly string[];
  readonly why: string;
  /**
   * Set when the permission is checked by an admission plugin against the operator's request,
   * not requested itself: the RBAC e2e cannot see it in the audit log and does not require it there.
   */
  readonly checkedBy?: string;
}

const LOCKSTEP_KINDS = ['encryptedservices', 'keypolicies', 'rotationschedules'] as const;

/**
 * Cluster-wide: Lockstep resources and their children live in any namespace. Objects the operator
 * owns are written with server-side apply: a patch, which the API server authorizes a second time
 * as create when the object does not exist yet. So create comes with patch for those, and update
 * appears only where the code replaces an object whole with a resourceVersion precondition.
 */
export const clusterRules: readonly ExplainedRule[] = [
  {
    apiGroups: ['lockstep.dev'],
    resources: ['rotationschedules'],
    verbs: ['get', 'list', 'watch'],
    why:
      'Reconcile input, read through an informer; get re-reads a schedule before a rotation step. ' +
      'Never written but through its status: no finalizer, no annotation of the operator\'s own.',
  },
  {
    apiGroups: ['lockstep.dev'],
    resources: ['encryptedservices', 'keypolicies'],
    verbs: ['get', 'list', 'watch', 'patch'],
    why:
      'Reconcile inputs, read through informers; get re-reads ' +
      'the target of a key rotation request. patch (server-side apply or a JSON patch guarded by a test) only adds ' +
      'and removes the lockstep.dev/cleanup finalizer and applies the operator\'s own rotation requests ' +
      '(lockstep.dev/rotation-request, reactivate-kid, rotate-data-key, restore-data-key), each ' +
      'under a field manager of its own; the spec and the user\'s annotations are never written. No ' +
      'update: nothing is ever replaced whole.',
  },
  {
    apiGroups: ['lockstep.dev'],
    resources: LOCKSTEP_KINDS.map((kind) => `${kind}/status`),
    verbs: ['patch'],
    why:
      'Conditions, observedGeneration, certificate and key state, and the persisted rotation ' +
      'state machine are written to status with server-side apply (patch); status is read from the ' +
      'informers, never fetched or replaced through the subresource.',
  },
  {
    apiGroups: ['lockstep.dev'],
    resources: LOCKSTEP_KINDS.map((kind) => `${kind}/finalizers`),
    verbs: ['update'],
    checkedBy: 'OwnerReferencesPermissionEnforcement',
    why:
      'Children carry owner references with blockOwnerDeletion; clusters running the ' +
      'OwnerReferencesPermissionEnforcement admission plugin require update on the owner\'s finalizers.',
  },
  {
    apiGroups: ['cert-manager.io'],
    resources: ['certificates'],
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why:
      'One Certificate per EncryptedService (the service identity and mTLS certificate), written ' +
      'with server-side apply (no update); get reads the live revision ' +
      'during a rotation; deleted when no longer desired and with a CA rotation\'s probe.',
  },
  {
    apiGroups: ['cert-manager.io'],
    resources: ['certificates/status'],
    verbs: ['update'],
    why:
      'A rotation triggers re-issuance the way cmctl renew does: it sets the Certificate\'s ' +
      'Issuing condition on the status subresource, as a replace carrying the resourceVersion it ' +
      'read (compare-and-swap); a cancelled rotation removes it the same way.',
  },
  {
    apiGroups: ['cert-manager.io'],
    resources: ['certificaterequests'],
    verbs: ['list', 'watch', 'delete'],
    why:
      'A leaf rollback deletes the request of the failed revision (listed by the Certificate\'s ' +
      'revision annotation), or cert-manager would re-issue over the restored certificate at once. ' +
      'The approver watches every request (an informer) to judge it.',
  },
  {
    apiGroups: ['cert-manager.io'],
    resources: ['certificaterequests/status'],
    verbs: ['patch'],
    why:
      'The approver: sets the Approved or Denied condition cert-manager waits for. A request ' +
      'claiming a Lockstep identity is approved only when it matches a declared EncryptedService; ' +
      'the patch carries the resourceVersion judged, so a decided request is never overwritten.',
  },
  {
    apiGroups: ['cert-manager.io'],
    resources: ['signers'],
    verbs: ['approve'],
    resourceNames: ['issuers.cert-manager.io/*', 'clusterissuers.cert-manager.io/*'],
    checkedBy: 'cert-manager webhook (SubjectAccessReview on Approved/Denied)',
    why:
      'cert-manager\'s webhook lets only a user who may approve the signer named after the ' +
      'request\'s issuer set Approved or Denied; the approver judges requests to any issuer.',
  },
  {
    apiGroups: ['cert-manager.io'],
    resources: ['issuers', 'clusterissuers'],
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why:
      'Reads issuer readiness before issuing; a KeyPolicy\'s managed CA is a pair of ClusterIssuers ' +
      'the operator applies (patch) and deletes with the policy; CA rotation applies the new CA ' +
      'issuer, re-points the rotated issuer at the new CA Secret and deletes its probe Issuer.',
  },
  {
    apiGroups: ['networking.k8s.io'],
    resources: ['networkpolicies'],
    verbs: ['list', 'watch', 'create', 'patch', 'delete'],
    why:
      'Default-deny ingress plus the allowed peers and TLS ports declared by each EncryptedService, ' +
      'server-side applied from the informer cache; stale ones deleted.',
  },
  {
    apiGroups: ['storage.k8s.io'],
    resources: ['storageclasses'],
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why:
      'Encrypted, versioned StorageClasses per CSI provider, server-side applied. Parameters are ' +
      'immutable, so there is no update; cluster-scoped, so owner references cannot reach them and ' +
      'the finalizer deletes them once no service uses them.',
  },
  {
    apiGroups: [''],
    resources: ['secrets'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
    why:
      'TLS secrets (read; a leaf rollback merge-patches the kept revision back), the KEK JWKS ' +
      '(create, then replace with its resourceVersion so a concurrent writer conflicts), wrapped ' +
      'DEKs and materialised sealed secrets (server-side apply, create/replace), LUKS keys (create ' +
      'if missing). Deleted: a service\'s TLS and LUKS Secrets on cleanup, a CA rotation\'s probe. ' +
      'The informer lists only labelled Secrets, but RBAC cannot scope by label: the ' +
      'ValidatingAdmissionPolicy lockstep-operator-managed-objects refuses every write by the ' +
      'operator to a Secret that does not carry app.kubernetes.io/managed-by=lockstep.',
  },
  {
    apiGroups: [''],
    resources: ['configmaps'],
    verbs: ['list', 'watch', 'create', 'update', 'patch', 'delete'],
    why:
      'Published CA bundles and public JWKS (server-side apply); audit segments (create, replace, ' +
      'listed to rebuild the chain, the oldest deleted when pruned). Never fetched one by one. ' +
      'Writes limited to managed objects by lockstep-operator-managed-objects.',
  },
  {
    apiGroups: [''],
    resources: ['persistentvolumeclaims'],
    verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'],
    why:
      'Volumes on encrypted classes, server-side applied; get reads a claim the cache does not ' +
      'hold to report one on an unencrypted class; deleted on cleanup when retain is false.',
  },
  {
    apiGroups: [''],
    resources: ['services'],
    verbs: ['list', 'watch'],
    why:
      'A declared TLS port no Service routes to is reported (PortNotExposed). The cache keeps only ' +
      'the name and ports of each Service.',
  },
  {
    apiGroups: [''],
    resources: ['pods'],
    verbs: ['list', 'watch'],
    why:
      'A service\'s certificate names the service account its pods run as (its SPIFFE ID): the ' +
      'operator checks the pods the workload selector selects before it issues. The cache keeps ' +
      'only labels, service account and phase of each pod.',
  },
  {
    apiGroups: ['discovery.k8s.io'],
    resources: ['endpointslices'],
    verbs: ['list'],
    why: 'Rotation and continuous verification list the Service\'s EndpointSlices and connect to each endpoint over TLS.',
  },
  {
    apiGroups: ['events.k8s.io'],
    resources: ['events'],
    verbs: ['create', 'patch'],
    why: 'Events on Lockstep resources (rotation steps, rollbacks, failed decrypts); patch aggregates repeats.',
  },
  {
    apiGroups: ['apps'],
    resources: ['deployments', 'statefulsets', 'daemonsets'],
    verbs: ['get', 'patch'],
    why:
      'Workloads that cannot hot-reload certificates are restarted in batches by patching the ' +
      'pod template\'s restartedAt annotation (in a rotation, or when continuous verification finds ' +
      'a replaced certificate still served); get reads the rollout strategy first. The ' +
      'ValidatingAdmissionPolicy lockstep-operator-restart-only refuses any other change.',
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
];

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}

/** The rules as Kubernetes PolicyRules: the reason is documentation, not part of the API. */
export function toPolicyRules(rules: readonly ExplainedRule[]): PolicyRule[] {
  return rules.map((rule) => ({
    apiGroups: [...rule.apiGroups],
    resources: [...rule.resources],
    ...(rule.resourceNames ? { resourceNames: [...rule.resourceNames] } : {}),
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
      .map((r) => `| ${cell(r.apiGroups)} | ${cell(r.resources)}${r.resourceNames ? ` named ${cell(r.resourceNames)}` : ''} | ${r.verbs.join(', ')} | ${r.why} |`)
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
