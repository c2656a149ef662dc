// Annotation, label and finalizer keys of the lockstep.dev API. Users set the first two; the
// operator sets the rest on the objects it generates so they can be traced back to their owner.

/** On a RotationSchedule: any new value starts a rotation now, once per distinct value. */
export const ANNOTATION_ROTATE_NOW = 'lockstep.dev/rotate-now';
/** On a RotationSchedule: "true" pauses it like spec.paused, without editing a GitOps-managed spec. */
export const ANNOTATION_PAUSED = 'lockstep.dev/paused';
/**
 * On an EncryptedService: any new value (a request id) revokes the certificate it holds now,
 * once per distinct value — re-key, CRL, quarantine (operator/revocation, docs/revocation.md).
 */
export const ANNOTATION_REVOKE = 'lockstep.dev/revoke';
/** On an EncryptedService: the CRL reason of the next revocation (default keyCompromise). */
export const ANNOTATION_REVOKE_REASON = 'lockstep.dev/revoke-reason';

/** kid of the KEK a generated Secret's data key is wrapped under. */
export const ANNOTATION_KID = 'lockstep.dev/kid';
/** SPIFFE ID carried by a generated certificate Secret. */
export const ANNOTATION_SPIFFE_ID = 'lockstep.dev/spiffe-id';
/** Hash of the inputs a generated StorageClass was built from; a new hash means a new, versioned class. */
export const ANNOTATION_POLICY_HASH = 'lockstep.dev/policy-hash';

export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'lockstep';
/** Name of the EncryptedService a generated object belongs to. */
export const LABEL_ENCRYPTED_SERVICE = 'lockstep.dev/encrypted-service';
/** Name of the KeyPolicy a generated object belongs to. */
export const LABEL_KEY_POLICY = 'lockstep.dev/key-policy';
/** Namespace of the KeyPolicy a cluster-scoped or cross-namespace object belongs to. */
export const LABEL_KEY_POLICY_NAMESPACE = 'lockstep.dev/key-policy-namespace';
/**
 * On a KeyPolicy's managed CA ClusterIssuer: the CA Secret a CA rotation switched it to. The
 * KeyPolicy reconciler, which owns the issuer, signs with that Secret instead of the policy's
 * first root; only names of rotation-made CAs (ROTATED_CA_SECRET) count.
 */
export const ANNOTATION_ACTIVE_CA_SECRET = 'lockstep.dev/active-ca-secret';
/** Names of the CA Secrets a CA rotation makes: lockstep-ca-<rotation id>. */
export const ROTATED_CA_SECRET = /^lockstep-ca-[a-z0-9][a-z0-9-]{0,200}$/;
/**
 * On a cert-manager ClusterIssuer, written by the cluster administrator: the namespaces (comma-
 * separated names, or `*`) whose EncryptedServices may be issued by it. Cluster-scoped, so a
 * tenant cannot grant itself.
 */
export const ANNOTATION_ALLOWED_NAMESPACES = 'lockstep.dev/allowed-namespaces';
/** On a cert-manager ClusterIssuer: the namespaces whose RotationSchedules may rotate its CA. */
export const ANNOTATION_ROTATION_ALLOWED_NAMESPACES = 'lockstep.dev/rotation-allowed-namespaces';
/** Which concern generated the object: one of the COMPONENTS values. */
export const LABEL_COMPONENT = 'lockstep.dev/component';

export const COMPONENTS = ['transit', 'access', 'at-rest', 'secrets', 'trust', 'keys', 'audit'] as const;
export type Component = (typeof COMPONENTS)[number];

/** Finalizer for cleanup that owner references cannot reach (cluster-scoped StorageClasses). */
export const FINALIZER = 'lockstep.dev/cleanup';

/** Set by Kubernetes tooling to restart a workload; the operator writes it for non-hot-reloading workloads. */
export const ANNOTATION_RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';
