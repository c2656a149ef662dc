// EncryptedService: "this service is encrypted end to end". Mirrors crds/encryptedservices.lockstep.dev.yaml.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { Condition, GeneratedObjectRef, IssuerRef, LabelSelector, PrivateKeySpec, TLSSettings } from './common-types.js';

export interface EncryptedService {
  apiVersion?: string;
  kind?: string;
  metadata: V1ObjectMeta;
  spec: EncryptedServiceSpec;
  status?: EncryptedServiceStatus;
}

export interface EncryptedServiceSpec {
  workload: WorkloadSpec;
  /** metadata.name when omitted. */
  serviceName?: string;
  ports: TLSPort[];
  keyPolicyRef: KeyPolicyRef;
  /** CRD default: {} (so its own defaults apply). */
  transit?: TransitSpec;
  /** CRD default: {}. */
  access?: AccessSpec;
  atRest?: AtRestSpec;
  secrets?: SecretsSpec;
  /** CRD default: Retain. */
  deletionPolicy?: DeletionPolicy;
}

export type DeletionPolicy = 'Retain' | 'Delete';

export interface WorkloadSpec {
  selector: LabelSelector;
  serviceAccountName: string;
  restart?: RestartTarget;
}

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet';

export interface RestartTarget {
  kind: WorkloadKind;
  name: string;
  /** CRD default: true (no restart needed). */
  hotReload?: boolean;
  /** Count (>= 1) or percentage ("25%"). CRD default: 1. */
  maxUnavailable?: number | string;
}

export interface TLSPort {
  name: string;
  port: number;
  /** CRD default: TCP. */
  protocol?: 'TCP';
  appProtocol?: string;
}

export interface KeyPolicyRef {
  name: string;
  /** The EncryptedService's namespace when omitted. */
  namespace?: string;
}

export interface TransitSpec {
  /** The KeyPolicy's default issuer when omitted, else the operator's. */
  issuerRef?: IssuerRef;
  /** Go duration. CRD default: 24h. */
  duration?: string;
  renewBeforePercentage?: number;
  /** Go duration; exclusive with renewBeforePercentage. */
  renewBefore?: string;
  /** The KeyPolicy's certificates.privateKey when omitted. */
  privateKey?: PrivateKeySpec;
  /** CRD default: cluster.local. */
  trustDomain?: string;
  extraDNSNames?: string[];
  tls?: TLSSettings;
}

export interface ServicePeer {
  name: string;
  namespace?: string;
}

/** Exactly one form: service, or podSelector and/or namespaceSelector. */
export interface Peer {
  service?: ServicePeer;
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  /** Port names; all TLS ports when omitted. */
  ports?: string[];
}

export interface EgressSpec {
  /** CRD default: false. */
  restrict?: boolean;
  to?: Peer[];
  /** CRD default: true. */
  allowDNS?: boolean;
}

export interface AccessSpec {
  ingress?: Peer[];
  egress?: EgressSpec;
}

export type VolumeProvider = 'aws-ebs' | 'gce-pd' | 'azure-disk' | 'longhorn' | 'ceph-rbd';
export type AccessMode = 'ReadWriteOnce' | 'ReadWriteOncePod' | 'ReadOnlyMany' | 'ReadWriteMany';

export interface AwsVolumeSettings {
  kmsKeyId?: string;
  /** CRD default: gp3. */
  type?: 'gp3' | 'gp2' | 'io1' | 'io2' | 'st1' | 'sc1';
}

export interface GceVolumeSettings {
  kmsKeyName: string;
  /** CRD default: pd-balanced. */
  type?: 'pd-balanced' | 'pd-ssd' | 'pd-standard' | 'pd-extreme';
}

export interface AzureVolumeSettings {
  diskEncryptionSetID: string;
  /** CRD default: Premium_LRS. */
  skuName?: 'Premium_LRS' | 'StandardSSD_LRS' | 'Standard_LRS' | 'Premium_ZRS' | 'StandardSSD_ZRS' | 'PremiumV2_LRS';
}

export interface LonghornVolumeSettings {
  /** CRD default: aes-xts-plain64. */
  cipher?: 'aes-xts-plain64' | 'aes-cbc-essiv:sha256';
  /** CRD default: sha256. */
  hash?: 'sha256' | 'sha512';
  /** CRD default: 256. */
  keySize?: 256 | 512;
  /** CRD default: argon2i. */
  pbkdf?: 'argon2i' | 'argon2id' | 'pbkdf2';
  /** CRD default: 3. */
  numberOfReplicas?: number;
}

export interface CephVolumeSettings {
  clusterID: string;
  pool: string;
  encryptionKMSID?: string;
}

export interface VolumeSpec {
  name: string;
  provider: VolumeProvider;
  /** Kubernetes quantity, e.g. 10Gi. */
  size: string;
  /** CRD default: [ReadWriteOnce]. */
  accessModes?: AccessMode[];
  /** CRD default: ext4. */
  fsType?: 'ext4' | 'xfs';
  /** CRD default: true. */
  retain?: boolean;
  aws?: AwsVolumeSettings;
  gce?: GceVolumeSettings;
  azure?: AzureVolumeSettings;
  longhorn?: LonghornVolumeSettings;
  ceph?: CephVolumeSettings;
}

export interface AtRestSpec {
  volumes?: VolumeSpec[];
}

export interface EnvelopeSecret {
  name: string;
  /** All keys when omitted. */
  keys?: string[];
}

export interface SealedSecret {
  name: string;
  /** CRD default: Opaque. */
  type?: string;
  /** Secret key -> JWE compact serialization. */
  encryptedData: Record<string, string>;
}

export interface SecretsSpec {
  envelope?: EnvelopeSecret[];
  sealed?: SealedSecret[];
}

export interface CertificateStatus {
  name?: string;
  secretName?: string;
  serialNumber?: string;
  issuer?: string;
  notBefore?: string;
  notAfter?: string;
  renewalTime?: string;
}

export interface TrustBundleStatus {
  configMapName?: string;
  roots?: number;
}

export interface VolumeStatus {
  name: string;
  claimName?: string;
  storageClassName?: string;
  encrypted?: boolean;
  message?: string;
}

/** Continuous verification's own record (operator/verification); no key material. */
export interface VerificationStatus {
  /** Serial (uppercase hex) of the issued certificate a restart was made for: at most one restart per serial. */
  restartedForSerial?: string;
  /** kubectl.kubernetes.io/restartedAt value of that restart. */
  restartedAt?: string;
}

export type RevocationPhase = 'Revoking' | 'Reissuing' | 'Completed' | 'Failed';
export type RevocationReasonName = 'unspecified' | 'keyCompromise' | 'cACompromise' | 'affiliationChanged' | 'superseded' | 'cessationOfOperation';

/** The revocation controller's record of the last lockstep.dev/revoke request (operator/revocation/state.ts). */
export interface RevocationStatus {
  /** The lockstep.dev/revoke value this record serves: each distinct value is served once. */
  request?: string;
  phase?: RevocationPhase;
  reason?: RevocationReasonName;
  /** Serial (hex) of the certificate revoked by this request. */
  revokedSerial?: string;
  /** Serial of the certificate issued in its place. */
  newSerial?: string;
  /** Whether the revoked serial is on a CRL Lockstep signs and publishes (false: the issuer's CA is not one it can sign for). */
  crlPublished?: boolean;
  /** Whether re-issuance was asked of cert-manager (recorded after the ask; the ask itself is guarded). */
  reissueRequested?: boolean;
  /** Whether the workload is isolated by the quarantine NetworkPolicy. */
  quarantined?: boolean;
  requestedAt?: string;
  completedAt?: string;
  /** Machine-readable outcome of the last step (Failed: why). */
  outcome?: string;
  message?: string;
}

export interface EncryptedServiceStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  spiffeID?: string;
  certificate?: CertificateStatus;
  trustBundle?: TrustBundleStatus;
  keyIds?: string[];
  volumes?: VolumeStatus[];
  generatedObjects?: GeneratedObjectRef[];
  lastError?: string;
  verification?: VerificationStatus;
  revocation?: RevocationStatus;
}
