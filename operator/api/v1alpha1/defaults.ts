// Two kinds of defaults live here. `with*Defaults` apply exactly the `default:` values of the CRD
// schemas, as the API server does on every write and read, so offline code (lockstep render, unit
// tests) sees the same objects the operator reads from the cluster; crds.test.ts and the e2e suite
// hold them to the CRDs. The `effective*` helpers resolve what the CRD descriptions promise for
// omitted fields that have no schema default because they depend on other fields or objects.
import type { IssuerRef, KeyAlgorithm, PrivateKeySpec, TLS12CipherSuite, TLSSettings, TLSVersion } from './common-types.js';
import { TLS12_CIPHER_SUITES } from './common-types.js';
import type { EncryptedService, EncryptedServiceSpec, TransitSpec, VolumeSpec } from './encrypted-service.js';
import type { KeyPolicySpec, KeyWrapAlgorithm, KeyWrapCurve, KeyWrapSpec } from './key-policy.js';
import type { RotationScheduleSpec } from './rotation-schedule.js';

export const CRD_DEFAULTS = {
  issuerKind: 'Issuer',
  issuerGroup: 'cert-manager.io',
  certificateDuration: '24h',
  trustDomain: 'cluster.local',
  hotReload: true,
  maxUnavailable: 1,
  portProtocol: 'TCP',
  egressRestrict: false,
  egressAllowDNS: true,
  volumeAccessModes: ['ReadWriteOnce'],
  volumeFsType: 'ext4',
  volumeRetain: true,
  awsVolumeType: 'gp3',
  gceVolumeType: 'pd-balanced',
  azureSkuName: 'Premium_LRS',
  longhornCipher: 'aes-xts-plain64',
  longhornHash: 'sha256',
  longhornKeySize: 256,
  longhornPbkdf: 'argon2i',
  longhornReplicas: 3,
  sealedSecretType: 'Opaque',
  deletionPolicy: 'Retain',
  keyWrapAlgorithm: 'RSA-OAEP-256',
  contentEncryption: 'A256GCM',
  maxCertificateDuration: '720h',
  policyKeyAlgorithm: 'ECDSA',
  managedCACommonName: 'Lockstep root CA',
  managedCADuration: '8760h',
  minTLSVersion: 'TLS1.2',
  keyRotationPeriod: '720h',
  retainDecryptOnly: 2,
  retireAfter: '2160h',
  auditSegmentSize: 256,
  caRotationDuration: '8760h',
  timeZone: 'UTC',
  canarySteps: [10, 50, 100],
  maxInFlight: 5,
  pauseBetweenSteps: '1m',
  verificationTimeout: '5m',
  verifyTLSHandshake: true,
  verifyDecrypt: true,
  autoRollback: true,
  emergency: false,
  paused: false,
} as const;

/** Defaults the descriptions promise where the schema cannot hold them. */
export const OPERATOR_DEFAULTS = {
  renewBeforePercentage: 33,
  keySize: { ECDSA: 256, RSA: 2048 } as Record<KeyAlgorithm, number | undefined>,
  keyWrapRsaKeySize: 3072,
  keyWrapCurve: 'P-256' as KeyWrapCurve,
} as const;

function issuerRefDefaults(ref: IssuerRef): IssuerRef {
  return { ...ref, kind: ref.kind ?? CRD_DEFAULTS.issuerKind, group: ref.group ?? CRD_DEFAULTS.issuerGroup };
}

function volumeDefaults(volume: VolumeSpec): VolumeSpec {
  const out: VolumeSpec = {
    ...volume,
    accessModes: volume.accessModes ?? [...CRD_DEFAULTS.volumeAccessModes],
    fsType: volume.fsType ?? CRD_DEFAULTS.volumeFsType,
    retain: volume.retain ?? CRD_DEFAULTS.volumeRetain,
  };
  if (volume.aws) out.aws = { ...volume.aws, type: volume.aws.type ?? CRD_DEFAULTS.awsVolumeType };
  if (volume.gce) out.gce = { ...volume.gce, type: volume.gce.type ?? CRD_DEFAULTS.gceVolumeType };
  if (volume.azure) out.azure = { ...volume.azure, skuName: volume.azure.skuName ?? CRD_DEFAULTS.azureSkuName };
  if (volume.longhorn) {
    out.longhorn = {
      ...volume.longhorn,
      cipher: volume.longhorn.cipher ?? CRD_DEFAULTS.longhornCipher,
      hash: volume.longhorn.hash ?? CRD_DEFAULTS.longhornHash,
      keySize: volume.longhorn.keySize ?? CRD_DEFAULTS.longhornKeySize,
      pbkdf: volume.longhorn.pbkdf ?? CRD_DEFAULTS.longhornPbkdf,
      numberOfReplicas: volume.longhorn.numberOfReplicas ?? CRD_DEFAULTS.longhornReplicas,
    };
  }
  return out;
}

/** The spec as the API server stores it: CRD schema defaults applied. Does not modify its input. */
export function withEncryptedServiceDefaults(spec: EncryptedServiceSpec): EncryptedServiceSpec {
  const out: EncryptedServiceSpec = {
    ...spec,
    ports: spec.ports.map((p) => ({ ...p, protocol: p.protocol ?? CRD_DEFAULTS.portProtocol })),
    deletionPolicy: spec.deletionPolicy ?? CRD_DEFAULTS.deletionPolicy,
  };
  const restart = spec.workload.restart;
  if (restart) {
    out.workload = {
      ...spec.workload,
      restart: {
        ...restart,
        hotReload: restart.hotReload ?? CRD_DEFAULTS.hotReload,
        maxUnavailable: restart.maxUnavailable ?? CRD_DEFAULTS.maxUnavailable,
      },
    };
  }
  const transit: TransitSpec = spec.transit ?? {};
  out.transit = {
    ...transit,
    duration: transit.duration ?? CRD_DEFAULTS.certificateDuration,
    trustDomain: transit.trustDomain ?? CRD_DEFAULTS.trustDomain,
  };
  if (transit.issuerRef) out.transit.issuerRef = issuerRefDefaults(transit.issuerRef);
  const access = spec.access ?? {};
  out.access = { ...access };
  if (access.egress) {
    out.access.egress = {
      ...access.egress,
      restrict: access.egress.restrict ?? CRD_DEFAULTS.egressRestrict,
      allowDNS: access.egress.allowDNS ?? CRD_DEFAULTS.egressAllowDNS,
    };
  }
  if (spec.atRest?.volumes) out.atRest = { ...spec.atRest, volumes: spec.atRest.volumes.map(volumeDefaults) };
  if (spec.secrets?.sealed) {
    out.secrets = {
      ...spec.secrets,
      sealed: spec.secrets.sealed.map((s) => ({ ...s, type: s.type ?? CRD_DEFAULTS.sealedSecretType })),
    };
  }
  return out;
}

/** The spec as the API server stores it: CRD schema defaults applied. Does not modify its input. */
export function withKeyPolicyDefaults(spec: KeyPolicySpec = {}): KeyPolicySpec {
  const certificates = spec.certificates ?? {};
  const out: KeyPolicySpec = {
    ...spec,
    keyWrap: {
      ...spec.keyWrap,
      algorithm: spec.keyWrap?.algorithm ?? CRD_DEFAULTS.keyWrapAlgorithm,
      content: spec.keyWrap?.content ?? CRD_DEFAULTS.contentEncryption,
    },
    certificates: {
      ...certificates,
      maxDuration: certificates.maxDuration ?? CRD_DEFAULTS.maxCertificateDuration,
      trustDomain: certificates.trustDomain ?? CRD_DEFAULTS.trustDomain,
      privateKey: { ...certificates.privateKey, algorithm: certificates.privateKey?.algorithm ?? CRD_DEFAULTS.policyKeyAlgorithm },
    },
    tls: { ...spec.tls, minVersion: spec.tls?.minVersion ?? CRD_DEFAULTS.minTLSVersion },
    rotation: {
      ...spec.rotation,
      period: spec.rotation?.period ?? CRD_DEFAULTS.keyRotationPeriod,
      retainDecryptOnly: spec.rotation?.retainDecryptOnly ?? CRD_DEFAULTS.retainDecryptOnly,
      retireAfter: spec.rotation?.retireAfter ?? CRD_DEFAULTS.retireAfter,
    },
    audit: { ...spec.audit, segmentSize: spec.audit?.segmentSize ?? CRD_DEFAULTS.auditSegmentSize },
  };
  if (certificates.allowedIssuers && out.certificates) out.certificates.allowedIssuers = certificates.allowedIssuers.map(issuerRefDefaults);
  const issuer = certificates.defaultIssuer;
  if (issuer && out.certificates) {
    out.certificates.defaultIssuer = { ...issuer };
    if (issuer.issuerRef) out.certificates.defaultIssuer.issuerRef = issuerRefDefaults(issuer.issuerRef);
    if (issuer.managedCA) {
      out.certificates.defaultIssuer.managedCA = {
        ...issuer.managedCA,
        commonName: issuer.managedCA.commonName ?? CRD_DEFAULTS.managedCACommonName,
        duration: issuer.managedCA.duration ?? CRD_DEFAULTS.managedCADuration,
      };
    }
  }
  return out;
}

/** The spec as the API server stores it: CRD schema defaults applied. Does not modify its input. */
export function withRotationScheduleDefaults(spec: RotationScheduleSpec): RotationScheduleSpec {
  const strategy = spec.strategy ?? {};
  const out: RotationScheduleSpec = {
    ...spec,
    strategy: {
      ...strategy,
      canarySteps: strategy.canarySteps ?? [...CRD_DEFAULTS.canarySteps],
      maxInFlight: strategy.maxInFlight ?? CRD_DEFAULTS.maxInFlight,
      pauseBetweenSteps: strategy.pauseBetweenSteps ?? CRD_DEFAULTS.pauseBetweenSteps,
      verification: {
        ...strategy.verification,
        timeout: strategy.verification?.timeout ?? CRD_DEFAULTS.verificationTimeout,
        tlsHandshake: strategy.verification?.tlsHandshake ?? CRD_DEFAULTS.verifyTLSHandshake,
        decrypt: strategy.verification?.decrypt ?? CRD_DEFAULTS.verifyDecrypt,
      },
      autoRollback: strategy.autoRollback ?? CRD_DEFAULTS.autoRollback,
    },
    emergency: spec.emergency ?? CRD_DEFAULTS.emergency,
    paused: spec.paused ?? CRD_DEFAULTS.paused,
  };
  if (spec.ca) {
    out.ca = { ...spec.ca, duration: spec.ca.duration ?? CRD_DEFAULTS.caRotationDuration };
    if (spec.ca.issuerRef) out.ca.issuerRef = issuerRefDefaults(spec.ca.issuerRef);
  }
  if (spec.schedule) out.schedule = { ...spec.schedule, timeZone: spec.schedule.timeZone ?? CRD_DEFAULTS.timeZone };
  return out;
}

/** Name of the Kubernetes Service (and of the certificate's DNS names) for an EncryptedService. */
export function serviceNameOf(service: Pick<EncryptedService, 'metadata' | 'spec'>): string {
  const name = service.spec.serviceName ?? service.metadata.name;
  if (!name) throw new Error('EncryptedService has neither spec.serviceName nor metadata.name');
  return name;
}

/** Namespace of the KeyPolicy an EncryptedService references. */
export function keyPolicyNamespaceOf(service: Pick<EncryptedService, 'metadata' | 'spec'>): string {
  const namespace = service.spec.keyPolicyRef.namespace ?? service.metadata.namespace;
  if (!namespace) throw new Error('EncryptedService has no namespace to resolve its keyPolicyRef in');
  return namespace;
}

export type Renewal = { renewBeforePercentage: number } | { renewBefore: string };

/** The one renewal form a certificate uses: the spec's, else renewBeforePercentage 33. */
export function effectiveRenewal(transit: TransitSpec | undefined): Renewal {
  if (transit?.renewBefore !== undefined) return { renewBefore: transit.renewBefore };
  return { renewBeforePercentage: transit?.renewBeforePercentage ?? OPERATOR_DEFAULTS.renewBeforePercentage };
}

export interface EffectivePrivateKey {
  algorithm: KeyAlgorithm;
  /** Undefined for Ed25519. */
  size?: number;
}

/**
 * The certificate key a service gets: its own transit.privateKey when it names an algorithm, else
 * the KeyPolicy's certificates.privateKey, else ECDSA; the size defaults per algorithm.
 */
export function effectivePrivateKey(service: PrivateKeySpec | undefined, policy: PrivateKeySpec | undefined): EffectivePrivateKey {
  const chosen = service?.algorithm ? service : policy?.algorithm ? policy : undefined;
  const algorithm = chosen?.algorithm ?? CRD_DEFAULTS.policyKeyAlgorithm;
  const size = chosen?.size ?? OPERATOR_DEFAULTS.keySize[algorithm];
  return size === undefined ? { algorithm } : { algorithm, size };
}

export interface EffectiveKeyWrap {
  algorithm: KeyWrapAlgorithm;
  content: 'A256GCM';
  rsaKeySize?: number;
  curve?: KeyWrapCurve;
}

/** The KEK parameters a KeyPolicy asks for, with the algorithm-specific defaults filled in. */
export function effectiveKeyWrap(keyWrap: KeyWrapSpec | undefined): EffectiveKeyWrap {
  const algorithm = keyWrap?.algorithm ?? CRD_DEFAULTS.keyWrapAlgorithm;
  const content = keyWrap?.content ?? CRD_DEFAULTS.contentEncryption;
  if (algorithm === 'RSA-OAEP-256') return { algorithm, content, rsaKeySize: keyWrap?.rsaKeySize ?? OPERATOR_DEFAULTS.keyWrapRsaKeySize };
  if (algorithm === 'ECDH-ES+A256KW') return { algorithm, content, curve: keyWrap?.curve ?? OPERATOR_DEFAULTS.keyWrapCurve };
  return { algorithm, content };
}

export interface EffectiveTLS {
  minVersion: TLSVersion;
  /** TLS 1.2 suites; empty when minVersion is TLS1.3. */
  cipherSuites: TLS12CipherSuite[];
}

/** A TLS policy with omitted fields resolved: TLS1.2 and every offered TLS 1.2 suite. */
export function effectiveTLS(tls: TLSSettings | undefined): EffectiveTLS {
  const minVersion = tls?.minVersion ?? CRD_DEFAULTS.minTLSVersion;
  if (minVersion === 'TLS1.3') return { minVersion, cipherSuites: [] };
  return { minVersion, cipherSuites: [...(tls?.cipherSuites ?? TLS12_CIPHER_SUITES)] };
}
