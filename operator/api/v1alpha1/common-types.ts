// Types shared by the three kinds; each mirrors a schema fragment of crds/*.yaml.
import type { ConditionStatus } from './conditions.js';

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export type IssuerKind = 'Issuer' | 'ClusterIssuer';

export interface IssuerRef {
  name: string;
  /** CRD default: Issuer. */
  kind?: IssuerKind;
  /** CRD default: cert-manager.io. */
  group?: string;
}

export type KeyAlgorithm = 'ECDSA' | 'RSA' | 'Ed25519';

export interface PrivateKeySpec {
  algorithm?: KeyAlgorithm;
  /** Bits: RSA 2048/3072/4096, ECDSA 256/384, never for Ed25519. */
  size?: number;
}

export type TLSVersion = 'TLS1.2' | 'TLS1.3';

export const TLS12_CIPHER_SUITES = [
  'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
  'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
] as const;
export type TLS12CipherSuite = (typeof TLS12_CIPHER_SUITES)[number];

export interface TLSSettings {
  minVersion?: TLSVersion;
  /** TLS 1.2 suites only; every suite in TLS12_CIPHER_SUITES when omitted. */
  cipherSuites?: TLS12CipherSuite[];
}

/** A reference to an object the operator generated. */
export interface GeneratedObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}
