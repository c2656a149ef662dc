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
  /** The key Secret was asked to be deleted while its keys are in use; a finalizer keeps it. */
  KeySecretDeleting: 'KeySecretDeleting',
  RewrapPending: 'RewrapPending',
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
} as const;
export type Reason = (typeof Reasons)[keyof typeof Reasons];
