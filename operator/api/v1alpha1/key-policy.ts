// KeyPolicy: "how keys for these services are made, kept and retired". Mirrors crds/keypolicies.lockstep.dev.yaml.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { Condition, IssuerRef, PrivateKeySpec, TLSSettings } from './common-types.js';

export interface KeyPolicy {
  apiVersion?: string;
  kind?: string;
  metadata: V1ObjectMeta;
  /** CRD default: {}. */
  spec: KeyPolicySpec;
  status?: KeyPolicyStatus;
}

export type KeyWrapAlgorithm = 'A256KW' | 'RSA-OAEP-256' | 'ECDH-ES+A256KW';
export type ContentEncryption = 'A256GCM';
export type KeyWrapCurve = 'P-256' | 'P-384' | 'P-521';

export interface KeyWrapSpec {
  /** CRD default: RSA-OAEP-256 (A256KW has no public key, so it cannot seal). */
  algorithm?: KeyWrapAlgorithm;
  /** CRD default: A256GCM. */
  content?: ContentEncryption;
  /** RSA-OAEP-256 only; 3072 when omitted. */
  rsaKeySize?: 2048 | 3072 | 4096;
  /** ECDH-ES+A256KW only; P-256 when omitted. */
  curve?: KeyWrapCurve;
}

export interface ManagedCASpec {
  /** CRD default: "Lockstep root CA". */
  commonName?: string;
  /** Go duration. CRD default: 8760h. */
  duration?: string;
}

/** At most one form. */
export interface DefaultIssuerSpec {
  issuerRef?: IssuerRef;
  managedCA?: ManagedCASpec;
}

export interface CertificatePolicySpec {
  /** Go duration. CRD default: 720h. */
  maxDuration?: string;
  /** CRD default: {} (algorithm ECDSA). */
  privateKey?: PrivateKeySpec;
  defaultIssuer?: DefaultIssuerSpec;
  /**
   * Further issuers the services may name in transit.issuerRef; the default issuer is always
   * allowed. A ClusterIssuer also needs the administrator's grant (ANNOTATION_ALLOWED_NAMESPACES).
   */
  allowedIssuers?: IssuerRef[];
  /**
   * DNS names the services may add in transit.extraDNSNames beyond their own: exact names, or
   * `*.<suffix>` for one label in front of suffix (and the wildcard SAN `*.<suffix>` itself).
   */
  allowedDNSNames?: string[];
  /** SPIFFE trust domain the services' identities are in. CRD default: cluster.local. */
  trustDomain?: string;
}

export interface KeyRotationSpec {
  /** Go duration. CRD default: 720h. */
  period?: string;
  /** CRD default: 2. */
  retainDecryptOnly?: number;
  /** Go duration. CRD default: 2160h. */
  retireAfter?: string;
}

export interface AllowedSpec {
  /** "*" alone allows every namespace. The policy's own namespace when omitted. */
  namespaces?: string[];
  /** namespace/name entries; name may be "*". */
  serviceAccounts?: string[];
}

export interface AuditSpec {
  /** CRD default: 256. */
  segmentSize?: number;
}

/** Guardrails the API server enforces in the policy's namespace (manifests/admission.yaml reads them). */
export interface AdmissionSpec {
  requireEncryptedVolumes?: boolean;
  encryptedStorageClasses?: string[];
  requireSealedSecrets?: boolean;
  secretWriters?: string[];
  /** Treated as true when admission is set. */
  protectKeys?: boolean;
}

export interface KeyPolicySpec {
  keyWrap?: KeyWrapSpec;
  certificates?: CertificatePolicySpec;
  /** CRD default: {} (minVersion TLS1.2). */
  tls?: TLSSettings;
  rotation?: KeyRotationSpec;
  allowed?: AllowedSpec;
  audit?: AuditSpec;
  /**
   * What happens to the key Secret when the policy is deleted (after nothing is under its keys any
   * more). CRD default: Retain — a policy created again under the same name picks the keys up.
   */
  deletionPolicy?: KeyDeletionPolicy;
  admission?: AdmissionSpec;
  /** Where the KEKs live; absent means Secret. Immutable (CEL). */
  keyStore?: KeyStoreSpec;
}

export type KeyStoreType = 'Secret' | 'PKCS11';

export interface KeyStoreSpec {
  type: KeyStoreType;
  pkcs11?: { configSecretName: string };
}

/** The HSM config Secret's grant annotation (an administrator writes it, in the operator's namespace). */
export const ANNOTATION_HSM_ALLOWED_NAMESPACES = 'lockstep.dev/hsm-allowed-namespaces';

export type KeyDeletionPolicy = 'Retain' | 'Delete';

export type KeyState = 'active' | 'decrypt-only' | 'retired';

export interface KeyStatus {
  kid: string;
  state: KeyState;
  algorithm?: string;
  createdAt?: string;
  activatedAt?: string;
  deactivatedAt?: string;
  retiredAt?: string;
  wrappedObjects?: number;
}

export interface AuditHead {
  segment?: number;
  sequence?: number;
  /** Hex SHA-256 of the newest entry. */
  hash?: string;
}

export interface KeyPolicyStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  activeKid?: string;
  /** Secret or PKCS11. */
  keyStore?: KeyStoreType;
  /** kid of the active sealing key: the key the public JWKS ConfigMap must publish. */
  sealingKid?: string;
  /** RFC 7638 SHA-256 thumbprint (base64url) of that key's public half; `lockstep seal` checks the ConfigMap against it. */
  sealingKeyThumbprint?: string;
  keys?: KeyStatus[];
  lastRotation?: string;
  nextRotation?: string;
  keySecretName?: string;
  publicJwksConfigMap?: string;
  issuer?: { kind?: string; name?: string };
  auditHead?: AuditHead;
  lastError?: string;
}
