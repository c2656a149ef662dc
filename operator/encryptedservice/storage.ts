// Encryption at rest for spec.atRest.volumes: the encrypted StorageClass each volume needs, the
// claim that uses it, the per-volume LUKS key for Longhorn, and the verdict on a claim that
// already exists. Pure apart from generateLuksPassphrase's randomness.
//
// StorageClasses are cluster-scoped and their parameters immutable, so a class is named after a
// hash of everything that defines it: services with the same settings share one class, and a
// changed setting yields a new class while existing volumes keep theirs. Classes carry no owner
// reference (owners would be many, in other namespaces, tenants among them); the reconciler removes
// one from its finalizer only when no other EncryptedService declares it and no claim in any
// namespace is on it, so one tenant's deletion never takes another's class away.
import { createHash, randomBytes } from 'node:crypto';
import type { V1OwnerReference, V1PersistentVolumeClaim, V1Secret, V1StorageClass } from '@kubernetes/client-node';
import {
  ANNOTATION_POLICY_HASH, CRD_DEFAULTS, LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY_VALUE, volumeClaimName,
  type EncryptedService, type VolumeProvider, type VolumeSpec,
} from '../api/v1alpha1/index.js';
import { canonicalJson } from '../audit/canonical-json.js';
import { childLabels } from './children.js';

export interface SecretRef {
  name: string;
  namespace: string;
}

/** Where ceph-csi runs. The CRD has no fields for it (it is a property of the cluster, not of a
 * service), so the operator takes it from its own configuration. */
export interface CephRbdOptions {
  /** rbd.csi.ceph.com for the ceph-csi Helm chart; Rook registers <namespace>.rbd.csi.ceph.com. */
  driverName: string;
  /** Ceph credentials (userID/userKey) for CreateVolume and DeleteVolume. */
  provisionerSecret: SecretRef;
  /** Credentials for ControllerExpandVolume. */
  controllerExpandSecret: SecretRef;
  /** Credentials for NodeStageVolume (mapping the image and opening its LUKS layer). */
  nodeStageSecret: SecretRef;
}

export interface StorageClassOptions {
  ceph: CephRbdOptions;
}

const CEPH_CSI_SECRET: SecretRef = { name: 'csi-rbd-secret', namespace: 'ceph-csi-rbd' };

/** ceph-csi as its Helm chart installs it: one csi-rbd-secret in the ceph-csi-rbd namespace. */
export const DEFAULT_STORAGE_CLASS_OPTIONS: StorageClassOptions = {
  ceph: {
    driverName: 'rbd.csi.ceph.com',
    provisionerSecret: CEPH_CSI_SECRET,
    controllerExpandSecret: CEPH_CSI_SECRET,
    nodeStageSecret: CEPH_CSI_SECRET,
  },
};

export const PROVISIONERS = {
  'aws-ebs': 'ebs.csi.aws.com',
  'gce-pd': 'pd.csi.storage.gke.io',
  'azure-disk': 'disk.csi.azure.com',
  longhorn: 'driver.longhorn.io',
  'ceph-rbd': DEFAULT_STORAGE_CLASS_OPTIONS.ceph.driverName,
} as const satisfies Record<VolumeProvider, string>;

const CSI = 'csi.storage.k8s.io';
const FSTYPE = `${CSI}/fstype`;

/** Suffix of a Longhorn volume's LUKS key Secret after the claim name. A bare claim name could
 * collide with another Secret of the service: a volume named "tls" has the claim <name>-tls, the
 * name of the certificate Secret. */
export const LUKS_SECRET_SUFFIX = '-luks';
/** What the StorageClass's secret parameters resolve (external-provisioner expands ${pvc.*}). */
const LUKS_SECRET_NAME_TEMPLATE = `\${pvc.name}${LUKS_SECRET_SUFFIX}`;
const LUKS_SECRET_NAMESPACE_TEMPLATE = '${pvc.namespace}';
/** Longhorn reads the key at provisioning, staging, publishing and (online) expansion. */
const LONGHORN_SECRET_OPERATIONS = ['provisioner', 'node-publish', 'node-stage', 'node-expand'] as const;

const MAX_NAME_LENGTH = 253;

/** Name of the Secret holding a Longhorn volume's LUKS passphrase. */
export function luksKeySecretName(encryptedServiceName: string, volumeName: string): string {
  return `${volumeClaimName(encryptedServiceName, volumeName)}${LUKS_SECRET_SUFFIX}`;
}

function volumeRef(es: EncryptedService, volume: VolumeSpec): string {
  return `EncryptedService ${es.metadata.namespace ?? ''}/${es.metadata.name ?? ''} volume ${volume.name}`;
}

function secretParameters(operation: string, ref: SecretRef): Record<string, string> {
  return { [`${CSI}/${operation}-secret-name`]: ref.name, [`${CSI}/${operation}-secret-namespace`]: ref.namespace };
}

// Every omitted setting is resolved to its CRD default here as well, so a volume read before or
// after defaulting hashes to the same class.
function storageClassParameters(es: EncryptedService, volume: VolumeSpec, options: StorageClassOptions): Record<string, string> {
  const fsType = { [FSTYPE]: volume.fsType ?? CRD_DEFAULTS.volumeFsType };
  switch (volume.provider) {
    case 'aws-ebs': {
      const aws = volume.aws ?? {};
      return {
        type: aws.type ?? CRD_DEFAULTS.awsVolumeType,
        encrypted: 'true',
        ...(aws.kmsKeyId ? { kmsKeyId: aws.kmsKeyId } : {}),
        ...fsType,
      };
    }
    case 'gce-pd': {
      if (!volume.gce) throw new Error(`${volumeRef(es, volume)}: provider gce-pd needs gce.kmsKeyName`);
      return {
        type: volume.gce.type ?? CRD_DEFAULTS.gceVolumeType,
        'disk-encryption-kms-key': volume.gce.kmsKeyName,
        ...fsType,
      };
    }
    case 'azure-disk': {
      if (!volume.azure) throw new Error(`${volumeRef(es, volume)}: provider azure-disk needs azure.diskEncryptionSetID`);
      return {
        skuName: volume.azure.skuName ?? CRD_DEFAULTS.azureSkuName,
        diskEncryptionSetID: volume.azure.diskEncryptionSetID,
        ...fsType,
      };
    }
    case 'longhorn': {
      const key: SecretRef = { name: LUKS_SECRET_NAME_TEMPLATE, namespace: LUKS_SECRET_NAMESPACE_TEMPLATE };
      return {
        numberOfReplicas: String(volume.longhorn?.numberOfReplicas ?? CRD_DEFAULTS.longhornReplicas),
        encrypted: 'true',
        ...fsType,
        ...Object.assign({}, ...LONGHORN_SECRET_OPERATIONS.map((op) => secretParameters(op, key))),
      };
    }
    case 'ceph-rbd': {
      if (!volume.ceph) throw new Error(`${volumeRef(es, volume)}: provider ceph-rbd needs ceph.clusterID and ceph.pool`);
      return {
        clusterID: volume.ceph.clusterID,
        pool: volume.ceph.pool,
        // The one image feature every kernel RBD client maps.
        imageFeatures: 'layering',
        encrypted: 'true',
        ...(volume.ceph.encryptionKMSID ? { encryptionKMSID: volume.ceph.encryptionKMSID } : {}),
        ...fsType,
        ...secretParameters('provisioner', options.ceph.provisionerSecret),
        ...secretParameters('controller-expand', options.ceph.controllerExpandSecret),
        ...secretParameters('node-stage', options.ceph.nodeStageSecret),
      };
    }
  }
}

function provisionerOf(volume: VolumeSpec, options: StorageClassOptions): string {
  return volume.provider === 'ceph-rbd' ? options.ceph.driverName : PROVISIONERS[volume.provider];
}

/**
 * The encrypted StorageClass a volume needs, named `lockstep-<provider>-<hash>` after everything
 * that defines it and annotated with the full hash. Depends only on the volume's settings (and
 * the operator's ceph-csi options), never on the service: identical settings share one class.
 */
export function buildStorageClass(
  es: EncryptedService,
  volume: VolumeSpec,
  options: StorageClassOptions = DEFAULT_STORAGE_CLASS_OPTIONS,
): V1StorageClass {
  const definition = {
    provisioner: provisionerOf(volume, options),
    parameters: storageClassParameters(es, volume, options),
    // Retain keeps the disk when its claim is deleted: the volume outlives mistakes.
    reclaimPolicy: (volume.retain ?? CRD_DEFAULTS.volumeRetain) ? 'Retain' : 'Delete',
    allowVolumeExpansion: true,
    // Provision in the zone of the pod that first mounts the claim, not in an arbitrary one.
    volumeBindingMode: 'WaitForFirstConsumer',
  };
  const hash = createHash('sha256').update(canonicalJson(definition)).digest('hex');
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: {
      name: `lockstep-${volume.provider}-${hash.slice(0, 10)}`,
      // No per-service label: the class is shared; the reconciler tracks its users itself.
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_COMPONENT]: 'at-rest' },
      annotations: { [ANNOTATION_POLICY_HASH]: hash },
    },
    ...definition,
  };
}

/**
 * Whether a volume's claim and key go when the EncryptedService is deleted: only scratch volumes
 * (retain: false) of a service with deletionPolicy Delete. Everything else must survive the
 * service, so it gets no owner reference for the garbage collector to follow.
 */
export function volumeDeletedWithService(es: EncryptedService, volume: VolumeSpec): boolean {
  return (volume.retain ?? CRD_DEFAULTS.volumeRetain) === false
    && (es.spec.deletionPolicy ?? CRD_DEFAULTS.deletionPolicy) === 'Delete';
}

function ownerReferences(es: EncryptedService, volume: VolumeSpec, owner: V1OwnerReference | undefined) {
  return owner && volumeDeletedWithService(es, volume) ? { ownerReferences: [{ ...owner }] } : {};
}

function namespaceOf(es: EncryptedService): string {
  const namespace = es.metadata.namespace;
  if (!namespace) throw new Error(`EncryptedService ${es.metadata.name ?? ''} has no namespace`);
  return namespace;
}

/** The claim for a volume on `storageClassName`. `owner` is attached only when
 * volumeDeletedWithService says the claim goes with the service. */
export function buildVolumeClaim(
  es: EncryptedService,
  volume: VolumeSpec,
  storageClassName: string,
  owner?: V1OwnerReference,
): V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: volumeClaimName(es.metadata.name ?? '', volume.name),
      namespace: namespaceOf(es),
      labels: childLabels(es, 'at-rest'),
      ...ownerReferences(es, volume, owner),
    },
    spec: {
      accessModes: [...(volume.accessModes ?? CRD_DEFAULTS.volumeAccessModes)],
      storageClassName,
      resources: { requests: { storage: volume.size } },
    },
  };
}

/** A LUKS passphrase: 32 random bytes, base64url. */
export function generateLuksPassphrase(): string {
  return randomBytes(32).toString('base64url');
}

function base64(value: string): string {
  return Buffer.from(value, 'utf8').toString('base64');
}

/**
 * The Secret Longhorn reads a volume's LUKS passphrase and cryptsetup settings from. Create it
 * once, before the claim, and never overwrite it: a replaced passphrase makes the volume
 * unreadable. It is immutable for the same reason (only deleting it can change it). `owner`
 * follows the claim's rule (volumeDeletedWithService): a kept volume keeps its key.
 */
export function buildLuksKeySecret(
  es: EncryptedService,
  volume: VolumeSpec,
  passphrase: string,
  owner?: V1OwnerReference,
): V1Secret {
  if (volume.provider !== 'longhorn') {
    throw new Error(`${volumeRef(es, volume)}: only longhorn volumes take a LUKS key Secret, not ${volume.provider}`);
  }
  const name = luksKeySecretName(es.metadata.name ?? '', volume.name);
  if (name.length > MAX_NAME_LENGTH) {
    throw new Error(`${volumeRef(es, volume)}: the LUKS key Secret name ${name.slice(0, 40)}... exceeds ${MAX_NAME_LENGTH} characters; shorten the volume name or metadata.name`);
  }
  const settings = volume.longhorn ?? {};
  const data: Record<string, string> = {
    CRYPTO_KEY_VALUE: passphrase,
    // "secret": the passphrase is the value above (Longhorn's only provider).
    CRYPTO_KEY_PROVIDER: 'secret',
    CRYPTO_KEY_CIPHER: settings.cipher ?? CRD_DEFAULTS.longhornCipher,
    CRYPTO_KEY_HASH: settings.hash ?? CRD_DEFAULTS.longhornHash,
    CRYPTO_KEY_SIZE: String(settings.keySize ?? CRD_DEFAULTS.longhornKeySize),
    CRYPTO_PBKDF: settings.pbkdf ?? CRD_DEFAULTS.longhornPbkdf,
  };
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace: namespaceOf(es),
      labels: childLabels(es, 'at-rest'),
      ...ownerReferences(es, volume, owner),
    },
    type: 'Opaque',
    immutable: true,
    // data, not stringData: the stored object then equals what was sent.
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, base64(v)])),
  };
}

type Parameters = Record<string, string>;

// Cloud drivers lower-case parameter keys before matching them; Longhorn and ceph-csi do not.
function caseInsensitive(parameters: Parameters, key: string): string | undefined {
  const wanted = key.toLowerCase();
  return Object.entries(parameters).find(([k]) => k.toLowerCase() === wanted)?.[1];
}

// "Encrypted" means what lockstep provisions: EBS encryption, or a customer-managed key on GCE
// and Azure (whose disks are otherwise encrypted only with the platform's own key), or a LUKS
// layer for Longhorn and Ceph. Only the exact value "true" counts: when a driver would read
// something else differently, the class is reported rather than trusted.
const ENCRYPTION_MARKERS: Record<string, (parameters: Parameters) => boolean> = {
  'ebs.csi.aws.com': (p) => caseInsensitive(p, 'encrypted') === 'true',
  // The in-tree plugin (and CSI migration, which maps it to ebs.csi.aws.com) takes the same parameter.
  'kubernetes.io/aws-ebs': (p) => caseInsensitive(p, 'encrypted') === 'true',
  'pd.csi.storage.gke.io': (p) => Boolean(caseInsensitive(p, 'disk-encryption-kms-key')),
  'disk.csi.azure.com': (p) => Boolean(caseInsensitive(p, 'diskEncryptionSetID')),
  'driver.longhorn.io': (p) => p.encrypted === 'true',
  'rbd.csi.ceph.com': (p) => p.encrypted === 'true',
};

function encryptionMarker(provisioner: string): ((parameters: Parameters) => boolean) | undefined {
  // Rook names its ceph-csi driver <operator namespace>.rbd.csi.ceph.com.
  const key = provisioner.endsWith('.rbd.csi.ceph.com') ? 'rbd.csi.ceph.com' : provisioner;
  return ENCRYPTION_MARKERS[key];
}

/** Whether a StorageClass's parameters ask its provisioner to encrypt volumes. Unknown
 * provisioners count as unencrypted: lockstep cannot vouch for them. */
export function isEncryptedStorageClass(sc: V1StorageClass): boolean {
  const marker = encryptionMarker(sc.provisioner);
  return marker ? marker(sc.parameters ?? {}) : false;
}

function isLockstepClass(sc: V1StorageClass): boolean {
  return sc.metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY_VALUE && Boolean(sc.metadata?.annotations?.[ANNOTATION_POLICY_HASH]);
}

/**
 * Whether a live StorageClass is one buildStorageClass made under its name: Lockstep's label and
 * a definition hash its name ends with. Anything else under such a name is someone else's, and
 * is neither applied over (server-side apply would take it over) nor deleted.
 */
export function madeByLockstep(sc: V1StorageClass): boolean {
  const hash = sc.metadata?.annotations?.[ANNOTATION_POLICY_HASH] ?? '';
  return isLockstepClass(sc) && hash.length >= 10 && (sc.metadata?.name ?? '').endsWith(`-${hash.slice(0, 10)}`);
}

export type ClaimState = 'ok' | 'pending' | 'lost' | 'unencrypted' | 'other-class';

export interface ClaimVerdict {
  state: ClaimState;
  /** Names the claim and its class and says what to do; safe for status and events. */
  message: string;
}

/** Set by Kubernetes before spec.storageClassName existed, and still honoured. */
const LEGACY_CLASS_ANNOTATION = 'volume.beta.kubernetes.io/storage-class';

const MIGRATE = 'lockstep never modifies or moves an existing claim: to encrypt the data, add a volume with a new name to spec.atRest.volumes, copy the data into its claim, then remove the old volume and delete the old claim';

/**
 * What an existing claim with a volume's name means: on the class lockstep wants (ok, pending
 * until a pod first uses it, or lost), on an unencrypted or unknown class (unencrypted), or on
 * another encrypted class such as one from earlier settings (other-class). `storageClass` is the
 * claim's class as read from the cluster, undefined when it does not exist.
 */
export function classifyExistingClaim(
  claim: V1PersistentVolumeClaim,
  storageClass: V1StorageClass | undefined,
  desiredClassName: string,
): ClaimVerdict {
  const claimRef = `PersistentVolumeClaim ${claim.metadata?.namespace ?? ''}/${claim.metadata?.name ?? ''}`;
  const className = claim.spec?.storageClassName || claim.metadata?.annotations?.[LEGACY_CLASS_ANNOTATION];
  if (!className) {
    return { state: 'unencrypted', message: `${claimRef} has no StorageClass, so its encryption cannot be verified; ${MIGRATE}` };
  }
  if (storageClass && !isEncryptedStorageClass(storageClass)) {
    return {
      state: 'unencrypted',
      message: `${claimRef} is on StorageClass ${className} (${storageClass.provisioner}), which does not encrypt volumes; ${MIGRATE}`,
    };
  }
  if (className !== desiredClassName) {
    if (!storageClass) {
      return { state: 'unencrypted', message: `${claimRef} is on StorageClass ${className}, which does not exist, so its encryption cannot be verified; ${MIGRATE}` };
    }
    const origin = isLockstepClass(storageClass)
      ? `an encrypted StorageClass lockstep made for earlier settings`
      : `an encrypted StorageClass lockstep does not manage`;
    return {
      state: 'other-class',
      message: `${claimRef} is on ${className}, ${origin}; the current settings use ${desiredClassName}. StorageClass parameters are immutable and lockstep never migrates data, so the claim keeps its class: to apply the new settings, add a volume with a new name, copy the data, then remove the old volume`,
    };
  }
  // The desired class may be missing from a cache that has not seen it yet; its name is a hash
  // of encrypted parameters, so it is encrypted by construction.
  switch (claim.status?.phase) {
    case 'Bound':
      return { state: 'ok', message: `${claimRef} is bound on encrypted StorageClass ${className}` };
    case 'Lost':
      return { state: 'lost', message: `${claimRef} on encrypted StorageClass ${className} has lost its PersistentVolume; restore the volume from a backup` };
    default:
      return {
        state: 'pending',
        message: `${claimRef} on encrypted StorageClass ${className} is waiting for its volume, which is provisioned when a pod first uses the claim`,
      };
  }
}
