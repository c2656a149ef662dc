import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import type { V1OwnerReference, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import {
  API_VERSION, tlsSecretName, volumeClaimName, withEncryptedServiceDefaults,
  type DeletionPolicy, type EncryptedService, type VolumeSpec,
} from '../api/v1alpha1/index.js';
import {
  DEFAULT_STORAGE_CLASS_OPTIONS, buildLuksKeySecret, buildStorageClass, buildVolumeClaim, classifyExistingClaim,
  generateLuksPassphrase, isEncryptedStorageClass, madeByLockstep, luksKeySecretName, volumeDeletedWithService,
  type StorageClassOptions,
} from './storage.js';

const owner: V1OwnerReference = {
  apiVersion: API_VERSION, kind: 'EncryptedService', name: 'db', uid: 'uid-db', controller: true, blockOwnerDeletion: true,
};

function service(volumes: VolumeSpec[], deletionPolicy: DeletionPolicy = 'Retain', name = 'db', namespace = 'shop'): EncryptedService {
  return {
    apiVersion: API_VERSION,
    kind: 'EncryptedService',
    metadata: { name, namespace, uid: `uid-${name}` },
    spec: withEncryptedServiceDefaults({
      workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name },
      ports: [{ name: 'postgres', port: 5432 }],
      keyPolicyRef: { name: 'default' },
      atRest: { volumes },
      deletionPolicy,
    }),
  };
}

/** The first volume of the service, as the reconciler sees it (CRD defaults applied). */
function volumeOf(es: EncryptedService): VolumeSpec {
  const volume = es.spec.atRest?.volumes?.[0];
  if (!volume) throw new Error('no volume');
  return volume;
}

function storageClassFor(volume: VolumeSpec, options?: StorageClassOptions): V1StorageClass {
  const es = service([volume]);
  return buildStorageClass(es, volumeOf(es), options);
}

const longhornKey = {
  'csi.storage.k8s.io/provisioner-secret-name': '${pvc.name}-luks',
  'csi.storage.k8s.io/provisioner-secret-namespace': '${pvc.namespace}',
  'csi.storage.k8s.io/node-publish-secret-name': '${pvc.name}-luks',
  'csi.storage.k8s.io/node-publish-secret-namespace': '${pvc.namespace}',
  'csi.storage.k8s.io/node-stage-secret-name': '${pvc.name}-luks',
  'csi.storage.k8s.io/node-stage-secret-namespace': '${pvc.namespace}',
  'csi.storage.k8s.io/node-expand-secret-name': '${pvc.name}-luks',
  'csi.storage.k8s.io/node-expand-secret-namespace': '${pvc.namespace}',
};

const cephSecrets = (name: string, namespace: string) => ({
  'csi.storage.k8s.io/provisioner-secret-name': name,
  'csi.storage.k8s.io/provisioner-secret-namespace': namespace,
  'csi.storage.k8s.io/controller-expand-secret-name': name,
  'csi.storage.k8s.io/controller-expand-secret-namespace': namespace,
  'csi.storage.k8s.io/node-stage-secret-name': name,
  'csi.storage.k8s.io/node-stage-secret-namespace': namespace,
});

const providerCases: { name: string; volume: VolumeSpec; provisioner: string; parameters: Record<string, string>; reclaimPolicy?: string }[] = [
  {
    name: 'aws-ebs with the account default key',
    volume: { name: 'data', provider: 'aws-ebs', size: '10Gi' },
    provisioner: 'ebs.csi.aws.com',
    parameters: { type: 'gp3', encrypted: 'true', 'csi.storage.k8s.io/fstype': 'ext4' },
  },
  {
    name: 'aws-ebs with a KMS key',
    volume: { name: 'data', provider: 'aws-ebs', size: '10Gi', fsType: 'xfs', aws: { type: 'io2', kmsKeyId: 'alias/db' } },
    provisioner: 'ebs.csi.aws.com',
    parameters: { type: 'io2', encrypted: 'true', kmsKeyId: 'alias/db', 'csi.storage.k8s.io/fstype': 'xfs' },
  },
  {
    name: 'gce-pd with a Cloud KMS key',
    volume: { name: 'data', provider: 'gce-pd', size: '10Gi', gce: { kmsKeyName: 'projects/p/locations/l/keyRings/r/cryptoKeys/k' } },
    provisioner: 'pd.csi.storage.gke.io',
    parameters: {
      type: 'pd-balanced', 'disk-encryption-kms-key': 'projects/p/locations/l/keyRings/r/cryptoKeys/k', 'csi.storage.k8s.io/fstype': 'ext4',
    },
  },
  {
    name: 'azure-disk with a disk encryption set',
    volume: { name: 'data', provider: 'azure-disk', size: '10Gi', azure: { diskEncryptionSetID: '/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/diskEncryptionSets/d', skuName: 'StandardSSD_LRS' } },
    provisioner: 'disk.csi.azure.com',
    parameters: {
      skuName: 'StandardSSD_LRS',
      diskEncryptionSetID: '/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/diskEncryptionSets/d',
      'csi.storage.k8s.io/fstype': 'ext4',
    },
  },
  {
    name: 'longhorn with a per-volume LUKS key Secret',
    volume: { name: 'data', provider: 'longhorn', size: '10Gi', retain: false, longhorn: { numberOfReplicas: 2 } },
    provisioner: 'driver.longhorn.io',
    parameters: { numberOfReplicas: '2', encrypted: 'true', 'csi.storage.k8s.io/fstype': 'ext4', ...longhornKey },
    reclaimPolicy: 'Delete',
  },
  {
    name: 'ceph-rbd with image-metadata passphrases',
    volume: { name: 'data', provider: 'ceph-rbd', size: '10Gi', ceph: { clusterID: 'c1', pool: 'rbd' } },
    provisioner: 'rbd.csi.ceph.com',
    parameters: {
      clusterID: 'c1', pool: 'rbd', imageFeatures: 'layering', encrypted: 'true', 'csi.storage.k8s.io/fstype': 'ext4',
      ...cephSecrets('csi-rbd-secret', 'ceph-csi-rbd'),
    },
  },
  {
    name: 'ceph-rbd with a KMS',
    volume: { name: 'data', provider: 'ceph-rbd', size: '10Gi', ceph: { clusterID: 'c1', pool: 'rbd', encryptionKMSID: 'vault' } },
    provisioner: 'rbd.csi.ceph.com',
    parameters: {
      clusterID: 'c1', pool: 'rbd', imageFeatures: 'layering', encrypted: 'true', encryptionKMSID: 'vault', 'csi.storage.k8s.io/fstype': 'ext4',
      ...cephSecrets('csi-rbd-secret', 'ceph-csi-rbd'),
    },
  },
];

describe('buildStorageClass', () => {
  it.each(providerCases)('$name', ({ volume, provisioner, parameters, reclaimPolicy }) => {
    const sc = storageClassFor(volume);
    const hash = sc.metadata?.annotations?.['lockstep.dev/policy-hash'] ?? '';
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(sc).toEqual({
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: {
        name: `lockstep-${volume.provider}-${hash.slice(0, 10)}`,
        labels: { 'app.kubernetes.io/managed-by': 'lockstep', 'lockstep.dev/component': 'at-rest' },
        annotations: { 'lockstep.dev/policy-hash': hash },
      },
      provisioner,
      parameters,
      reclaimPolicy: reclaimPolicy ?? 'Retain',
      allowVolumeExpansion: true,
      volumeBindingMode: 'WaitForFirstConsumer',
    });
    // Cluster-scoped and shared: no namespace, no owner.
    expect(sc.metadata?.namespace).toBeUndefined();
    expect(sc.metadata?.ownerReferences).toBeUndefined();
    expect(isEncryptedStorageClass(sc)).toBe(true);
  });

  it('keeps the class name of a given setting stable across releases (a change would make a new class for every volume)', () => {
    const sc = storageClassFor({ name: 'data', provider: 'aws-ebs', size: '10Gi' });
    const canonical = '{"allowVolumeExpansion":true,"parameters":{"csi.storage.k8s.io/fstype":"ext4","encrypted":"true","type":"gp3"},'
      + '"provisioner":"ebs.csi.aws.com","reclaimPolicy":"Retain","volumeBindingMode":"WaitForFirstConsumer"}';
    expect(sc.metadata?.annotations?.['lockstep.dev/policy-hash']).toBe(createHash('sha256').update(canonical).digest('hex'));
    expect(sc.metadata?.name).toBe('lockstep-aws-ebs-617c13fbe3');
  });

  it('is shared by services with the same settings, whatever their names, sizes or defaulting', () => {
    const volume: VolumeSpec = { name: 'data', provider: 'longhorn', size: '10Gi' };
    const a = service([volume], 'Retain', 'db', 'shop');
    const b = service([{ ...volume, name: 'logs', size: '500Gi', accessModes: ['ReadWriteMany'] }], 'Delete', 'search', 'other');
    const name = buildStorageClass(a, volumeOf(a)).metadata?.name;
    expect(buildStorageClass(b, volumeOf(b)).metadata?.name).toBe(name);
    // The raw spec (no CRD defaults) names the same class: the finalizer may read either.
    expect(buildStorageClass(a, volume).metadata?.name).toBe(name);
  });

  const base: VolumeSpec = { name: 'data', provider: 'aws-ebs', size: '10Gi' };
  const changes: { name: string; volume: VolumeSpec; options?: StorageClassOptions }[] = [
    { name: 'KMS key', volume: { ...base, aws: { kmsKeyId: 'alias/other' } } },
    { name: 'volume type', volume: { ...base, aws: { type: 'gp2' } } },
    { name: 'filesystem', volume: { ...base, fsType: 'xfs' } },
    { name: 'retention', volume: { ...base, retain: false } },
    { name: 'provider', volume: { ...base, provider: 'longhorn' } },
  ];
  it.each(changes)('a changed $name makes a new class', ({ volume }) => {
    expect(storageClassFor(volume).metadata?.name).not.toBe(storageClassFor(base).metadata?.name);
  });

  it('changes with the Longhorn replica count and with the ceph-csi installation', () => {
    const longhorn: VolumeSpec = { name: 'data', provider: 'longhorn', size: '1Gi' };
    expect(storageClassFor({ ...longhorn, longhorn: { numberOfReplicas: 2 } }).metadata?.name).not.toBe(storageClassFor(longhorn).metadata?.name);
    const ceph: VolumeSpec = { name: 'data', provider: 'ceph-rbd', size: '1Gi', ceph: { clusterID: 'c1', pool: 'rbd' } };
    const rook: StorageClassOptions = {
      ceph: {
        driverName: 'rook-ceph.rbd.csi.ceph.com',
        provisionerSecret: { name: 'rook-csi-rbd-provisioner', namespace: 'rook-ceph' },
        controllerExpandSecret: { name: 'rook-csi-rbd-provisioner', namespace: 'rook-ceph' },
        nodeStageSecret: { name: 'rook-csi-rbd-node', namespace: 'rook-ceph' },
      },
    };
    const sc = storageClassFor(ceph, rook);
    expect(sc.metadata?.name).not.toBe(storageClassFor(ceph).metadata?.name);
    expect(sc.provisioner).toBe('rook-ceph.rbd.csi.ceph.com');
    expect(sc.parameters).toMatchObject({
      'csi.storage.k8s.io/provisioner-secret-name': 'rook-csi-rbd-provisioner',
      'csi.storage.k8s.io/controller-expand-secret-name': 'rook-csi-rbd-provisioner',
      'csi.storage.k8s.io/node-stage-secret-name': 'rook-csi-rbd-node',
      'csi.storage.k8s.io/node-stage-secret-namespace': 'rook-ceph',
    });
    expect(isEncryptedStorageClass(sc)).toBe(true);
    expect(storageClassFor(ceph, DEFAULT_STORAGE_CLASS_OPTIONS)).toEqual(storageClassFor(ceph));
  });

  it('refuses a provider without its required settings, naming the volume', () => {
    const es = service([]);
    expect(() => buildStorageClass(es, { name: 'data', provider: 'gce-pd', size: '1Gi' })).toThrow('EncryptedService shop/db volume data: provider gce-pd needs gce.kmsKeyName');
    expect(() => buildStorageClass(es, { name: 'data', provider: 'azure-disk', size: '1Gi' })).toThrow(/azure.diskEncryptionSetID/);
    expect(() => buildStorageClass(es, { name: 'data', provider: 'ceph-rbd', size: '1Gi' })).toThrow(/ceph.clusterID/);
  });
});

describe('buildVolumeClaim', () => {
  it('claims the volume on the given class, named <service>-<volume>', () => {
    const es = service([{ name: 'data', provider: 'aws-ebs', size: '20Gi', accessModes: ['ReadWriteOncePod'] }]);
    expect(buildVolumeClaim(es, volumeOf(es), 'lockstep-aws-ebs-0123456789', owner)).toEqual({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: {
        name: 'db-data',
        namespace: 'shop',
        labels: { 'app.kubernetes.io/managed-by': 'lockstep', 'lockstep.dev/encrypted-service': 'db', 'lockstep.dev/component': 'at-rest' },
      },
      spec: {
        accessModes: ['ReadWriteOncePod'],
        storageClassName: 'lockstep-aws-ebs-0123456789',
        resources: { requests: { storage: '20Gi' } },
      },
    });
  });

  it('defaults the access mode like the CRD', () => {
    const es = service([]);
    expect(buildVolumeClaim(es, { name: 'data', provider: 'aws-ebs', size: '1Gi' }, 'c').spec?.accessModes).toEqual(['ReadWriteOnce']);
  });

  const ownerCases: { retain?: boolean; deletionPolicy: DeletionPolicy; owned: boolean }[] = [
    { retain: undefined, deletionPolicy: 'Retain', owned: false },
    { retain: undefined, deletionPolicy: 'Delete', owned: false },
    { retain: true, deletionPolicy: 'Delete', owned: false },
    { retain: false, deletionPolicy: 'Retain', owned: false },
    { retain: false, deletionPolicy: 'Delete', owned: true },
  ];
  it.each(ownerCases)('retain $retain, deletionPolicy $deletionPolicy: deleted with the service = $owned', ({ retain, deletionPolicy, owned }) => {
    const volume: VolumeSpec = { name: 'data', provider: 'longhorn', size: '1Gi', ...(retain === undefined ? {} : { retain }) };
    const es = service([volume], deletionPolicy);
    expect(volumeDeletedWithService(es, volumeOf(es))).toBe(owned);
    expect(volumeDeletedWithService(es, volume)).toBe(owned);
    const expected = owned ? [owner] : undefined;
    expect(buildVolumeClaim(es, volumeOf(es), 'c', owner).metadata?.ownerReferences).toEqual(expected);
    expect(buildLuksKeySecret(es, volumeOf(es), 'p', owner).metadata?.ownerReferences).toEqual(expected);
    expect(buildVolumeClaim(es, volumeOf(es), 'c').metadata?.ownerReferences).toBeUndefined();
  });
});

function decoded(data: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

describe('buildLuksKeySecret', () => {
  it('holds the passphrase and the cryptsetup settings Longhorn reads', () => {
    const es = service([{ name: 'data', provider: 'longhorn', size: '1Gi', longhorn: { cipher: 'aes-cbc-essiv:sha256', hash: 'sha512', keySize: 512, pbkdf: 'pbkdf2' } }]);
    const secret = buildLuksKeySecret(es, volumeOf(es), 'correct-horse');
    expect({ ...secret, data: decoded(secret.data) }).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'db-data-luks',
        namespace: 'shop',
        labels: { 'app.kubernetes.io/managed-by': 'lockstep', 'lockstep.dev/encrypted-service': 'db', 'lockstep.dev/component': 'at-rest' },
      },
      type: 'Opaque',
      immutable: true,
      data: {
        CRYPTO_KEY_VALUE: 'correct-horse',
        CRYPTO_KEY_PROVIDER: 'secret',
        CRYPTO_KEY_CIPHER: 'aes-cbc-essiv:sha256',
        CRYPTO_KEY_HASH: 'sha512',
        CRYPTO_KEY_SIZE: '512',
        CRYPTO_PBKDF: 'pbkdf2',
      },
    });
  });

  it('uses the CRD defaults for omitted settings', () => {
    const secret = buildLuksKeySecret(service([]), { name: 'data', provider: 'longhorn', size: '1Gi' }, 'p');
    expect(decoded(secret.data)).toMatchObject({
      CRYPTO_KEY_CIPHER: 'aes-xts-plain64', CRYPTO_KEY_HASH: 'sha256', CRYPTO_KEY_SIZE: '256', CRYPTO_PBKDF: 'argon2i',
    });
  });

  it('is the Secret the StorageClass points Longhorn at', () => {
    const es = service([{ name: 'data', provider: 'longhorn', size: '1Gi' }]);
    const volume = volumeOf(es);
    const claim = buildVolumeClaim(es, volume, 'c');
    const secret = buildLuksKeySecret(es, volume, 'p');
    // external-provisioner expands ${pvc.name} and ${pvc.namespace} in the secret parameters.
    const expand = (template: string) => template
      .replace('${pvc.name}', claim.metadata?.name ?? '')
      .replace('${pvc.namespace}', claim.metadata?.namespace ?? '');
    const parameters = buildStorageClass(es, volume).parameters ?? {};
    for (const op of ['provisioner', 'node-publish', 'node-stage', 'node-expand']) {
      expect(expand(parameters[`csi.storage.k8s.io/${op}-secret-name`] ?? '')).toBe(secret.metadata?.name);
      expect(expand(parameters[`csi.storage.k8s.io/${op}-secret-namespace`] ?? '')).toBe(secret.metadata?.namespace);
    }
    expect(luksKeySecretName('db', 'data')).toBe(secret.metadata?.name);
  });

  it('cannot collide with the service\'s certificate Secret, even for a volume named "tls"', () => {
    const es = service([{ name: 'tls', provider: 'longhorn', size: '1Gi' }]);
    expect(volumeClaimName('db', 'tls')).toBe(tlsSecretName('db'));
    expect(buildLuksKeySecret(es, volumeOf(es), 'p').metadata?.name).not.toBe(tlsSecretName('db'));
  });

  it('is only for longhorn volumes, and refuses a name the API server would reject, without echoing the passphrase', () => {
    const es = service([]);
    expect(() => buildLuksKeySecret(es, { name: 'data', provider: 'aws-ebs', size: '1Gi' }, 'hunter2')).toThrow(/only longhorn/);
    const long = service([], 'Retain', 'a'.repeat(200));
    let message = '';
    try {
      buildLuksKeySecret(long, { name: 'b'.repeat(50), provider: 'longhorn', size: '1Gi' }, 'hunter2');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/exceeds 253 characters/);
    expect(message).not.toContain('hunter2');
  });
});

describe('generateLuksPassphrase', () => {
  it('is 32 random bytes, base64url', () => {
    const a = generateLuksPassphrase();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(generateLuksPassphrase()).not.toBe(a);
  });
});

function sc(provisioner: string, parameters?: Record<string, string>, name = 'some-class'): V1StorageClass {
  return { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name }, provisioner, ...(parameters ? { parameters } : {}) };
}

describe('isEncryptedStorageClass', () => {
  const cases: { name: string; class: V1StorageClass; encrypted: boolean }[] = [
    { name: 'EBS encrypted', class: sc('ebs.csi.aws.com', { type: 'gp3', encrypted: 'true' }), encrypted: true },
    { name: 'EBS with the key in other case (the driver lower-cases keys)', class: sc('ebs.csi.aws.com', { Encrypted: 'true' }), encrypted: true },
    { name: 'EBS not encrypted', class: sc('ebs.csi.aws.com', { type: 'gp3' }), encrypted: false },
    { name: 'EBS encrypted: "false"', class: sc('ebs.csi.aws.com', { encrypted: 'false' }), encrypted: false },
    { name: 'EBS encrypted: "True" (the driver wants "true")', class: sc('ebs.csi.aws.com', { encrypted: 'True' }), encrypted: false },
    { name: 'in-tree EBS encrypted', class: sc('kubernetes.io/aws-ebs', { encrypted: 'true' }), encrypted: true },
    { name: 'GCE PD with CMEK', class: sc('pd.csi.storage.gke.io', { 'disk-encryption-kms-key': 'projects/p/k' }), encrypted: true },
    { name: 'GCE PD with the platform key only', class: sc('pd.csi.storage.gke.io', { type: 'pd-ssd' }), encrypted: false },
    { name: 'Azure disk with a disk encryption set', class: sc('disk.csi.azure.com', { diskencryptionsetid: '/subscriptions/s/d' }), encrypted: true },
    { name: 'Azure disk with an empty disk encryption set', class: sc('disk.csi.azure.com', { diskEncryptionSetID: '' }), encrypted: false },
    { name: 'Longhorn encrypted', class: sc('driver.longhorn.io', { encrypted: 'true' }), encrypted: true },
    { name: 'Longhorn plain', class: sc('driver.longhorn.io', { numberOfReplicas: '3' }), encrypted: false },
    { name: 'Longhorn encrypted: "false"', class: sc('driver.longhorn.io', { encrypted: 'false' }), encrypted: false },
    { name: 'ceph-csi encrypted', class: sc('rbd.csi.ceph.com', { encrypted: 'true' }), encrypted: true },
    { name: 'Rook ceph-csi encrypted', class: sc('rook-ceph.rbd.csi.ceph.com', { encrypted: 'true' }), encrypted: true },
    { name: 'ceph-csi plain', class: sc('rbd.csi.ceph.com'), encrypted: false },
    { name: 'an unknown provisioner, whatever it says', class: sc('example.com/disk', { encrypted: 'true' }), encrypted: false },
    { name: 'local-path', class: sc('rancher.io/local-path'), encrypted: false },
  ];
  it.each(cases)('$name: $encrypted', ({ class: storageClass, encrypted }) => {
    expect(isEncryptedStorageClass(storageClass)).toBe(encrypted);
  });
});

function claim(storageClassName: string | undefined, phase?: string, annotations?: Record<string, string>): V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'db-data', namespace: 'shop', ...(annotations ? { annotations } : {}) },
    spec: { accessModes: ['ReadWriteOnce'], ...(storageClassName ? { storageClassName } : {}) },
    ...(phase ? { status: { phase } } : {}),
  };
}

describe('classifyExistingClaim', () => {
  const desired = storageClassFor({ name: 'data', provider: 'aws-ebs', size: '10Gi', aws: { kmsKeyId: 'alias/new' } });
  const desiredName = desired.metadata?.name ?? '';
  const older = storageClassFor({ name: 'data', provider: 'aws-ebs', size: '10Gi', aws: { kmsKeyId: 'alias/old' } });
  const olderName = older.metadata?.name ?? '';
  const gp2 = sc('ebs.csi.aws.com', { type: 'gp2' }, 'gp2');
  const theirs = sc('ebs.csi.aws.com', { type: 'gp3', encrypted: 'true' }, 'encrypted-gp3');

  const cases: { name: string; claim: V1PersistentVolumeClaim; class: V1StorageClass | undefined; state: string; mentions: string[] }[] = [
    { name: 'bound on the desired class', claim: claim(desiredName, 'Bound'), class: desired, state: 'ok', mentions: [desiredName] },
    { name: 'waiting for its first consumer', claim: claim(desiredName, 'Pending'), class: desired, state: 'pending', mentions: [desiredName] },
    { name: 'desired class not in the cache yet', claim: claim(desiredName), class: undefined, state: 'pending', mentions: [desiredName] },
    { name: 'volume lost', claim: claim(desiredName, 'Lost'), class: desired, state: 'lost', mentions: [desiredName, 'backup'] },
    { name: 'on an unencrypted class', claim: claim('gp2', 'Bound'), class: gp2, state: 'unencrypted', mentions: ['gp2', 'ebs.csi.aws.com', 'new name'] },
    { name: 'on a class that does not exist', claim: claim('gone', 'Bound'), class: undefined, state: 'unencrypted', mentions: ['gone', 'does not exist'] },
    { name: 'without any class', claim: claim(undefined, 'Bound'), class: undefined, state: 'unencrypted', mentions: ['no StorageClass'] },
    { name: 'class named in the legacy annotation', claim: claim(undefined, 'Bound', { 'volume.beta.kubernetes.io/storage-class': 'gp2' }), class: gp2, state: 'unencrypted', mentions: ['gp2'] },
    { name: 'on an older lockstep class', claim: claim(olderName, 'Bound'), class: older, state: 'other-class', mentions: [olderName, desiredName, 'earlier settings', 'never migrates'] },
    { name: 'on an encrypted class lockstep does not manage', claim: claim('encrypted-gp3', 'Bound'), class: theirs, state: 'other-class', mentions: ['encrypted-gp3', desiredName, 'does not manage'] },
    {
      name: 'on a class named like the desired one that does not encrypt',
      claim: claim(desiredName, 'Bound'),
      class: sc('ebs.csi.aws.com', { type: 'gp3' }, desiredName),
      state: 'unencrypted',
      mentions: [desiredName],
    },
  ];
  it.each(cases)('$name: $state', ({ claim: existing, class: storageClass, state, mentions }) => {
    const verdict = classifyExistingClaim(existing, storageClass, desiredName);
    expect(verdict.state).toBe(state);
    expect(verdict.message).toContain('PersistentVolumeClaim shop/db-data');
    for (const text of mentions) expect(verdict.message).toContain(text);
  });
});

describe('madeByLockstep', () => {
  const ours = storageClassFor({ name: 'data', provider: 'aws-ebs', size: '10Gi' });

  it('recognises the class buildStorageClass makes', () => {
    expect(madeByLockstep(ours)).toBe(true);
  });

  it("refuses someone else's class under the same name: no label, or a hash the name does not end with", () => {
    expect(madeByLockstep({ ...ours, metadata: { ...ours.metadata, labels: {} } })).toBe(false);
    expect(madeByLockstep({ ...ours, metadata: { ...ours.metadata, annotations: { 'lockstep.dev/policy-hash': 'f'.repeat(64) } } })).toBe(false);
    expect(madeByLockstep({ ...ours, metadata: { ...ours.metadata, annotations: {} } })).toBe(false);
  });
});
