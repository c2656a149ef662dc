import { describe, expect, it } from '@jest/globals';
import {
  effectiveKeyWrap, effectivePrivateKey, effectiveRenewal, effectiveTLS, keyPolicyNamespaceOf, serviceNameOf,
  withEncryptedServiceDefaults, withKeyPolicyDefaults, withRotationScheduleDefaults,
} from './defaults.js';
import type { EncryptedServiceSpec } from './encrypted-service.js';

const minimalService: EncryptedServiceSpec = {
  workload: { selector: { matchLabels: { app: 'api' } }, serviceAccountName: 'api' },
  ports: [{ name: 'https', port: 8443 }],
  keyPolicyRef: { name: 'default' },
};

describe('withEncryptedServiceDefaults', () => {
  it('fills the schema defaults of a minimal spec', () => {
    expect(withEncryptedServiceDefaults(minimalService)).toEqual({
      ...minimalService,
      ports: [{ name: 'https', port: 8443, protocol: 'TCP' }],
      transit: { duration: '24h', trustDomain: 'cluster.local' },
      access: {},
      deletionPolicy: 'Retain',
    });
  });

  it('keeps values the user set and does not modify its input', () => {
    const spec: EncryptedServiceSpec = {
      ...minimalService,
      transit: { duration: '2h', trustDomain: 'prod.example', issuerRef: { name: 'ca', kind: 'ClusterIssuer' } },
      deletionPolicy: 'Delete',
      atRest: { volumes: [{ name: 'data', provider: 'longhorn', size: '1Gi', retain: false, longhorn: { keySize: 512 } }] },
    };
    const before = structuredClone(spec);
    const out = withEncryptedServiceDefaults(spec);
    expect(spec).toEqual(before);
    expect(out.transit).toEqual({ duration: '2h', trustDomain: 'prod.example', issuerRef: { name: 'ca', kind: 'ClusterIssuer', group: 'cert-manager.io' } });
    expect(out.deletionPolicy).toBe('Delete');
    expect(out.atRest?.volumes?.[0]).toEqual({
      name: 'data',
      provider: 'longhorn',
      size: '1Gi',
      retain: false,
      accessModes: ['ReadWriteOnce'],
      fsType: 'ext4',
      longhorn: { keySize: 512, cipher: 'aes-xts-plain64', hash: 'sha256', pbkdf: 'argon2i', numberOfReplicas: 3 },
    });
  });
});

describe('withKeyPolicyDefaults', () => {
  it('turns an empty spec into the documented policy', () => {
    expect(withKeyPolicyDefaults()).toEqual({
      keyWrap: { algorithm: 'RSA-OAEP-256', content: 'A256GCM' },
      certificates: { maxDuration: '720h', trustDomain: 'cluster.local', privateKey: { algorithm: 'ECDSA' } },
      tls: { minVersion: 'TLS1.2' },
      rotation: { period: '720h', retainDecryptOnly: 2, retireAfter: '2160h' },
      audit: { segmentSize: 256 },
    });
  });
});

describe('withRotationScheduleDefaults', () => {
  it('defaults the strategy to canary steps 10/50/100 with verification and rollback', () => {
    const out = withRotationScheduleDefaults({ targets: { names: ['api'] }, rotate: ['certificates'], schedule: { cron: '0 2 * * *' } });
    expect(out.strategy).toEqual({
      canarySteps: [10, 50, 100],
      maxInFlight: 5,
      pauseBetweenSteps: '1m',
      verification: { timeout: '5m', tlsHandshake: true, decrypt: true },
      autoRollback: true,
    });
    expect(out.schedule).toEqual({ cron: '0 2 * * *', timeZone: 'UTC' });
    expect(out.emergency).toBe(false);
    expect(out.paused).toBe(false);
    expect(out.ca).toBeUndefined();
  });
});

describe('effective values', () => {
  it('names the Service after the object unless serviceName is set', () => {
    expect(serviceNameOf({ metadata: { name: 'api' }, spec: minimalService })).toBe('api');
    expect(serviceNameOf({ metadata: { name: 'api' }, spec: { ...minimalService, serviceName: 'backend' } })).toBe('backend');
    expect(() => serviceNameOf({ metadata: {}, spec: minimalService })).toThrow();
  });

  it('resolves the KeyPolicy namespace from the reference or the object', () => {
    expect(keyPolicyNamespaceOf({ metadata: { namespace: 'shop' }, spec: minimalService })).toBe('shop');
    expect(keyPolicyNamespaceOf({ metadata: { namespace: 'shop' }, spec: { ...minimalService, keyPolicyRef: { name: 'p', namespace: 'security' } } })).toBe(
      'security',
    );
  });

  it('uses exactly one renewal form', () => {
    expect(effectiveRenewal(undefined)).toEqual({ renewBeforePercentage: 33 });
    expect(effectiveRenewal({ renewBeforePercentage: 50 })).toEqual({ renewBeforePercentage: 50 });
    expect(effectiveRenewal({ renewBefore: '8h' })).toEqual({ renewBefore: '8h' });
  });

  it('takes the service key, else the policy key, else ECDSA P-256', () => {
    expect(effectivePrivateKey(undefined, undefined)).toEqual({ algorithm: 'ECDSA', size: 256 });
    expect(effectivePrivateKey(undefined, { algorithm: 'RSA' })).toEqual({ algorithm: 'RSA', size: 2048 });
    expect(effectivePrivateKey({ algorithm: 'ECDSA', size: 384 }, { algorithm: 'RSA', size: 4096 })).toEqual({ algorithm: 'ECDSA', size: 384 });
    expect(effectivePrivateKey({}, { algorithm: 'Ed25519' })).toEqual({ algorithm: 'Ed25519' });
  });

  it('fills algorithm-specific key-wrap parameters', () => {
    expect(effectiveKeyWrap(undefined)).toEqual({ algorithm: 'RSA-OAEP-256', content: 'A256GCM', rsaKeySize: 3072 });
    expect(effectiveKeyWrap({ algorithm: 'A256KW' })).toEqual({ algorithm: 'A256KW', content: 'A256GCM' });
    expect(effectiveKeyWrap({ algorithm: 'RSA-OAEP-256' })).toEqual({ algorithm: 'RSA-OAEP-256', content: 'A256GCM', rsaKeySize: 3072 });
    expect(effectiveKeyWrap({ algorithm: 'ECDH-ES+A256KW', curve: 'P-384' })).toEqual({ algorithm: 'ECDH-ES+A256KW', content: 'A256GCM', curve: 'P-384' });
  });

  it('offers every TLS 1.2 suite by default and none for TLS 1.3', () => {
    expect(effectiveTLS(undefined).cipherSuites).toHaveLength(6);
    expect(effectiveTLS({ cipherSuites: ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'] })).toEqual({
      minVersion: 'TLS1.2',
      cipherSuites: ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'],
    });
    expect(effectiveTLS({ minVersion: 'TLS1.3' })).toEqual({ minVersion: 'TLS1.3', cipherSuites: [] });
  });
});
