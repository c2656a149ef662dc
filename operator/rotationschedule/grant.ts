// Who may rotate a CA. A RotationSchedule is namespaced, but a ClusterIssuer's CA is shared:
// rotating it makes a new CA, rewrites the trust bundles of every namespace on the issuer and
// switches the issuer. So a schedule may rotate a ClusterIssuer only when the administrator said
// so on the ClusterIssuer itself (cluster-scoped: a tenant cannot write it), when it runs in the
// operator's own namespace, or when the issuer is the managed CA of a KeyPolicy beside it.
// Pure: the caller reads the issuer's metadata.
import {
  ANNOTATION_ROTATION_ALLOWED_NAMESPACES, LABEL_KEY_POLICY, LABEL_MANAGED_BY, MANAGED_BY_VALUE, Reasons, type IssuerRef, type Reason,
} from '../api/v1alpha1/index.js';
import { LABEL_KEY_POLICY_NAMESPACE } from '../keypolicy/names.js';

export interface IssuerMetadata {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export type Grant = { allowed: true; why: string } | { allowed: false; reason: Reason; message: string };

/** Whether a grant annotation's value (comma-separated namespaces, or `*`) names `namespace`. */
export function grantsNamespace(value: string | undefined, namespace: string): boolean {
  return (value ?? '').split(',').map((n) => n.trim()).some((n) => n === '*' || (n !== '' && n === namespace));
}

/** The KeyPolicy whose managed CA this ClusterIssuer is, from the labels only Lockstep sets on it. */
export function managedCAOwner(metadata: IssuerMetadata | undefined): { namespace: string; name: string } | undefined {
  const labels = metadata?.labels ?? {};
  const name = labels[LABEL_KEY_POLICY];
  const namespace = labels[LABEL_KEY_POLICY_NAMESPACE];
  return labels[LABEL_MANAGED_BY] === MANAGED_BY_VALUE && name && namespace ? { namespace, name } : undefined;
}

export interface GrantInput {
  scheduleNamespace: string;
  operatorNamespace: string;
  issuer: Required<Pick<IssuerRef, 'kind' | 'name'>>;
  /** The issuer's metadata as read from the API server. */
  metadata: IssuerMetadata | undefined;
}

export function caRotationGrant(input: GrantInput): Grant {
  const { scheduleNamespace: ns, issuer } = input;
  // A namespaced Issuer is always the schedule's own (caIssuer resolves it in the schedule's namespace).
  if (issuer.kind !== 'ClusterIssuer') return { allowed: true, why: `Issuer ${issuer.name} is in namespace ${ns}` };
  if (ns === input.operatorNamespace) return { allowed: true, why: `namespace ${ns} is the operator's own` };
  if (grantsNamespace(input.metadata?.annotations?.[ANNOTATION_ROTATION_ALLOWED_NAMESPACES], ns)) {
    return { allowed: true, why: `ClusterIssuer ${issuer.name} grants namespace ${ns} (${ANNOTATION_ROTATION_ALLOWED_NAMESPACES})` };
  }
  const owner = managedCAOwner(input.metadata);
  if (owner?.namespace === ns) return { allowed: true, why: `ClusterIssuer ${issuer.name} is the managed CA of KeyPolicy ${owner.namespace}/${owner.name}` };
  const grant = `an administrator lists ${ns} (or *) in the annotation ${ANNOTATION_ROTATION_ALLOWED_NAMESPACES} of ClusterIssuer ${issuer.name}`;
  const message = owner
    ? `ClusterIssuer ${issuer.name} is the managed CA of KeyPolicy ${owner.namespace}/${owner.name}: a RotationSchedule in namespace ${ns} may rotate it only if ${grant}; nothing was changed`
    : `ClusterIssuer ${issuer.name} is shared by the cluster: a RotationSchedule in namespace ${ns} may rotate its CA only if ${grant}, or from the operator's namespace ${input.operatorNamespace}; nothing was changed`;
  return { allowed: false, reason: Reasons.RotationNotAllowed, message };
}
