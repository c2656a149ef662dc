import { describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { withEncryptedServiceDefaults, withKeyPolicyDefaults, type EncryptedService, type IssuerRef, type KeyPolicy, type TransitSpec } from '../api/v1alpha1/index.js';
import { buildManagedCA } from '../keypolicy/managed-ca.js';
import {
  dnsNamesDenied, dnsPatternPermits, issuerDenied, podIdentityOf, serviceNamespaceOf, trustDomainDenied, workloadIdentityDenied,
  type PodIdentity,
} from './claims.js';

const policy = (spec: KeyPolicy['spec'], name = 'shop', namespace = 'shop'): KeyPolicy => ({ metadata: { name, namespace }, spec: withKeyPolicyDefaults(spec) });
const service = (transit: TransitSpec = {}, sa = 'api', namespace = 'shop'): EncryptedService => ({
  metadata: { name: 'api', namespace },
  spec: withEncryptedServiceDefaults({
    workload: { selector: { matchLabels: { app: 'api' } }, serviceAccountName: sa },
    ports: [{ name: 'https', port: 443 }], keyPolicyRef: { name: 'shop' }, transit,
  }),
});
const full = (ref: IssuerRef): Required<IssuerRef> => ({ name: ref.name, kind: ref.kind ?? 'Issuer', group: 'cert-manager.io' });
const clusterIssuer = (name: string, annotations?: Record<string, string>, labels?: Record<string, string>): KubernetesObject =>
  ({ apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name, ...(annotations ? { annotations } : {}), ...(labels ? { labels } : {}) } });
const operatorDefault: IssuerRef = { name: 'lockstep-ca', kind: 'ClusterIssuer' };

describe('issuerDenied', () => {
  it('allows the operator default when the policy names no issuer, with or without a grant annotation', () => {
    const ref = full(operatorDefault);
    expect(issuerDenied(service(), policy({}), ref, { clusterIssuer: clusterIssuer('lockstep-ca'), operatorDefault })).toBeUndefined();
  });

  it('refuses an issuer the policy neither defaults to nor lists, naming the way out', () => {
    const problem = issuerDenied(service(), policy({}), full({ name: 'team-ca', kind: 'Issuer' }), { operatorDefault });
    expect(problem?.reason).toBe('IssuerNotAllowed');
    expect(problem?.message).toBe('KeyPolicy shop/shop does not allow Issuer team-ca: use its default issuer (ClusterIssuer lockstep-ca) or add it to the policy\'s spec.certificates.allowedIssuers');
    expect(issuerDenied(service(), policy({ certificates: { allowedIssuers: [{ name: 'team-ca' }] } }), full({ name: 'team-ca' }), { operatorDefault })).toBeUndefined();
    // Kind and group are part of the identity: an Issuer entry does not allow a ClusterIssuer of that name.
    expect(issuerDenied(service(), policy({ certificates: { allowedIssuers: [{ name: 'team-ca' }] } }), full({ name: 'team-ca', kind: 'ClusterIssuer' }), { clusterIssuer: clusterIssuer('team-ca', { 'lockstep.dev/allowed-namespaces': '*' }), operatorDefault })?.reason).toBe('IssuerNotAllowed');
  });

  it('needs the administrator\'s grant for a listed ClusterIssuer, by namespace name or *', () => {
    const kp = policy({ certificates: { allowedIssuers: [{ name: 'shared', kind: 'ClusterIssuer' }] } });
    const ref = full({ name: 'shared', kind: 'ClusterIssuer' });
    const denied = issuerDenied(service(), kp, ref, { clusterIssuer: clusterIssuer('shared'), operatorDefault });
    expect(denied?.message).toBe('ClusterIssuer shared is not granted to namespace shop: its administrator lists the namespaces that may use it in the annotation lockstep.dev/allowed-namespaces');
    expect(issuerDenied(service(), kp, ref, { clusterIssuer: clusterIssuer('shared', { 'lockstep.dev/allowed-namespaces': 'payments, shopping' }) })?.reason).toBe('IssuerNotAllowed');
    expect(issuerDenied(service(), kp, ref, { clusterIssuer: clusterIssuer('shared', { 'lockstep.dev/allowed-namespaces': 'payments, shop' }) })).toBeUndefined();
    expect(issuerDenied(service(), kp, ref, { clusterIssuer: clusterIssuer('shared', { 'lockstep.dev/allowed-namespaces': '*' }) })).toBeUndefined();
    // A policy's default ClusterIssuer needs the grant too: a tenant can write its own KeyPolicy.
    const byDefault = policy({ certificates: { defaultIssuer: { issuerRef: { name: 'shared', kind: 'ClusterIssuer' } } } });
    expect(issuerDenied(service(), byDefault, ref, { clusterIssuer: clusterIssuer('shared') })?.reason).toBe('IssuerNotAllowed');
  });

  it('lets a policy use its own managed CA, and never another policy\'s, listed or granted', () => {
    const own = policy({ certificates: { defaultIssuer: { managedCA: {} } } });
    const ownCA = buildManagedCA(own, 'cert-manager')!.issuer;
    const ownRef = full({ name: ownCA.metadata!.name!, kind: 'ClusterIssuer' });
    expect(issuerDenied(service(), own, ownRef, { clusterIssuer: ownCA })).toBeUndefined();

    const otherCA = buildManagedCA(policy({ certificates: { defaultIssuer: { managedCA: {} } } }, 'payments', 'payments'), 'cert-manager')!.issuer;
    const granted = { ...otherCA, metadata: { ...otherCA.metadata, annotations: { 'lockstep.dev/allowed-namespaces': '*' } } };
    const otherRef = full({ name: otherCA.metadata!.name!, kind: 'ClusterIssuer' });
    const greedy = policy({ certificates: { allowedIssuers: [{ name: otherRef.name, kind: 'ClusterIssuer' }] } });
    const problem = issuerDenied(service(), greedy, otherRef, { clusterIssuer: granted, operatorDefault });
    expect(problem?.reason).toBe('IssuerNotAllowed');
    expect(problem?.message).toContain('is the managed CA of KeyPolicy payments/payments; only that policy\'s services may use it');
  });
});

describe('DNS names', () => {
  it('reads the namespace of cluster Service names, wildcards included', () => {
    expect(serviceNamespaceOf('api.shop.svc.cluster.local')).toBe('shop');
    expect(serviceNamespaceOf('*.shop.svc')).toBe('shop');
    expect(serviceNamespaceOf('db-0.db.shop.svc.cluster.local')).toBe('shop');
    expect(serviceNamespaceOf('api.shop')).toBeUndefined();
    expect(serviceNamespaceOf('api.example.com')).toBeUndefined();
  });

  it('matches patterns: exact names, and one label for *.suffix; a wildcard name only by the same wildcard', () => {
    expect(dnsPatternPermits('api.example.com', 'api.example.com')).toBe(true);
    expect(dnsPatternPermits('api.example.com', 'www.example.com')).toBe(false);
    expect(dnsPatternPermits('*.example.com', 'api.example.com')).toBe(true);
    expect(dnsPatternPermits('*.example.com', 'example.com')).toBe(false);
    expect(dnsPatternPermits('*.example.com', 'a.b.example.com')).toBe(false);
    expect(dnsPatternPermits('*.example.com', 'apiexample.com')).toBe(false);
    expect(dnsPatternPermits('*.example.com', '*.example.com')).toBe(true);
    expect(dnsPatternPermits('*.example.com', '*.a.example.com')).toBe(false);
    expect(dnsPatternPermits('api.example.com', '*.example.com')).toBe(false);
  });

  it('allows the service\'s own names and what the policy permits; refuses the rest and other namespaces\' Services always', () => {
    expect(dnsNamesDenied(service({ extraDNSNames: ['api.shop.svc'] }), policy({}))).toBeUndefined();
    const refused = dnsNamesDenied(service({ extraDNSNames: ['api.example.com', '*.example.com'] }), policy({}));
    expect(refused?.reason).toBe('DNSNameNotAllowed');
    expect(refused?.message).toContain('does not permit extraDNSNames api.example.com, *.example.com');
    const permissive = policy({ certificates: { allowedDNSNames: ['*.example.com', '*.shop.svc.cluster.local', '*.other.svc.cluster.local'] } });
    expect(dnsNamesDenied(service({ extraDNSNames: ['api.example.com', '*.example.com', 'web.shop.svc.cluster.local'] }), permissive)).toBeUndefined();
    const foreign = dnsNamesDenied(service({ extraDNSNames: ['api.other.svc.cluster.local'] }), permissive);
    expect(foreign?.message).toContain('api.other.svc.cluster.local (namespace other) name Services of another namespace');
  });

  it('requires the policy\'s trust domain', () => {
    expect(trustDomainDenied(service(), policy({}))).toBeUndefined();
    expect(trustDomainDenied(service({ trustDomain: 'prod.example' }), policy({}))?.message)
      .toBe('transit.trustDomain prod.example is not KeyPolicy shop/shop\'s trust domain cluster.local: set transit.trustDomain to cluster.local');
    expect(trustDomainDenied(service({ trustDomain: 'prod.example' }), policy({ certificates: { trustDomain: 'prod.example' } }))).toBeUndefined();
    expect(trustDomainDenied(service(), policy({ certificates: { trustDomain: 'prod.example' } }))?.reason).toBe('TrustDomainNotAllowed');
  });
});

describe('workloadIdentityDenied', () => {
  const pod = (name: string, sa: string | undefined, labels = { app: 'api' }, phase = 'Pending', namespace = 'shop'): PodIdentity =>
    ({ metadata: { name, namespace, labels }, spec: sa ? { serviceAccountName: sa } : {}, status: { phase } });
  const restricted = policy({ allowed: { namespaces: ['shop'], serviceAccounts: ['shop/api'] } });

  it('passes when every selected pod runs as the declared account; other pods do not count', () => {
    expect(workloadIdentityDenied(service(), restricted, [pod('a', 'api'), pod('b', 'api'), pod('x', 'other', { app: 'web' }), pod('y', 'other', { app: 'api' }, 'Running', 'elsewhere')])).toBeUndefined();
  });

  it('refuses when a selected pod runs as another account (no account is the default one)', () => {
    const problem = workloadIdentityDenied(service(), restricted, [pod('a', 'api'), pod('b', 'intruder'), pod('c', undefined)]);
    expect(problem?.reason).toBe('IdentityMismatch');
    expect(problem?.message).toBe('selected pods do not run as the declared service account api (b runs as intruder, c runs as default): the certificate would claim spiffe://cluster.local/ns/shop/sa/api for them; fix spec.workload.serviceAccountName or the pods');
    expect(workloadIdentityDenied(service(), policy({}), [pod('b', 'intruder')])?.reason).toBe('IdentityMismatch');
    expect(workloadIdentityDenied(service(), restricted, [pod('a', 'api'), pod('done', 'intruder', { app: 'api' }, 'Succeeded')])).toBeUndefined();
  });

  it('without pods, withholds the certificate only when the policy restricts service accounts', () => {
    expect(workloadIdentityDenied(service(), restricted, [])?.reason).toBe('WorkloadNotFound');
    expect(workloadIdentityDenied(service(), policy({}), [])).toBeUndefined();
  });

  it('keeps only labels, service account and phase of a pod in the cache', () => {
    const raw = {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: 'a', namespace: 'shop', resourceVersion: '7', labels: { app: 'api' }, annotations: { big: 'x' }, managedFields: [{}] },
      spec: { serviceAccountName: 'api', containers: [{ name: 'c', image: 'i', env: [{ name: 'TOKEN', value: 'secret' }] }] },
      status: { phase: 'Running', podIP: '10.0.0.1' },
    } as KubernetesObject;
    expect(podIdentityOf(raw)).toEqual({
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: 'a', namespace: 'shop', resourceVersion: '7', labels: { app: 'api' } },
      spec: { serviceAccountName: 'api' }, status: { phase: 'Running' },
    });
  });
});
