// ValidatingAdmissionPolicies an administrator installs with manifests/ (admission.yaml). Two
// kinds: limits on the operator's own writes, which RBAC cannot express (a verb, not a field or a
// label), and per-namespace guardrails a KeyPolicy opts into with spec.admission. All static: the
// operator holds no admissionregistration rights, since whoever writes policies or bindings can
// deny (or, by deleting them, allow) any request in the cluster.
import { OPERATOR_NAME, OPERATOR_NAMESPACE } from './install-names.js';

export const OPERATOR_USERNAME = `system:serviceaccount:${OPERATOR_NAMESPACE}:${OPERATOR_NAME}`;

const MANAGED_BY = 'app.kubernetes.io/managed-by';
const COMPONENT = 'lockstep.dev/component';
const KEY_POLICY_LABEL = 'lockstep.dev/key-policy';
const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';
const DAEMONSET_GENERATION = 'deprecated.daemonset.template.generation';
/** Names of the StorageClasses the operator generates (operator/encryptedservice/storage.ts): always encrypted. */
const GENERATED_STORAGE_CLASS = '^lockstep-(aws-ebs|gce-pd|azure-disk|longhorn|ceph-rbd)-[0-9a-f]{10}$';

export const POLICY_NAMES = {
  restartOnly: 'lockstep-operator-restart-only',
  managedObjects: 'lockstep-operator-managed-objects',
  encryptedVolumes: 'lockstep-encrypted-volumes',
  sealedSecrets: 'lockstep-sealed-secrets',
  protectKeys: 'lockstep-protect-keys',
} as const;

interface Validation {
  expression: string;
  messageExpression?: string;
  message?: string;
  reason?: 'Forbidden' | 'Invalid';
}

interface PolicyInput {
  name: string;
  why: string;
  resources: { apiGroups: string[]; resources: string[]; operations: string[] };
  matchConditions?: { name: string; expression: string }[];
  variables?: { name: string; expression: string }[];
  validations: Validation[];
  /** Guardrails read their settings from the KeyPolicies in the request's namespace. */
  keyPolicyParams?: boolean;
}

export interface AdmissionObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
}

const isOperator = `request.userInfo.username == '${OPERATOR_USERNAME}'`;
const label = (obj: string, key: string): string => `${obj}.metadata.?labels[?'${key}'].orValue('')`;

function policy(input: PolicyInput, labels: Record<string, string>): AdmissionObject[] {
  const { apiGroups, resources, operations } = input.resources;
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: input.name, labels, annotations: { 'lockstep.dev/why': input.why } },
      spec: {
        failurePolicy: 'Fail',
        ...(input.keyPolicyParams ? { paramKind: { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy' } } : {}),
        matchConstraints: { resourceRules: [{ apiGroups, apiVersions: ['*'], operations, resources }] },
        ...(input.matchConditions ? { matchConditions: input.matchConditions } : {}),
        ...(input.variables ? { variables: input.variables } : {}),
        validations: input.validations.map((v) => ({ reason: 'Forbidden', ...v })),
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: input.name, labels },
      spec: {
        policyName: input.name,
        validationActions: ['Deny'],
        // No namespace: the KeyPolicies of the request's own namespace. None there: not protected.
        ...(input.keyPolicyParams ? { paramRef: { selector: {}, parameterNotFoundAction: 'Allow' } } : {}),
      },
    },
  ];
}

/** Fields of Deployment, StatefulSet and DaemonSet specs a restart must leave as they were. */
const WORKLOAD_SPEC_FIELDS = [
  'replicas', 'selector', 'strategy', 'updateStrategy', 'minReadySeconds', 'revisionHistoryLimit', 'paused',
  'progressDeadlineSeconds', 'serviceName', 'podManagementPolicy', 'volumeClaimTemplates',
  'persistentVolumeClaimRetentionPolicy', 'ordinals',
];

const operatorPolicies: PolicyInput[] = [
  {
    name: POLICY_NAMES.restartOnly,
    why:
      'RBAC grants the operator patch on every Deployment, StatefulSet and DaemonSet so it can restart ' +
      'workloads that cannot hot-reload certificates; this policy lets that patch change nothing but the ' +
      `pod template's ${RESTARTED_AT} annotation.`,
    resources: { apiGroups: ['apps'], resources: ['deployments', 'statefulsets', 'daemonsets'], operations: ['UPDATE'] },
    matchConditions: [{ name: 'operator', expression: isOperator }],
    variables: [
      { name: 'newAnnotations', expression: 'object.spec.template.metadata.?annotations.orValue({})' },
      { name: 'oldAnnotations', expression: 'oldObject.spec.template.metadata.?annotations.orValue({})' },
      { name: 'newOwnAnnotations', expression: 'object.metadata.?annotations.orValue({})' },
      { name: 'oldOwnAnnotations', expression: 'oldObject.metadata.?annotations.orValue({})' },
    ],
    validations: [
      {
        expression: [
          'object.spec.template.spec == oldObject.spec.template.spec',
          'object.spec.template.metadata.?labels == oldObject.spec.template.metadata.?labels',
          `variables.newAnnotations.all(k, k == '${RESTARTED_AT}' || (k in variables.oldAnnotations && variables.oldAnnotations[k] == variables.newAnnotations[k]))`,
          `variables.oldAnnotations.all(k, k == '${RESTARTED_AT}' || k in variables.newAnnotations)`,
          ...WORKLOAD_SPEC_FIELDS.map((f) => `object.spec.?${f} == oldObject.spec.?${f}`),
          ...['labels', 'ownerReferences', 'finalizers'].map((f) => `object.metadata.?${f} == oldObject.metadata.?${f}`),
          // The API server itself bumps this one on a DaemonSet whose template changed.
          `variables.newOwnAnnotations.all(k, k == '${DAEMONSET_GENERATION}' || (k in variables.oldOwnAnnotations && variables.oldOwnAnnotations[k] == variables.newOwnAnnotations[k]))`,
          `variables.oldOwnAnnotations.all(k, k == '${DAEMONSET_GENERATION}' || k in variables.newOwnAnnotations)`,
        ].join(' && '),
        messageExpression:
          `'the Lockstep operator may change only the pod template annotation ${RESTARTED_AT} of ' + ` +
          "request.kind.kind + ' ' + request.namespace + '/' + request.name + ' (a restart); this request changes more'",
      },
    ],
  },
  {
    name: POLICY_NAMES.managedObjects,
    why:
      'RBAC cannot scope Secret and ConfigMap rights by label: the operator may read and write them in ' +
      `every namespace. This policy lets it create, change and delete only objects labelled ${MANAGED_BY}=lockstep, ` +
      'before and after the write, so a bug or a stolen operator token cannot rewrite or delete anyone else\'s. ' +
      'One exception: adopting an envelope source Secret (spec.secrets.envelope) adds the label and must leave ' +
      'data and type as they were.',
    resources: { apiGroups: [''], resources: ['secrets', 'configmaps'], operations: ['CREATE', 'UPDATE', 'DELETE'] },
    matchConditions: [{ name: 'operator', expression: isOperator }],
    variables: [
      // An EncryptedService's spec.secrets.envelope names a Secret the user's pipeline creates; the
      // operator takes it under management by labelling it, and that first write must not change it.
      {
        name: 'adoption',
        expression:
          "request.operation == 'UPDATE' && request.resource.resource == 'secrets' && " +
          'object.?data == oldObject.?data && object.?type == oldObject.?type',
      },
    ],
    validations: [
      {
        expression:
          `(request.operation == 'DELETE' || ${label('object', MANAGED_BY)} == 'lockstep') && ` +
          `(request.operation == 'CREATE' || ${label('oldObject', MANAGED_BY)} == 'lockstep' || variables.adoption)`,
        messageExpression:
          `'the Lockstep operator writes only Secrets and ConfigMaps labelled ${MANAGED_BY}=lockstep ' + ` +
          "'(it may label an unlabelled Secret it adopts, without changing its data); ' + " +
          "request.resource.resource + ' ' + request.namespace + '/' + request.name + ' is not (before or after this ' + request.operation + ')'",
      },
    ],
  },
];

/** Settings of one KeyPolicy's guardrails, as the CEL expressions read them. */
const admission = 'params.spec.?admission';
const inTerminatingNamespace = 'has(namespaceObject.metadata.deletionTimestamp)';

/** The request is about this KeyPolicy's key Secret (by name, or by its labels before or after). */
const isKeySecret = {
  name: 'isKeySecret',
  expression:
    "request.name == params.metadata.name + '-keys' || " +
    `(request.operation != 'DELETE' && ${label('object', COMPONENT)} == 'keys' && ${label('object', KEY_POLICY_LABEL)} == params.metadata.name) || ` +
    `(request.operation != 'CREATE' && ${label('oldObject', COMPONENT)} == 'keys' && ${label('oldObject', KEY_POLICY_LABEL)} == params.metadata.name)`,
};
const protectsKeys = `has(params.spec.admission) && ${admission}.?protectKeys.orValue(true)`;

const guardrailPolicies: PolicyInput[] = [
  {
    name: POLICY_NAMES.encryptedVolumes,
    why:
      'KeyPolicy spec.admission.requireEncryptedVolumes: every PersistentVolumeClaim in the namespace names an ' +
      'encrypted StorageClass — one Lockstep generated (cluster-scoped, so only administrators and the operator ' +
      'make them) or one listed in spec.admission.encryptedStorageClasses.',
    keyPolicyParams: true,
    resources: { apiGroups: [''], resources: ['persistentvolumeclaims'], operations: ['CREATE'] },
    variables: [{ name: 'className', expression: "object.spec.?storageClassName.orValue('')" }],
    validations: [
      {
        expression:
          `!${admission}.?requireEncryptedVolumes.orValue(false) || ` +
          `variables.className.matches('${GENERATED_STORAGE_CLASS}') || ` +
          `variables.className in ${admission}.?encryptedStorageClasses.orValue([])`,
        messageExpression:
          "'KeyPolicy ' + params.metadata.name + ' requires encrypted volumes in namespace ' + request.namespace + ': ' + " +
          "(variables.className == '' ? 'a claim without storageClassName gets the default class, which is not known to be encrypted' " +
          ": 'StorageClass ' + variables.className + ' is neither generated by Lockstep nor listed in spec.admission.encryptedStorageClasses') + " +
          "'; declare the volume on an EncryptedService (spec.atRest.volumes)'",
      },
    ],
  },
  {
    name: POLICY_NAMES.sealedSecrets,
    why:
      'KeyPolicy spec.admission.requireSealedSecrets: Opaque Secrets in the namespace come from the operator ' +
      '(materialised sealed values, envelope stores) or from a writer the policy declares in ' +
      'spec.admission.secretWriters; plaintext written by anyone else is refused.',
    keyPolicyParams: true,
    resources: { apiGroups: [''], resources: ['secrets'], operations: ['CREATE', 'UPDATE'] },
    matchConditions: [{ name: 'opaque', expression: "object.?type.orValue('Opaque') == 'Opaque'" }],
    variables: [isKeySecret],
    validations: [
      {
        // The policy's key Secret has a rule of its own (protect-keys) when that is on: one answer per request.
        expression:
          `!${admission}.?requireSealedSecrets.orValue(false) || ${isOperator} || ` +
          `(variables.isKeySecret && ${protectsKeys}) || ` +
          `request.userInfo.username in ${admission}.?secretWriters.orValue([])`,
        messageExpression:
          "'KeyPolicy ' + params.metadata.name + ' requires sealed or envelope-encrypted secrets in namespace ' + request.namespace + " +
          "': Opaque Secret ' + request.name + ' may be written only by the Lockstep operator or a writer listed in spec.admission.secretWriters, not by ' + request.userInfo.username + " +
          "'; seal the value with `lockstep seal` and declare it on an EncryptedService'",
      },
    ],
  },
  {
    name: POLICY_NAMES.protectKeys,
    why:
      'KeyPolicy spec.admission.protectKeys (default true once spec.admission is set): the policy\'s key Secret ' +
      '(<policy>-keys, or any Secret labelled as its keys) is created, changed and deleted by the operator only. ' +
      'Allowed while the namespace or the policy itself is being deleted, so neither gets stuck.',
    keyPolicyParams: true,
    resources: { apiGroups: [''], resources: ['secrets'], operations: ['CREATE', 'UPDATE', 'DELETE'] },
    variables: [isKeySecret],
    validations: [
      {
        expression:
          `!(${protectsKeys}) || !variables.isKeySecret || ${isOperator} || ` +
          `${inTerminatingNamespace} || has(params.metadata.deletionTimestamp)`,
        messageExpression:
          "'Secret ' + request.namespace + '/' + request.name + ' holds the keys of KeyPolicy ' + params.metadata.name + " +
          "': only the Lockstep operator may ' + request.operation + ' it (spec.admission.protectKeys); rotate or retire keys through the KeyPolicy and a RotationSchedule'",
      },
    ],
  },
];

/** Every policy with the binding that puts it in force, operator limits first. */
export function admissionObjects(labels: Record<string, string>): AdmissionObject[] {
  return [...operatorPolicies, ...guardrailPolicies].flatMap((p) => policy(p, labels));
}

/** docs/rbac.md section: what each policy limits, from the same data. */
export function renderAdmissionDoc(): string {
  const rows = [...operatorPolicies, ...guardrailPolicies]
    .map((p) => `| \`${p.name}\` | ${p.resources.resources.map((r) => `\`${r}\``).join(', ')} | ${p.resources.operations.join(', ')} | ${p.why} |`)
    .join('\n');
  return [
    '## ValidatingAdmissionPolicies (`manifests/admission.yaml`)',
    '',
    'Installed by the administrator with the rest of `manifests/`; the operator neither creates nor',
    'changes admission objects. The first two limit the operator\'s own writes (they match only its',
    `ServiceAccount \`${OPERATOR_USERNAME}\`); the others are guardrails a KeyPolicy turns on for its`,
    'namespace with `spec.admission` (their parameters are the KeyPolicies of the request\'s namespace).',
    '',
    '| Policy | Resources | Operations | What it enforces |',
    '|---|---|---|---|',
    rows,
    '',
  ].join('\n');
}
