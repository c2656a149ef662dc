import { describe, expect, it } from '@jest/globals';
import {
  API_VERSION, withEncryptedServiceDefaults, type EncryptedService, type EncryptedServiceSpec, type IssuerRef, type KeyPolicy,
} from '../api/v1alpha1/index.js';
import { childLabels, ownerReference } from '../encryptedservice/children.js';
import { OID, csrDer, parseCsr } from './csr.js';
import {
  ANNOTATION_CERTIFICATE_NAME, ApprovalReasons, covers, decide, type CertificateLike, type CertificateRequestObject, type DecisionInputs,
} from './decide.js';
import { expectedCertificate } from './expected.js';
import { buildCsr, type CsrOptions } from './test-csr.js';

function service(name: string, namespace: string, spec: Partial<EncryptedServiceSpec> = {}): EncryptedService {
  return {
    apiVersion: API_VERSION, kind: 'EncryptedService',
    metadata: { name, namespace, uid: `uid-${namespace}-${name}` },
    spec: withEncryptedServiceDefaults({
      workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name },
      ports: [{ name: 'https', port: 8443 }],
      keyPolicyRef: { name: 'default' },
      ...spec,
    }),
  };
}

const policy = (namespace: string, spec: KeyPolicy['spec'] = {}): KeyPolicy =>
  ({ apiVersion: API_VERSION, kind: 'KeyPolicy', metadata: { name: 'default', namespace }, spec }) as KeyPolicy;

const api = service('api', 'shop');
const web = service('web', 'tenant');
const DEFAULT_ISSUER: IssuerRef = { kind: 'ClusterIssuer', name: 'lockstep-ca', group: 'cert-manager.io' };
const SHOP_DNS = ['api', 'api.shop', 'api.shop.svc', 'api.shop.svc.cluster.local'];
const SHOP_ID = 'spiffe://cluster.local/ns/shop/sa/api';
const HONEST: CsrOptions = { dnsNames: SHOP_DNS, uris: [SHOP_ID], keyUsages: ['digital signature'], extKeyUsages: [OID.serverAuth, OID.clientAuth] };

function certificateOf(es: EncryptedService, uid = `cert-${es.metadata.name}`): CertificateLike {
  return {
    metadata: {
      name: es.metadata.name ?? '', namespace: es.metadata.namespace ?? '', uid,
      labels: childLabels(es, 'transit'), ownerReferences: [ownerReference(es)],
    },
  };
}

function request(namespace: string, csr: CsrOptions, overrides: Partial<CertificateRequestObject['spec']> = {}, certName?: string): CertificateRequestObject {
  return {
    metadata: {
      name: `${certName ?? 'hand-made'}-1`, namespace, resourceVersion: '7',
      ...(certName
        ? {
          annotations: { [ANNOTATION_CERTIFICATE_NAME]: certName },
          ownerReferences: [{ apiVersion: 'cert-manager.io/v1', kind: 'Certificate', name: certName, uid: `cert-${certName}`, controller: true }],
        }
        : {}),
    },
    spec: {
      request: Buffer.from(buildCsr(csr)).toString('base64'),
      issuerRef: { name: 'lockstep-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
      usages: ['digital signature', 'server auth', 'client auth'],
      duration: '24h0m0s',
      ...overrides,
    },
  };
}

function inputs(cr: CertificateRequestObject, certificate: CertificateLike | undefined, more: Partial<DecisionInputs> = {}): DecisionInputs {
  const policies = [policy('shop'), policy('tenant')];
  let csr: DecisionInputs['csr'];
  try {
    csr = parseCsr(csrDer(Buffer.from(cr.spec.request ?? '', 'base64').toString('utf8')));
  } catch (err) {
    csr = { error: (err as Error).message };
  }
  return {
    csr,
    certificate,
    services: [api, web],
    expected: (es) => expectedCertificate(es, (ns, name) => policies.find((p) => p.metadata.namespace === ns && p.metadata.name === name), DEFAULT_ISSUER),
    isManagedCA: (issuer) => issuer.name === 'lockstep-managed-ca',
    approveOthers: true,
    ...more,
  };
}

describe('the operator\'s own request', () => {
  const cr = request('shop', HONEST, {}, 'api');
  cr.metadata.labels = childLabels(api, 'transit');

  it('is approved, and deciding again gives the same answer', () => {
    const first = decide(cr, inputs(cr, certificateOf(api)));
    expect(first).toMatchObject({ verdict: 'approve', reason: ApprovalReasons.MatchesEncryptedService, service: { namespace: 'shop', name: 'api' } });
    expect(decide(cr, inputs(cr, certificateOf(api)))).toEqual(first);
  });

  it('is approved with a shorter lifetime than the service\'s', () => {
    const short = request('shop', HONEST, { duration: '1h' }, 'api');
    expect(decide(short, inputs(short, certificateOf(api))).verdict).toBe('approve');
  });

  it('is denied once the service no longer gets a certificate', () => {
    const refusing = inputs(cr, certificateOf(api), { expected: () => ({ problem: { reason: 'KeyPolicyNotAllowed', message: 'KeyPolicy shop/default does not allow namespace shop' } }) });
    expect(decide(cr, refusing)).toMatchObject({ verdict: 'deny', reason: ApprovalReasons.ServiceNotIssuable, message: expect.stringContaining('does not allow namespace shop') });
  });
});

describe('a request that differs from what the service is issued', () => {
  const cases: Array<[string, CsrOptions, Partial<CertificateRequestObject['spec']>, RegExp]> = [
    ['a DNS name of another namespace', { ...HONEST, dnsNames: [...SHOP_DNS, 'pay.payments.svc'] }, {}, /DNS names pay\.payments\.svc not allowed/],
    ['a wildcard', { ...HONEST, dnsNames: [...SHOP_DNS, '*.shop.svc'] }, {}, /DNS names \*\.shop\.svc not allowed/],
    ['another SPIFFE ID', { ...HONEST, uris: ['spiffe://cluster.local/ns/shop/sa/admin'] }, {}, /URIs spiffe:\/\/cluster\.local\/ns\/shop\/sa\/admin not allowed/],
    ['another issuer', HONEST, { issuerRef: { name: 'shop-root', kind: 'ClusterIssuer' } }, /issuer ClusterIssuer\/shop-root instead of ClusterIssuer\/lockstep-ca/],
    ['the CA flag in the CSR', { ...HONEST, isCA: true }, {}, /asks to be a CA/],
    ['the CA flag in the spec', HONEST, { isCA: true }, /asks to be a CA/],
    ['a subject', { ...HONEST, commonName: 'api.shop.svc' }, {}, /subject 2\.5\.4\.3=api\.shop\.svc not allowed/],
    ['an IP SAN', { ...HONEST, ipAddresses: ['10.0.0.1'] }, {}, /IP, email or other SANs/],
    ['a longer lifetime', HONEST, { duration: '2160h0m0s' }, /duration 2160h0m0s longer than 24h/],
    ['no lifetime (the issuer default)', HONEST, { duration: undefined }, /duration \(issuer default\) longer than 24h/],
    ['another key algorithm', { ...HONEST, key: { algorithm: 'RSA', size: 2048 } }, {}, /key RSA 2048 instead of ECDSA 256/],
    ['a broken signature', { ...HONEST, badSignature: true }, {}, /signature does not verify/],
    ['another usage', HONEST, { usages: ['digital signature', 'server auth', 'client auth', 'code signing'] }, /usages code signing not allowed/],
    ['another key usage in the CSR', { ...HONEST, keyUsages: ['digital signature', 'cert sign'] }, {}, /key usages in the CSR cert sign not allowed/],
  ];
  it.each(cases)('is denied: %s', (_what, csr, spec, message) => {
    const cr = request('shop', csr, spec, 'api');
    const d = decide(cr, inputs(cr, certificateOf(api)));
    expect(d).toMatchObject({ verdict: 'deny', reason: ApprovalReasons.RequestMismatch });
    expect(d.verdict === 'deny' && d.message).toMatch(message);
  });
});

describe('a hand-made request for a Lockstep identity', () => {
  it('from another namespace is denied and names the service it claimed', () => {
    const cr = request('tenant', HONEST, {}, 'stolen');
    const stolen: CertificateLike = { metadata: { name: 'stolen', namespace: 'tenant', uid: 'cert-stolen' } };
    const d = decide(cr, inputs(cr, stolen));
    expect(d).toMatchObject({ verdict: 'deny', reason: ApprovalReasons.NotFromDeclaredService, claimed: [{ namespace: 'shop', name: 'api' }] });
    expect(d.verdict === 'deny' && d.claims).toEqual(expect.arrayContaining([`SPIFFE ID ${SHOP_ID}`, 'DNS name api.shop.svc of EncryptedService shop/api']));
  });

  it('without a Certificate (a raw CertificateRequest) is denied', () => {
    const cr = request('shop', HONEST);
    expect(decide(cr, inputs(cr, undefined))).toMatchObject({ verdict: 'deny', reason: ApprovalReasons.NotFromDeclaredService });
  });

  it('with a SPIFFE ID of the Lockstep form that no service has is denied', () => {
    const cr = request('tenant', { dnsNames: ['x.tenant.svc'], uris: ['spiffe://example.org/ns/tenant/sa/ghost'] });
    expect(decide(cr, inputs(cr, undefined))).toMatchObject({ verdict: 'deny', claims: ['SPIFFE ID spiffe://example.org/ns/tenant/sa/ghost'], claimed: [] });
  });

  it('through a Certificate that copies Lockstep\'s labels and owner, under another name, is denied', () => {
    const cr = request('shop', HONEST, {}, 'copy');
    const copy = certificateOf(api, 'cert-copy');
    copy.metadata.name = 'copy';
    expect(decide(cr, inputs(cr, copy))).toMatchObject({ verdict: 'deny', reason: ApprovalReasons.NotFromDeclaredService });
  });

  it('through a Certificate owned by a deleted and re-created service (another uid) is denied', () => {
    const cr = request('shop', HONEST, {}, 'api');
    const old = certificateOf(api);
    old.metadata.ownerReferences = [{ ...ownerReference(api), uid: 'uid-of-a-deleted-service' }];
    expect(decide(cr, inputs(cr, old))).toMatchObject({ verdict: 'deny', reason: ApprovalReasons.NotFromDeclaredService });
  });

  it('naming its Certificate without being controlled by it is denied', () => {
    const cr = request('shop', HONEST, {}, 'api');
    cr.metadata.ownerReferences = [];
    expect(decide(cr, inputs(cr, certificateOf(api)))).toMatchObject({ verdict: 'deny', reason: ApprovalReasons.NotFromDeclaredService });
  });

  it('with thousands of SANs gets a denial message of bounded size', () => {
    const many = Array.from({ length: 3000 }, (_, i) => `n${i}.shop.svc`);
    const cr = request('shop', { ...HONEST, dnsNames: [...SHOP_DNS, ...many] }, {}, 'api');
    const d = decide(cr, inputs(cr, certificateOf(api)));
    expect(d).toMatchObject({ verdict: 'deny', reason: ApprovalReasons.RequestMismatch });
    expect(d.verdict === 'deny' && d.message).toMatch(/n7\.shop\.svc, and 2992 more not allowed/);
    expect(d.verdict === 'deny' && d.message.length).toBeLessThanOrEqual(2_000);
  });

  it('with a wildcard covering a service\'s name is denied', () => {
    const cr = request('tenant', { dnsNames: ['*.shop.svc.cluster.local'] });
    const d = decide(cr, inputs(cr, undefined));
    expect(d).toMatchObject({ verdict: 'deny', claimed: [{ namespace: 'shop', name: 'api' }] });
    expect(d.verdict === 'deny' && d.claims).toEqual(['DNS name *.shop.svc.cluster.local (covers api.shop.svc.cluster.local) of EncryptedService shop/api']);
  });

  it('on a KeyPolicy\'s managed CA, with no SPIFFE ID or service name, is denied', () => {
    const cr = request('tenant', { dnsNames: ['anything.example'] }, { issuerRef: { name: 'lockstep-managed-ca', kind: 'ClusterIssuer' } });
    expect(decide(cr, inputs(cr, undefined))).toMatchObject({ verdict: 'deny', claims: ['ClusterIssuer lockstep-managed-ca, a KeyPolicy\'s managed CA'] });
  });
});

describe('covers', () => {
  it.each([
    ['api.shop.svc', 'api.shop.svc', true],
    ['API.shop.svc', 'api.shop.svc', true],
    ['*.shop.svc', 'api.shop.svc', true],
    ['*.svc', 'api.shop.svc', false],
    ['*.shop.svc', 'shop.svc', false],
    ['x.shop.svc', 'api.shop.svc', false],
  ])('%s covers %s: %s', (san, name, expected) => expect(covers(san, name)).toBe(expected));
});

describe('a request that claims no Lockstep identity', () => {
  const cr = request('tenant', { dnsNames: ['www.example.org'] });
  it('is approved when Lockstep is the cluster\'s approver', () => {
    expect(decide(cr, inputs(cr, undefined))).toMatchObject({ verdict: 'approve', reason: ApprovalReasons.NoLockstepIdentity });
  });
  it('is left to the cluster\'s other approver otherwise', () => {
    expect(decide(cr, inputs(cr, undefined, { approveOthers: false }))).toEqual({ verdict: 'ignore' });
  });
  it('that cannot be read is denied only when Lockstep is the cluster\'s approver', () => {
    const garbage = { ...cr, spec: { ...cr.spec, request: Buffer.from('not a CSR').toString('base64') } };
    expect(decide(garbage, inputs(garbage, undefined))).toMatchObject({ verdict: 'deny', reason: ApprovalReasons.UnreadableRequest });
    expect(decide(garbage, inputs(garbage, undefined, { approveOthers: false }))).toEqual({ verdict: 'ignore' });
  });
  it('that cannot be read but carries Lockstep\'s label is denied in every mode', () => {
    const labelled = { ...cr, metadata: { ...cr.metadata, labels: { 'lockstep.dev/encrypted-service': 'api' } }, spec: { ...cr.spec, request: 'AAAA' } };
    expect(decide(labelled, inputs(labelled, undefined, { approveOthers: false }))).toMatchObject({ verdict: 'deny', reason: ApprovalReasons.UnreadableRequest });
  });
});
