// Whether a cert-manager CertificateRequest may be signed, in the style of approver-policy: a
// request that claims a Lockstep identity is approved only when it is exactly what the operator
// itself requests for a declared EncryptedService; anything else claiming one is denied for good.
// Pure: the controller passes the request, its Certificate and what the caches hold, so deciding
// twice over the same state gives the same answer.
import {
  API_VERSION, ENCRYPTED_SERVICE, GROUP, LABEL_ENCRYPTED_SERVICE, parseDuration, serviceNameOf,
  type EncryptedService, type IssuerRef,
} from '../api/v1alpha1/index.js';
import type { CertificateObject } from '../encryptedservice/certificate.js';
import type { Problem } from '../encryptedservice/policy.js';
import { OID, type ParsedCsr } from './csr.js';

export const CERT_MANAGER_GROUP = 'cert-manager.io';
/** cert-manager stamps the name of the Certificate a request was made for. */
export const ANNOTATION_CERTIFICATE_NAME = 'cert-manager.io/certificate-name';

export interface CertificateRequestCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface OwnerRef { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }

export interface CertificateRequestObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string; namespace?: string; uid?: string; resourceVersion?: string;
    labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: OwnerRef[];
  };
  spec: { request?: string; issuerRef?: IssuerRef; usages?: string[]; isCA?: boolean; duration?: string; username?: string };
  status?: { conditions?: CertificateRequestCondition[] };
}

/** The Certificate a request names as its controller, as read from the API server. */
export interface CertificateLike {
  metadata: { name?: string; namespace?: string; uid?: string; labels?: Record<string, string>; ownerReferences?: OwnerRef[] };
}

export interface DecisionInputs {
  /** The parsed request, or why it could not be parsed. */
  csr: ParsedCsr | { error: string };
  /** The request's controlling Certificate; undefined when it has none or it is gone. */
  certificate: CertificateLike | undefined;
  /** Every declared EncryptedService (all namespaces). */
  services: readonly EncryptedService[];
  /** What the operator would request for a service right now, or why it requests nothing. */
  expected(es: EncryptedService): { certificate: CertificateObject } | { problem: Problem };
  /** A ClusterIssuer that is a KeyPolicy's managed CA: only its services' leaves may use it. */
  isManagedCA(issuer: Required<IssuerRef>): boolean;
  /** The operator is the cluster's approver: requests claiming no Lockstep identity are approved too. */
  approveOthers: boolean;
}

export interface ServiceRef { namespace: string; name: string }

export type Decision =
  | { verdict: 'approve'; reason: string; message: string; service?: ServiceRef }
  | { verdict: 'deny'; reason: string; message: string; claims: string[]; claimed: ServiceRef[] }
  /** Not the operator's to decide: no Lockstep identity claimed and another approver decides. */
  | { verdict: 'ignore' };

/** A request may carry thousands of SANs: the condition it gets stays small enough to write. */
const MAX_LISTED = 8;
const MAX_MESSAGE = 2_000;

function listed(items: readonly string[], separator: string): string {
  const shown = items.slice(0, MAX_LISTED).join(separator);
  return items.length > MAX_LISTED ? `${shown}${separator}and ${items.length - MAX_LISTED} more` : shown;
}

function bounded(message: string): string {
  return message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message;
}

export const ApprovalReasons = {
  MatchesEncryptedService: 'MatchesEncryptedService',
  NoLockstepIdentity: 'NoLockstepIdentity',
  UnreadableRequest: 'UnreadableRequest',
  NotFromDeclaredService: 'NotFromDeclaredService',
  ServiceNotIssuable: 'ServiceNotIssuable',
  RequestMismatch: 'RequestMismatch',
} as const;

const SPIFFE_FORM = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/;

export function completeIssuer(ref: IssuerRef | undefined): Required<IssuerRef> {
  return { name: ref?.name ?? '', kind: ref?.kind || 'Issuer', group: ref?.group || CERT_MANAGER_GROUP };
}

function ownNames(es: EncryptedService): string[] {
  const svc = serviceNameOf(es);
  const ns = es.metadata.namespace;
  return [svc, `${svc}.${ns}`, `${svc}.${ns}.svc`, `${svc}.${ns}.svc.cluster.local`];
}

/** The SAN is the name, or a wildcard a TLS client accepts for it (one left-most label, RFC 6125). */
export function covers(san: string, name: string): boolean {
  const a = san.toLowerCase();
  const n = name.toLowerCase();
  if (a === n) return true;
  const dot = n.indexOf('.');
  return a.startsWith('*.') && dot > 0 && a.slice(2) === n.slice(dot + 1);
}

const controllerOf = (refs: OwnerRef[] | undefined, group: string, kind: string): OwnerRef | undefined =>
  refs?.find((r) => r.controller === true && r.kind === kind && r.apiVersion.split('/')[0] === group);

/** What in the request says "this is a Lockstep service identity", and whose. */
export function lockstepClaims(cr: CertificateRequestObject, inputs: DecisionInputs): { claims: string[]; claimed: ServiceRef[] } {
  const claims: string[] = [];
  const claimed = new Map<string, ServiceRef>();
  const claim = (es: EncryptedService): void => {
    const ref = { namespace: es.metadata.namespace ?? '', name: es.metadata.name ?? '' };
    claimed.set(`${ref.namespace}/${ref.name}`, ref);
  };
  const csr = 'error' in inputs.csr ? undefined : inputs.csr;
  for (const uri of csr?.uris ?? []) {
    const m = SPIFFE_FORM.exec(uri);
    if (!m) continue;
    claims.push(`SPIFFE ID ${uri}`);
    for (const es of inputs.services) {
      if (es.metadata.namespace === m[2] && es.spec.workload.serviceAccountName === m[3]) claim(es);
    }
  }
  const dns = csr?.dnsNames ?? [];
  for (const es of inputs.services) {
    for (const name of ownNames(es)) {
      for (const asked of dns.filter((d) => covers(d, name))) {
        claims.push(`DNS name ${asked === name ? name : `${asked} (covers ${name})`} of EncryptedService ${es.metadata.namespace}/${es.metadata.name}`);
        claim(es);
      }
    }
  }
  for (const [what, labels] of [['request', cr.metadata.labels], ['Certificate', inputs.certificate?.metadata.labels]] as const) {
    const label = labels?.[LABEL_ENCRYPTED_SERVICE];
    if (label !== undefined) claims.push(`${what} label ${LABEL_ENCRYPTED_SERVICE}=${label}`);
  }
  const owner = inputs.certificate?.metadata.ownerReferences?.find((r) => r.kind === ENCRYPTED_SERVICE.kind && r.apiVersion.split('/')[0] === GROUP);
  if (owner) claims.push(`Certificate owned by EncryptedService ${owner.name}`);
  const issuer = completeIssuer(cr.spec.issuerRef);
  if (issuer.kind === 'ClusterIssuer' && inputs.isManagedCA(issuer)) claims.push(`ClusterIssuer ${issuer.name}, a KeyPolicy's managed CA`);
  return { claims: [...new Set(claims)], claimed: [...claimed.values()] };
}

export function decide(cr: CertificateRequestObject, inputs: DecisionInputs): Decision {
  const namespace = cr.metadata.namespace ?? '';
  const { claims, claimed } = lockstepClaims(cr, inputs);
  const deny = (reason: string, why: string): Decision => ({
    verdict: 'deny', reason, claims, claimed,
    message: bounded(`claims a Lockstep identity (${listed(claims, '; ')}) but ${why}`),
  });
  if ('error' in inputs.csr) {
    // Nothing in it can be checked, so it can never match a service: denied when its labels or
    // Certificate claim a Lockstep identity, or when Lockstep is the cluster's approver.
    return inputs.approveOthers || claims.length > 0
      ? { verdict: 'deny', reason: ApprovalReasons.UnreadableRequest, message: bounded(`spec.request is not a readable PKCS#10 request: ${inputs.csr.error}`), claims, claimed }
      : { verdict: 'ignore' };
  }
  if (claims.length === 0) {
    return inputs.approveOthers
      ? { verdict: 'approve', reason: ApprovalReasons.NoLockstepIdentity, message: 'claims no Lockstep identity; approved by Lockstep as the cluster\'s approver' }
      : { verdict: 'ignore' };
  }

  // Only the Certificate the operator generated for a declared service may carry its identity.
  const ref = controllerOf(cr.metadata.ownerReferences, CERT_MANAGER_GROUP, 'Certificate');
  const cert = inputs.certificate;
  if (!ref || !cert || cert.metadata.uid !== ref.uid || cert.metadata.name !== ref.name || cert.metadata.namespace !== namespace
    || cr.metadata.annotations?.[ANNOTATION_CERTIFICATE_NAME] !== ref.name) {
    return deny(ApprovalReasons.NotFromDeclaredService, 'was not made by cert-manager for a Certificate the operator generated');
  }
  const esRef = controllerOf(cert.metadata.ownerReferences, GROUP, ENCRYPTED_SERVICE.kind);
  const es = esRef && inputs.services.find((s) => s.metadata.namespace === namespace && s.metadata.name === esRef.name);
  if (!esRef || !es || es.metadata.uid !== esRef.uid || esRef.apiVersion !== API_VERSION || es.metadata.name !== cert.metadata.name) {
    return deny(ApprovalReasons.NotFromDeclaredService, `its Certificate ${ref.name} is not the one generated for a declared EncryptedService in namespace ${namespace}`);
  }
  const expected = inputs.expected(es);
  if ('problem' in expected) {
    return deny(ApprovalReasons.ServiceNotIssuable, `EncryptedService ${namespace}/${es.metadata.name} gets no certificate: ${expected.problem.message}`);
  }
  const mismatches = compare(cr, inputs.csr, expected.certificate);
  if (mismatches.length > 0) {
    return deny(ApprovalReasons.RequestMismatch, `differs from what EncryptedService ${namespace}/${es.metadata.name} is issued: ${mismatches.join('; ')}`);
  }
  return {
    verdict: 'approve', reason: ApprovalReasons.MatchesEncryptedService,
    message: `matches the certificate of EncryptedService ${namespace}/${es.metadata.name}; approved by Lockstep`,
    service: { namespace, name: es.metadata.name ?? '' },
  };
}

const EKU_OID: Record<string, string> = { 'server auth': OID.serverAuth, 'client auth': OID.clientAuth };
const KEY_USAGES = new Set(['digital signature', 'key encipherment']);

function setDiff(asked: readonly string[], allowed: readonly string[]): { extra: string[]; missing: string[] } {
  const a = new Set(asked);
  const b = new Set(allowed);
  return { extra: [...a].filter((x) => !b.has(x)), missing: [...b].filter((x) => !a.has(x)) };
}

function describeDiff(what: string, asked: readonly string[], allowed: readonly string[]): string | undefined {
  const { extra, missing } = setDiff(asked, allowed);
  if (extra.length === 0 && missing.length === 0) return undefined;
  return [
    ...(extra.length > 0 ? [`${what} ${listed(extra, ', ')} not allowed`] : []),
    ...(missing.length > 0 ? [`${what} ${listed(missing, ', ')} missing`] : []),
  ].join(', ');
}

/** Every way the request differs from the expected Certificate; empty when it matches. */
export function compare(cr: CertificateRequestObject, csr: ParsedCsr, expected: CertificateObject): string[] {
  const spec = expected.spec as {
    issuerRef: Required<IssuerRef>; dnsNames: string[]; uris: string[]; usages: string[]; duration: string;
    privateKey: { algorithm: string; size?: number };
  };
  const out: string[] = [];
  const issuer = completeIssuer(cr.spec.issuerRef);
  const want = spec.issuerRef;
  if (issuer.name !== want.name || issuer.kind !== want.kind || issuer.group !== want.group) {
    out.push(`issuer ${issuer.kind}/${issuer.name} instead of ${want.kind}/${want.name}`);
  }
  if (cr.spec.isCA || csr.isCA) out.push('asks to be a CA');
  if (!csr.signatureValid) out.push('its signature does not verify against its own public key');
  if (csr.subject.length > 0) out.push(`subject ${csr.subject.join(', ')} not allowed (Lockstep requests none)`);
  const dns = describeDiff('DNS names', csr.dnsNames, spec.dnsNames);
  if (dns) out.push(dns);
  const uris = describeDiff('URIs', csr.uris, spec.uris);
  if (uris) out.push(uris);
  if (csr.ipAddresses.length > 0 || csr.emailAddresses.length > 0 || csr.otherNames > 0) out.push('IP, email or other SANs not allowed');
  const usages = describeDiff('usages', cr.spec.usages ?? [], spec.usages);
  if (usages) out.push(usages);
  if (csr.keyUsages) {
    const ku = describeDiff('key usages in the CSR', csr.keyUsages, spec.usages.filter((u) => KEY_USAGES.has(u)));
    if (ku) out.push(ku);
  }
  if (csr.extKeyUsages) {
    const eku = describeDiff('extended key usages in the CSR', csr.extKeyUsages, spec.usages.flatMap((u) => (EKU_OID[u] ? [EKU_OID[u]] : [])));
    if (eku) out.push(eku);
  }
  if (csr.otherExtensions.length > 0) out.push(`extensions ${csr.otherExtensions.join(', ')} not allowed`);
  const key = spec.privateKey;
  if (csr.publicKey.algorithm !== key.algorithm || (key.size !== undefined && csr.publicKey.size !== key.size)) {
    const got = `${csr.publicKey.algorithm}${csr.publicKey.size ? ` ${csr.publicKey.size}` : ''}`;
    out.push(`key ${got} instead of ${key.algorithm}${key.size ? ` ${key.size}` : ''}`);
  }
  const asked = durationMs(cr.spec.duration);
  if (asked === undefined || asked > parseDuration(spec.duration)) {
    out.push(`duration ${cr.spec.duration ?? '(issuer default)'} longer than ${spec.duration}`);
  }
  return out;
}

function durationMs(text: string | undefined): number | undefined {
  if (!text) return undefined;
  try {
    return parseDuration(text);
  } catch {
    return undefined;
  }
}
