// Runtime bad input that no schema or CEL rule can catch, on a real API server and cert-manager:
// references to objects that exist but are of the wrong kind, Secrets and ConfigMaps at the names
// Lockstep derives but with foreign content, duplicate and cyclic services, ports nobody declares,
// values sealed for another place or key. One table: each case gets a condition with a reason and
// a message that says what to fix, and every object that existed before is left exactly as it was.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Condition, EncryptedServiceSpec } from '../operator/api/v1alpha1/index.js';
import { createKeySet, publicJwks, serializeKeySet } from '../operator/crypto/keyset.js';
import { sealValue } from '../operator/crypto/seal.js';
import { runCli } from '../operator/cli/main.js';
import { capturedIo } from './harness/cli-io.js';
import { clients, eventually } from './harness/cluster.js';
import { applyAsUser, deleteNamespaceAndFinalize, exists, installCrds } from './harness/lockstep.js';
import { createTestNamespace } from './harness/namespace.js';
import { startInProcess, type RunningOperator } from './harness/operator.js';

const c = clients();
let ns = '';
/** A second namespace: references that cross namespaces, and a bundle made by hand before any service. */
let other = '';
let operator: RunningOperator;
const POLICY = 'shared';

type Kind = 'EncryptedService' | 'KeyPolicy' | 'RotationSchedule';
type Obj = KubernetesObject & Record<string, unknown>;

interface Case {
  name: string;
  /** Objects that exist before the bad input, as someone else made them: never changed. */
  existing?: () => Promise<Obj[]>;
  /** The bad input, applied as a user would. */
  input: () => Promise<Obj[]>;
  /** Whose condition says what is wrong (namespace: the test namespace unless given). */
  regarding: { kind: Kind; name: string; namespace?: () => string };
  expect: { type: string; status: 'True' | 'False'; reason: string; message: (string | (() => string))[] };
  /** Objects the bad input must not have made. */
  absent?: () => Obj[];
  /** Converges, rather than fails: the objects' status then stays still (no write loop). */
  quiet?: boolean;
}

const meta = (name: string, namespace = ns) => ({ name, namespace });
const secret = (name: string, data: Record<string, string>, type = 'Opaque', namespace = ns): Obj =>
  ({ apiVersion: 'v1', kind: 'Secret', metadata: meta(name, namespace), type, stringData: data });
const configMap = (name: string, data: Record<string, string>, namespace = ns): Obj =>
  ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(name, namespace), data });
const cmObj = (kind: string, name: string, namespace?: string): Obj =>
  ({ apiVersion: 'cert-manager.io/v1', kind, metadata: namespace ? meta(name, namespace) : { name } });

function service(name: string, spec: Partial<EncryptedServiceSpec> = {}, namespace = ns): Obj {
  return {
    apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: meta(name, namespace),
    spec: {
      workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name },
      ports: [{ name: 'https', port: 8443 }],
      keyPolicyRef: { name: POLICY },
      ...spec,
    },
  };
}

const keyPolicy = (name: string, spec: Record<string, unknown> = {}, namespace = ns): Obj =>
  ({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: meta(name, namespace), spec: { keyWrap: { algorithm: 'A256KW' }, ...spec } });

const schedule = (name: string, targets: Record<string, unknown>): Obj =>
  ({ apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule', metadata: meta(name), spec: { targets, rotate: ['certificates'] } });

/** `lockstep seal` against the shared policy, for `namespace/name[key]`. */
async function seal(name: string, key: string, value: string, namespace = ns): Promise<string> {
  const io = capturedIo(c.kc, value);
  const code = await runCli(['seal', '--namespace', namespace, '--name', name, '--key', key, '--policy', POLICY, '--policy-namespace', ns], io);
  expect(`${code} ${io.stderr()}`).toBe('0 ');
  return io.stdout().trim();
}

const sealedService = (name: string, secretName: string, encryptedData: Record<string, string>, policy = POLICY) =>
  service(name, { keyPolicyRef: { name: policy }, secrets: { sealed: [{ name: secretName, encryptedData }] } });

/** An A256KW key set whose key is 128 bits: well formed JSON, the wrong length. */
async function shortKekSet(): Promise<string> {
  const set = await createKeySet('kek', 'A256KW', { now: new Date() });
  const [key] = set.keys;
  return serializeKeySet({ ...set, keys: [{ ...key!, k: Buffer.alloc(16, 7).toString('base64url') }] });
}

const NOT_A_CERT = '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n';

/** Passes the schema's five-part pattern; its header names a kid nobody has, its ciphertext is noise. */
const JUNK_JWE = [JSON.stringify({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: 'nobody' }), 'k', 'iv', 'ct', 'tag'].map((p) => Buffer.from(p).toString('base64url')).join('.');

const cases: Case[] = [
  // --- references to the KeyPolicy
  {
    name: 'a KeyPolicy that does not exist',
    input: async () => [service('kp-missing', { keyPolicyRef: { name: 'absent' } })],
    regarding: { kind: 'EncryptedService', name: 'kp-missing' },
    expect: { type: 'Ready', status: 'False', reason: 'KeyPolicyNotFound', message: [() => `KeyPolicy ${ns}/absent does not exist`, 'spec.keyPolicyRef'] },
    absent: () => [cmObj('Certificate', 'kp-missing', ns)],
  },
  {
    name: "another namespace's KeyPolicy that does not allow this namespace",
    input: async () => [keyPolicy('private', {}, other), service('kp-foreign', { keyPolicyRef: { name: 'private', namespace: other } })],
    regarding: { kind: 'EncryptedService', name: 'kp-foreign' },
    expect: { type: 'Ready', status: 'False', reason: 'KeyPolicyNotAllowed', message: [() => `does not allow namespace ${ns}`, 'spec.allowed.namespaces'] },
    absent: () => [cmObj('Certificate', 'kp-foreign', ns)],
  },
  {
    name: 'a KeyPolicy that does not allow the service account',
    input: async () => [keyPolicy('accounts', { allowed: { namespaces: [ns], serviceAccounts: [`${ns}/someone-else`] } }), service('kp-account', { keyPolicyRef: { name: 'accounts' } })],
    regarding: { kind: 'EncryptedService', name: 'kp-account' },
    expect: { type: 'Ready', status: 'False', reason: 'KeyPolicyNotAllowed', message: [() => `service account ${ns}/kp-account`, 'spec.allowed.serviceAccounts'] },
  },
  {
    name: 'sealed secrets under a KeyPolicy whose keys are unusable (a policy in a failed state)',
    existing: async () => [secret('failed-keys', { 'kek.json': 'not json', 'seal.json': '{}' })],
    input: async () => [keyPolicy('failed'), sealedService('kp-failed', 'kp-failed-creds', { password: JUNK_JWE }, 'failed')],
    regarding: { kind: 'EncryptedService', name: 'kp-failed' },
    expect: { type: 'SecretsReady', status: 'False', reason: 'KeyPolicyNotReady', message: ['failed'] },
    absent: () => [secret('kp-failed-creds', {})],
  },

  // --- the KeyPolicy's own key Secret, at its name, with foreign content
  {
    name: 'a key Secret that is not JSON',
    existing: async () => [secret('garbage-keys', { 'kek.json': 'not json', 'seal.json': 'not json either' })],
    input: async () => [keyPolicy('garbage')],
    regarding: { kind: 'KeyPolicy', name: 'garbage' },
    expect: { type: 'Ready', status: 'False', reason: 'InvalidKeySet', message: ['key Secret garbage-keys', 'restore it from backup'] },
  },
  {
    name: 'a key Secret without the seal set',
    existing: async () => [secret('halfkeys-keys', { 'kek.json': await shortKekSet() })],
    input: async () => [keyPolicy('halfkeys')],
    regarding: { kind: 'KeyPolicy', name: 'halfkeys' },
    expect: { type: 'Ready', status: 'False', reason: 'InvalidKeySet', message: ['halfkeys-keys', 'lacks'] },
  },
  {
    name: 'a KEK of the wrong length',
    existing: async () => {
      const seal = await createKeySet('seal', 'RSA-OAEP-256', { now: new Date(), rsaBits: 2048 });
      return [secret('short-keys', { 'kek.json': await shortKekSet(), 'seal.json': serializeKeySet(seal) })];
    },
    input: async () => [keyPolicy('short')],
    regarding: { kind: 'KeyPolicy', name: 'short' },
    expect: { type: 'Ready', status: 'False', reason: 'InvalidKeySet', message: ['short-keys', '256 bits', 'restore it from backup'] },
  },

  // --- issuers of the wrong kind, or not allowed
  {
    name: 'an Issuer name that is a ClusterIssuer',
    input: async () => [service('issuer-kind', { transit: { issuerRef: { name: 'lockstep-ca', kind: 'Issuer' } } })],
    regarding: { kind: 'EncryptedService', name: 'issuer-kind' },
    expect: { type: 'TransitReady', status: 'False', reason: 'IssuerNotFound', message: [() => `Issuer lockstep-ca does not exist in namespace ${ns}`, 'a ClusterIssuer lockstep-ca exists', 'kind: ClusterIssuer'] },
    absent: () => [cmObj('Certificate', 'issuer-kind', ns)],
  },
  {
    name: 'a ClusterIssuer name that is an Issuer of the namespace',
    existing: async () => [{ ...cmObj('Issuer', 'local-ca', ns), spec: { selfSigned: {} } }],
    input: async () => [service('cissuer-kind', { transit: { issuerRef: { name: 'local-ca', kind: 'ClusterIssuer' } } })],
    regarding: { kind: 'EncryptedService', name: 'cissuer-kind' },
    expect: { type: 'TransitReady', status: 'False', reason: 'IssuerNotFound', message: ['ClusterIssuer local-ca does not exist', () => `an Issuer local-ca exists in namespace ${ns}`, 'kind: Issuer'] },
    absent: () => [cmObj('Certificate', 'cissuer-kind', ns)],
  },
  {
    name: 'an issuer that does not exist at all',
    input: async () => [service('issuer-missing', { transit: { issuerRef: { name: 'nope', kind: 'Issuer' } } })],
    regarding: { kind: 'EncryptedService', name: 'issuer-missing' },
    expect: { type: 'TransitReady', status: 'False', reason: 'IssuerNotFound', message: [() => `Issuer nope does not exist in namespace ${ns}`, 'create it or change the issuer'] },
    absent: () => [cmObj('Certificate', 'issuer-missing', ns)],
  },
  {
    name: 'an Issuer that exists but the KeyPolicy does not list',
    input: async () => [service('issuer-denied', { transit: { issuerRef: { name: 'local-ca', kind: 'Issuer' } } })],
    regarding: { kind: 'EncryptedService', name: 'issuer-denied' },
    expect: { type: 'TransitReady', status: 'False', reason: 'IssuerNotAllowed', message: ['local-ca', 'allowedIssuers'] },
    absent: () => [cmObj('Certificate', 'issuer-denied', ns)],
  },

  // --- the TLS Secret's name, taken
  {
    name: 'an Opaque Secret with garbage PEM at the TLS Secret name',
    existing: async () => [secret('tls-opaque-tls', { 'tls.crt': NOT_A_CERT, 'tls.key': 'not a key' })],
    input: async () => [service('tls-opaque')],
    regarding: { kind: 'EncryptedService', name: 'tls-opaque' },
    expect: { type: 'TransitReady', status: 'False', reason: 'NameTaken', message: ['Secret tls-opaque-tls', 'not issued for Certificate tls-opaque', 'delete or rename it'] },
    absent: () => [cmObj('Certificate', 'tls-opaque', ns)],
  },
  {
    name: 'a kubernetes.io/tls Secret someone else made at the TLS Secret name',
    existing: async () => [secret('tls-foreign-tls', { 'tls.crt': NOT_A_CERT, 'tls.key': 'x' }, 'kubernetes.io/tls')],
    input: async () => [service('tls-foreign')],
    regarding: { kind: 'EncryptedService', name: 'tls-foreign' },
    expect: { type: 'TransitReady', status: 'False', reason: 'NameTaken', message: ['Secret tls-foreign-tls', 'not issued for Certificate tls-foreign'] },
    absent: () => [cmObj('Certificate', 'tls-foreign', ns)],
  },

  // --- peers and ports
  {
    name: 'an ingress peer that does not exist',
    input: async () => [service('peer-ghost', { access: { ingress: [{ service: { name: 'ghost' } }] } })],
    regarding: { kind: 'EncryptedService', name: 'peer-ghost' },
    expect: { type: 'AccessReady', status: 'False', reason: 'PeerNotFound', message: [() => `${ns}/ghost not found`, 'stays denied'] },
  },
  {
    name: 'a peer in another namespace that does not exist there',
    input: async () => [service('peer-elsewhere', { access: { ingress: [{ service: { name: 'api', namespace: other } }] } })],
    regarding: { kind: 'EncryptedService', name: 'peer-elsewhere' },
    expect: { type: 'AccessReady', status: 'False', reason: 'PeerNotFound', message: [() => `${other}/api not found`] },
  },
  {
    name: 'an egress peer that does not exist',
    input: async () => [service('egress-ghost', { access: { egress: { restrict: true, to: [{ service: { name: 'phantom' } }] } } })],
    regarding: { kind: 'EncryptedService', name: 'egress-ghost' },
    expect: { type: 'AccessReady', status: 'False', reason: 'PeerNotFound', message: [() => `${ns}/phantom not found`] },
  },
  {
    name: 'an egress port the peer does not declare',
    input: async () => [
      service('callee'),
      service('caller', { access: { egress: { restrict: true, to: [{ service: { name: 'callee' }, ports: ['grpc'] }] } } }),
    ],
    regarding: { kind: 'EncryptedService', name: 'caller' },
    expect: { type: 'AccessReady', status: 'False', reason: 'PeerPortNotFound', message: [() => `${ns}/callee declares no port grpc`, 'spec.ports'] },
  },
  {
    name: 'peers that form a cycle (allowed: both converge, status stays still)',
    input: async () => [
      service('cycle-a', { access: { ingress: [{ service: { name: 'cycle-b' } }], egress: { restrict: true, to: [{ service: { name: 'cycle-b' } }] } } }),
      service('cycle-b', { access: { ingress: [{ service: { name: 'cycle-a' } }], egress: { restrict: true, to: [{ service: { name: 'cycle-a' } }] } } }),
    ],
    regarding: { kind: 'EncryptedService', name: 'cycle-b' },
    expect: { type: 'AccessReady', status: 'True', reason: 'NetworkPoliciesApplied', message: ['declared peers'] },
    quiet: true,
  },
  {
    name: 'a service that names itself as its peer (allowed, converges)',
    input: async () => [service('self-peer', { access: { ingress: [{ service: { name: 'self-peer' } }] } })],
    regarding: { kind: 'EncryptedService', name: 'self-peer' },
    expect: { type: 'AccessReady', status: 'True', reason: 'NetworkPoliciesApplied', message: ['1 declared peers'] },
    quiet: true,
  },
  {
    name: 'two services claiming one workload (the same selector)',
    input: async () => [
      service('dup-a', { workload: { selector: { matchLabels: { app: 'one-workload' } }, serviceAccountName: 'dup-a' } }),
      service('dup-b', { workload: { selector: { matchLabels: { app: 'one-workload' } }, serviceAccountName: 'dup-b' } }),
    ],
    regarding: { kind: 'EncryptedService', name: 'dup-b' },
    expect: { type: 'Degraded', status: 'True', reason: 'WorkloadClaimedTwice', message: ['EncryptedService dup-a', 'selects the same pods', 'one EncryptedService per workload'] },
  },
  {
    name: 'two services whose selectors overlap on a running pod',
    // The account first: with the ServiceAccount admission plugin (a cluster with a node), a pod needs it.
    existing: async () => [{ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta('over-a') }, {
      apiVersion: 'v1', kind: 'Pod', metadata: { ...meta('both-pod'), labels: { app: 'overlap', tier: 'web' } },
      spec: { serviceAccountName: 'over-a', schedulingGates: [{ name: 'lockstep.dev/e2e-stand-in' }], containers: [{ name: 'app', image: 'registry.invalid/never-pulled' }] },
    }],
    input: async () => [
      service('over-a', { workload: { selector: { matchLabels: { app: 'overlap' } }, serviceAccountName: 'over-a' } }),
      service('over-b', { workload: { selector: { matchLabels: { tier: 'web' } }, serviceAccountName: 'over-b' } }),
    ],
    regarding: { kind: 'EncryptedService', name: 'over-a' },
    expect: { type: 'Degraded', status: 'True', reason: 'WorkloadClaimedTwice', message: ['EncryptedService over-b', 'both-pod'] },
  },

  {
    name: 'a Kubernetes Service that does not expose the declared TLS port',
    existing: async () => [{ apiVersion: 'v1', kind: 'Service', metadata: meta('no-port'), spec: { selector: { app: 'no-port' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } }],
    input: async () => [service('no-port')],
    regarding: { kind: 'EncryptedService', name: 'no-port' },
    expect: { type: 'Degraded', status: 'True', reason: 'PortNotExposed', message: ['Service no-port routes to no pod port 8443 (https)', 'add the port to Service no-port'] },
  },

  // --- volumes
  {
    name: 'an existing claim on a StorageClass that does not exist',
    existing: async () => [{ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: meta('vol-gone-data'), spec: { storageClassName: `e2e-gone-${ns}`, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
    input: async () => [service('vol-gone', { atRest: { volumes: [{ name: 'data', provider: 'longhorn', size: '1Gi' }] } })],
    regarding: { kind: 'EncryptedService', name: 'vol-gone' },
    expect: { type: 'AtRestReady', status: 'False', reason: 'UnencryptedVolume', message: [() => `StorageClass e2e-gone-${ns}, which does not exist`, 'vol-gone-data'] },
    absent: () => [secret('vol-gone-data-luks', {})],
  },
  {
    name: 'a LUKS key Secret someone else made before the volume',
    existing: async () => [secret('luks-foe-data-luks', { CRYPTO_KEY_VALUE: 'known-to-someone-else' })],
    input: async () => [service('luks-foe', { atRest: { volumes: [{ name: 'data', provider: 'longhorn', size: '1Gi' }] } })],
    regarding: { kind: 'EncryptedService', name: 'luks-foe' },
    expect: { type: 'AtRestReady', status: 'False', reason: 'UnencryptedVolume', message: ['Secret luks-foe-data-luks', 'not made by Lockstep', 'no claim is created'] },
    absent: () => [{ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: meta('luks-foe-data') }],
  },

  // --- sealed and envelope secrets
  {
    name: 'a value sealed for another namespace',
    input: async () => [sealedService('sealed-ns', 'sealed-ns-creds', { password: await seal('sealed-ns-creds', 'password', 'v', other) })],
    regarding: { kind: 'EncryptedService', name: 'sealed-ns' },
    expect: { type: 'SecretsReady', status: 'False', reason: 'DecryptionFailed', message: ['sealed-ns-creds', 'no Secret was written'] },
    absent: () => [secret('sealed-ns-creds', {})],
  },
  {
    name: 'a value sealed for another Secret name',
    input: async () => [sealedService('sealed-name', 'sealed-name-creds', { password: await seal('elsewhere', 'password', 'v') })],
    regarding: { kind: 'EncryptedService', name: 'sealed-name' },
    expect: { type: 'SecretsReady', status: 'False', reason: 'DecryptionFailed', message: ['sealed-name-creds', 'no Secret was written'] },
    absent: () => [secret('sealed-name-creds', {})],
  },
  {
    name: "a value sealed for another key (not the KeyPolicy's)",
    input: async () => {
      const stranger = await createKeySet('seal', 'RSA-OAEP-256', { now: new Date(), rsaBits: 2048 });
      const value = await sealValue(publicJwks(stranger), 'v', { namespace: ns, name: 'sealed-key-creds', key: 'password' });
      return [sealedService('sealed-key', 'sealed-key-creds', { password: value })];
    },
    regarding: { kind: 'EncryptedService', name: 'sealed-key' },
    expect: { type: 'SecretsReady', status: 'False', reason: 'DecryptionFailed', message: ['sealed-key-creds', 'no Secret was written'] },
    absent: () => [secret('sealed-key-creds', {})],
  },
  {
    name: 'a sealed value shaped like a JWE that holds garbage',
    input: async () => [sealedService('sealed-junk', 'sealed-junk-creds', { password: JUNK_JWE })],
    regarding: { kind: 'EncryptedService', name: 'sealed-junk' },
    expect: { type: 'SecretsReady', status: 'False', reason: 'DecryptionFailed', message: ['sealed-junk-creds', 'no Secret was written'] },
    absent: () => [secret('sealed-junk-creds', {})],
  },
  {
    name: 'a sealed Secret name that someone else already uses',
    existing: async () => [secret('sealed-taken-creds', { password: 'theirs' })],
    input: async () => [sealedService('sealed-taken', 'sealed-taken-creds', { password: await seal('sealed-taken-creds', 'password', 'ours') })],
    regarding: { kind: 'EncryptedService', name: 'sealed-taken' },
    expect: { type: 'SecretsReady', status: 'False', reason: 'SecretConflict', message: ['Secret sealed-taken-creds exists and was not written by this EncryptedService', 'delete it or rename the sealed secret'] },
  },
  {
    name: 'an envelope secret whose application Secret does not exist',
    input: async () => [service('env-none', { secrets: { envelope: [{ name: 'env-none-app' }] } })],
    regarding: { kind: 'EncryptedService', name: 'env-none' },
    expect: { type: 'SecretsReady', status: 'False', reason: 'SecretNotFound', message: ['Secret env-none-app', 'create it'] },
  },
  {
    name: 'an envelope secret naming keys its Secret lacks',
    // The application Secret is the service's input, not someone else's object: the operator labels it.
    input: async () => [secret('env-keys-app', { present: 'p' }), service('env-keys', { secrets: { envelope: [{ name: 'env-keys-app', keys: ['present', 'absent'] }] } })],
    regarding: { kind: 'EncryptedService', name: 'env-keys' },
    expect: { type: 'SecretsReady', status: 'False', reason: 'SecretNotFound', message: ['env-keys-app[absent]'] },
  },
  {
    name: 'a foreign Secret at the envelope store name',
    existing: async () => [secret('env-foe-envelope', { wrappedDataKey: 'not ours' })],
    input: async () => [service('env-foe', { secrets: { envelope: [{ name: 'env-foe-app' }] } })],
    regarding: { kind: 'EncryptedService', name: 'env-foe' },
    expect: { type: 'SecretsReady', status: 'False', reason: 'EnvelopeStoreUntrusted', message: ['env-foe-envelope', 'not read or overwritten'] },
  },

  // --- the namespace's trust bundle, made by hand before any service
  {
    name: 'a trust bundle ConfigMap someone made by hand',
    existing: async () => [configMap('lockstep-trust-bundle', { 'ca.crt': NOT_A_CERT }, other)],
    input: async () => [keyPolicy('other-policy', {}, other), service('bundled', { keyPolicyRef: { name: 'other-policy' } }, other)],
    regarding: { kind: 'EncryptedService', name: 'bundled', namespace: () => other },
    expect: { type: 'Degraded', status: 'True', reason: 'NameTaken', message: ['ConfigMap lockstep-trust-bundle', 'not made by Lockstep', 'delete or rename it'] },
  },

  // --- RotationSchedules that target nothing
  {
    name: 'a RotationSchedule naming a service that does not exist',
    input: async () => [schedule('rs-ghost', { names: ['ghost-service'] })],
    regarding: { kind: 'RotationSchedule', name: 'rs-ghost' },
    expect: { type: 'Degraded', status: 'True', reason: 'NoTargets', message: [() => `no EncryptedService ghost-service in namespace ${ns}`, 'spec.targets'] },
  },
  {
    name: "a RotationSchedule naming another namespace's service",
    input: async () => [schedule('rs-elsewhere', { names: ['bundled'] })],
    regarding: { kind: 'RotationSchedule', name: 'rs-elsewhere' },
    expect: { type: 'Degraded', status: 'True', reason: 'NoTargets', message: [() => `no EncryptedService bundled in namespace ${ns}`, 'a RotationSchedule rotates services of its own namespace'] },
  },
  {
    name: 'a RotationSchedule whose selector matches nothing',
    input: async () => [schedule('rs-empty', { selector: { matchLabels: { tier: 'nothing-has-this' } } })],
    regarding: { kind: 'RotationSchedule', name: 'rs-empty' },
    expect: { type: 'Degraded', status: 'True', reason: 'NoTargets', message: ['spec.targets.selector matches no EncryptedService'] },
  },
];

const PLURALS: Record<Kind, string> = { EncryptedService: 'encryptedservices', KeyPolicy: 'keypolicies', RotationSchedule: 'rotationschedules' };
type Resource = { metadata: { generation?: number; resourceVersion?: string }; status?: { observedGeneration?: number; conditions?: Condition[] } };

const readResource = (kind: Kind, namespace: string, name: string) =>
  c.custom.getNamespacedCustomObject({ group: 'lockstep.dev', version: 'v1alpha1', plural: PLURALS[kind], namespace, name }) as Promise<Resource>;

/**
 * What an owner sees of an object: its data or spec, and the metadata that decides who controls it.
 * Status is left out (cert-manager writes an Issuer's), so a change here is someone overwriting.
 */
function content(o: KubernetesObject): string {
  const { labels, annotations, ownerReferences, finalizers } = o.metadata ?? {};
  const { data, type, spec } = o as Obj;
  return JSON.stringify({ labels, annotations, ownerReferences, finalizers, data, type, spec });
}

/** What every pre-existing object held, per case, right after it was created. */
const before = new Map<string, { obj: Obj; content: string }[]>();

beforeAll(async () => {
  installCrds();
  ns = await createTestNamespace(c, 'e2e-bad');
  other = await createTestNamespace(c, 'e2e-bad-other');
  operator = startInProcess(c.kc);
  await applyAsUser(c, keyPolicy(POLICY, { keyWrap: { algorithm: 'RSA-OAEP-256', rsaKeySize: 2048 } }));
  await eventually('shared KeyPolicy Ready', async () =>
    ((await readResource('KeyPolicy', ns, POLICY)).status?.conditions?.find((x) => x.type === 'Ready')?.status === 'True' ? true : undefined), 60_000);
  // Every case at once: the operator works on them in parallel, the tests then read the outcome.
  for (const k of cases) {
    const made: { obj: Obj; content: string }[] = [];
    for (const obj of (await k.existing?.()) ?? []) made.push({ obj, content: content(await c.objects.create(obj)) });
    before.set(k.name, made);
  }
  for (const k of cases) for (const obj of await k.input()) await applyAsUser(c, obj);
}, 180_000);

afterAll(async () => {
  await deleteNamespaceAndFinalize(c, ns);
  await deleteNamespaceAndFinalize(c, other);
  await operator?.stop();
});

describe('runtime bad input: a condition that says what to fix, nothing that exists overwritten', () => {
  const check = async (k: Case): Promise<void> => {
    const namespace = k.regarding.namespace?.() ?? ns;
    const { type, status, reason } = k.expect;
    let last: Condition | undefined;
    const resource = await eventually(`${k.regarding.kind} ${k.regarding.name} ${type}=${status} (${reason})`, async () => {
      const r = await readResource(k.regarding.kind, namespace, k.regarding.name);
      last = r.status?.conditions?.find((x) => x.type === type);
      const current = r.status?.observedGeneration === undefined || r.status.observedGeneration === r.metadata.generation;
      return current && last?.status === status && last.reason === reason ? r : undefined;
    }, 20_000).catch((err: Error) => {
      throw new Error(`${err.message}; last ${type}: ${JSON.stringify(last)}`);
    });
    const message = resource.status?.conditions?.find((x) => x.type === type)?.message ?? '';
    for (const fragment of k.expect.message) expect(message).toContain(typeof fragment === 'function' ? fragment() : fragment);

    for (const { obj, content: was } of before.get(k.name) ?? []) {
      const now = await c.objects.read(obj as KubernetesObject & { metadata: { name: string } });
      expect(`${obj.kind} ${obj.metadata?.name} ${content(now)}`).toBe(`${obj.kind} ${obj.metadata?.name} ${was}`);
    }
    for (const obj of k.absent?.() ?? []) expect(`${obj.kind} ${obj.metadata?.name} ${await exists(c, obj)}`).toBe(`${obj.kind} ${obj.metadata?.name} false`);
    if (k.quiet) {
      // Converged means Ready, then still: a status write loop would move the resourceVersion.
      const ready = await eventually(`${k.regarding.name} Ready`, async () => {
        const r = await readResource(k.regarding.kind, namespace, k.regarding.name);
        return r.status?.conditions?.find((x) => x.type === 'Ready')?.status === 'True' ? r : undefined;
      }, 60_000);
      await new Promise((r) => setTimeout(r, 3_000));
      expect((await readResource(k.regarding.kind, namespace, k.regarding.name)).metadata.resourceVersion).toBe(ready.metadata.resourceVersion);
    }
  };
  it.each(cases.map((k) => [k.name, k] as const))('%s', (_name, k) => check(k));

  it('nothing that existed before changed once everything had time to settle (cert-manager included)', async () => {
    await new Promise((r) => setTimeout(r, 3_000));
    const changed: string[] = [];
    for (const [name, made] of before) {
      for (const { obj, content: was } of made) {
        const now = await c.objects.read(obj as KubernetesObject & { metadata: { name: string } });
        if (content(now) !== was) changed.push(`${name}: ${obj.kind} ${obj.metadata?.name}`);
      }
    }
    expect(changed).toEqual([]);
  });
});
