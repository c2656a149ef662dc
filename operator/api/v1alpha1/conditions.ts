// Condition types and reasons each kind reports in status.conditions. The CRD descriptions list
// the same types; reasons are CamelCase (metav1.Condition's pattern).

export const ConditionStatus = { True: 'True', False: 'False', Unknown: 'Unknown' } as const;
export type ConditionStatus = (typeof ConditionStatus)[keyof typeof ConditionStatus];

export const EncryptedServiceConditions = {
  Ready: 'Ready',
  TransitReady: 'TransitReady',
  AccessReady: 'AccessReady',
  AtRestReady: 'AtRestReady',
  SecretsReady: 'SecretsReady',
  Rotating: 'Rotating',
  Degraded: 'Degraded',
  /** Written by the continuous verifier (operator/verification) under its own field manager. */
  Verified: 'Verified',
  /**
   * Written by the revocation controller (operator/revocation) under its own field manager: True
   * while a revoked identity's workload is isolated by the quarantine NetworkPolicy.
   */
  Quarantined: 'Quarantined',
} as const;
export type EncryptedServiceConditionType = (typeof EncryptedServiceConditions)[keyof typeof EncryptedServiceConditions];

export const KeyPolicyConditions = {
  Ready: 'Ready',
  KeysReady: 'KeysReady',
  Rotating: 'Rotating',
  Degraded: 'Degraded',
  /** The audit trail matches its signed head and takes new entries (reason AuditChainBroken when not). */
  AuditTrailReady: 'AuditTrailReady',
} as const;
export type KeyPolicyConditionType = (typeof KeyPolicyConditions)[keyof typeof KeyPolicyConditions];

export const RotationScheduleConditions = {
  Ready: 'Ready',
  Rotating: 'Rotating',
  Degraded: 'Degraded',
} as const;
export type RotationScheduleConditionType = (typeof RotationScheduleConditions)[keyof typeof RotationScheduleConditions];

/** Reasons shared by the three kinds. Each says what happened, not which code ran. */
export const Reasons = {
  // Generic
  Reconciled: 'Reconciled',
  Progressing: 'Progressing',
  ReconcileError: 'ReconcileError',
  /** The API server refused to write a generated object: a ResourceQuota, an admission policy, RBAC, or an invalid value. */
  ChildRefused: 'ChildRefused',
  NotConfigured: 'NotConfigured',
  // Policy resolution
  KeyPolicyNotFound: 'KeyPolicyNotFound',
  KeyPolicyNotAllowed: 'KeyPolicyNotAllowed',
  KeyPolicyNotReady: 'KeyPolicyNotReady',
  PolicyViolation: 'PolicyViolation',
  // Transit
  IssuerNotFound: 'IssuerNotFound',
  /** The KeyPolicy does not list the issuer, a ClusterIssuer lacks the administrator's grant, or it is another policy's managed CA. */
  IssuerNotAllowed: 'IssuerNotAllowed',
  /** An extraDNSNames entry the KeyPolicy's allowedDNSNames does not permit. */
  DNSNameNotAllowed: 'DNSNameNotAllowed',
  /** transit.trustDomain differs from the KeyPolicy's certificates.trustDomain. */
  TrustDomainNotAllowed: 'TrustDomainNotAllowed',
  /** Selected pods run as a service account other than workload.serviceAccountName. */
  IdentityMismatch: 'IdentityMismatch',
  /** The policy restricts service accounts and no selected pod proves the declared one yet. */
  WorkloadNotFound: 'WorkloadNotFound',
  CertificatePending: 'CertificatePending',
  CertificateIssued: 'CertificateIssued',
  CertificateFailed: 'CertificateFailed',
  CertificateExpiringSoon: 'CertificateExpiringSoon',
  /** cert-manager's API (Certificate, Issuer, ClusterIssuer) is not served: it is not installed, or not yet. */
  CertManagerMissing: 'CertManagerMissing',
  // Access
  NetworkPoliciesApplied: 'NetworkPoliciesApplied',
  /** A revocation isolates the workload (only the operator's probes reach it) until it serves its new certificate. */
  Quarantined: 'Quarantined',
  // Revocation (Quarantined condition; status.revocation.outcome says more)
  RevocationInProgress: 'RevocationInProgress',
  NotQuarantined: 'NotQuarantined',
  RevocationFailed: 'RevocationFailed',
  PeerNotFound: 'PeerNotFound',
  /** A peer rule names a port its target EncryptedService does not declare. */
  PeerPortNotFound: 'PeerPortNotFound',
  /** The service's Kubernetes Service routes to none of the pods' port for a declared TLS port. */
  PortNotExposed: 'PortNotExposed',
  /** Another EncryptedService of the namespace selects the same pods. */
  WorkloadClaimedTwice: 'WorkloadClaimedTwice',
  // At rest
  VolumesEncrypted: 'VolumesEncrypted',
  VolumePending: 'VolumePending',
  UnencryptedVolume: 'UnencryptedVolume',
  // Secrets
  SecretsEncrypted: 'SecretsEncrypted',
  DecryptionFailed: 'DecryptionFailed',
  SecretConflict: 'SecretConflict',
  /** The values of one sealed Secret add up to more than a Secret can hold (1 MiB). */
  SecretTooLarge: 'SecretTooLarge',
  /** The Secret at an envelope store's name is not one the operator wrote for this service (forged or tampered). */
  EnvelopeStoreUntrusted: 'EnvelopeStoreUntrusted',
  // Keys
  KeysGenerated: 'KeysGenerated',
  /** A KeyPolicy's deletion waits: ciphertexts are still under its keys. */
  KeysInUse: 'KeysInUse',
  /** The KeyPolicy is being deleted: nothing new is sealed or wrapped under it. */
  KeyPolicyDeleting: 'KeyPolicyDeleting',
  /** The key Secret was asked to be deleted while its keys are in use; a finalizer keeps it. */
  KeySecretDeleting: 'KeySecretDeleting',
  RewrapPending: 'RewrapPending',
  /** keyStore PKCS11: the HSM session is lost or the token is absent; retried, nothing regenerated. */
  KeyStoreUnavailable: 'KeyStoreUnavailable',
  /** keyStore PKCS11: a kid the index names is not in the token; never replaced by a new key. */
  KeyMissing: 'KeyMissing',
  /** keyStore PKCS11: the config Secret is missing or wrong, the PIN refused, or the token unsuitable. */
  KeyStoreMisconfigured: 'KeyStoreMisconfigured',
  /** keyStore PKCS11: the HSM config Secret does not grant the policy's namespace. */
  KeyStoreNotAllowed: 'KeyStoreNotAllowed',
  /** keyStore PKCS11: the token holds keys of the policy its index does not name (reported, never deleted). */
  OrphanKeysInToken: 'OrphanKeysInToken',
  // Audit
  /** The trail does not match its recorded head: nothing is appended, key changes wait. */
  AuditChainBroken: 'AuditChainBroken',
  AuditTrailVerified: 'AuditTrailVerified',
  /** Objects claiming to be this policy's envelope stores that the operator did not write: not counted, not re-wrapped. */
  UntrustedStoresIgnored: 'UntrustedStoresIgnored',
  // Rotation
  RotationScheduled: 'RotationScheduled',
  RotationInProgress: 'RotationInProgress',
  RotationCompleted: 'RotationCompleted',
  RotationPaused: 'RotationPaused',
  /** A due rotation waits: another schedule's rotation holds one of its targets, its issuer or a KeyPolicy. */
  RotationWaiting: 'RotationWaiting',
  VerificationFailed: 'VerificationFailed',
  RolledBack: 'RolledBack',
  NoTargets: 'NoTargets',
  // Continuous verification (what the endpoints actually serve)
  Verified: 'Verified',
  ServingStaleCertificate: 'ServingStaleCertificate',
  RenewalPropagating: 'RenewalPropagating',
  UntrustedCertificate: 'UntrustedCertificate',
  MTLSNotEnforced: 'MTLSNotEnforced',
  PlaintextAccepted: 'PlaintextAccepted',
  NoEndpoints: 'NoEndpoints',
  Unreachable: 'Unreachable',
  WorkloadRestarted: 'WorkloadRestarted',
  RestartRefused: 'RestartRefused',
  // Tenancy: what a namespaced object may change outside its namespace
  /** A RotationSchedule may not rotate this ClusterIssuer's CA: no administrator grant names its namespace. */
  RotationNotAllowed: 'RotationNotAllowed',
  /** A RotationSchedule may not ask a KeyPolicy in another namespace to rotate. */
  KeyPolicyInOtherNamespace: 'KeyPolicyInOtherNamespace',
  /** A cluster-scoped name Lockstep derives for this owner is held by an object it did not create for it. */
  NameTaken: 'NameTaken',
  // Secrets: why a sealed value, wrapped data key or envelope store was not opened or trusted
  /** Not a Lockstep ciphertext: wrong shape, bad encoding, missing header fields, too large. */
  Malformed: 'Malformed',
  /** Authentication failed: the ciphertext or its header changed, or another key made it. */
  Tampered: 'Tampered',
  /** Authentic, but made for another namespace/name/key or for another purpose. */
  WrongBinding: 'WrongBinding',
  /** Sealed for a key this policy does not have (never had, or its retired record was pruned). */
  UnknownKey: 'UnknownKey',
  /** Made under a retired key whose material is gone. */
  RetiredKey: 'RetiredKey',
  /** The header names an algorithm that is not allowed or not the one of the key. */
  WrongAlgorithm: 'WrongAlgorithm',
  /** A sealed entry names a namespace/name binding that is not this Secret's. */
  InvalidBinding: 'InvalidBinding',
  /** The envelope store holds values but no wrapped data key. */
  DataKeyMissing: 'DataKeyMissing',
  /** A Secret the service reads (sealed target, envelope source) does not exist. */
  SecretNotFound: 'SecretNotFound',
  /** An envelope store carries no integrity tag (stripped, or written before tags existed). */
  NoIntegrityTag: 'NoIntegrityTag',
  /** An envelope store's integrity tag does not verify. */
  IntegrityMismatch: 'IntegrityMismatch',
  /** A Secret at an envelope store's name that the operator did not write for this service. */
  NotOperatorWritten: 'NotOperatorWritten',
  // Keys: why a KeyPolicy's key set cannot be used
  InvalidKeySet: 'InvalidKeySet',
  NoActiveKey: 'NoActiveKey',
  WrongPurpose: 'WrongPurpose',
  UnsupportedAlgorithm: 'UnsupportedAlgorithm',
  NotPublic: 'NotPublic',
  InvalidTransition: 'InvalidTransition',
  /** Wrapped data keys or sealed values name no key of the policy. */
  UnreadableCiphertext: 'UnreadableCiphertext',
  // At rest
  /** A volume's LUKS key Secret is gone; the operator never generates a replacement for an existing volume. */
  VolumeKeyMissing: 'VolumeKeyMissing',
  // Rotation failures
  /** The schedule's cron, interval, window or time zone does not parse. */
  InvalidSchedule: 'InvalidSchedule',
  /** A rotation kind the schedule asks for is not supported for its targets. */
  Unsupported: 'Unsupported',
  /** A target EncryptedService or its Certificate was deleted during the rotation. */
  TargetGone: 'TargetGone',
  /** The workload restart of a rotation step could not be written. */
  RestartFailed: 'RestartFailed',
  /** A target was not Ready when its rotation step needed it (before, or after re-issue). */
  TargetNotReady: 'TargetNotReady',
  /** cert-manager did not issue the rotated certificate within the step's timeout. */
  IssuanceTimeout: 'IssuanceTimeout',
  /** cert-manager could not issue the rotated certificate. */
  IssuanceFailed: 'IssuanceFailed',
  /** A key rotation did not finish within its timeout. */
  KeyRotationTimeout: 'KeyRotationTimeout',
  /** A CA rotation kept the old root: consumers still rely on it. */
  OldRootInUse: 'OldRootInUse',
} as const;
/** Whether `value` (e.g. read back from status) is a reason this operator writes. */
export function isReason(value: string | undefined): value is Reason {
  return value !== undefined && (Object.values(Reasons) as string[]).includes(value);
}
export type Reason = (typeof Reasons)[keyof typeof Reasons];
