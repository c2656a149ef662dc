// What the operator itself requests for a service: the same resolution and builder the
// EncryptedService reconciler uses, so the approver approves exactly what the operator would
// generate now, whatever a tenant wrote into the Certificate in between.
import type { EncryptedService, IssuerRef, KeyPolicy } from '../api/v1alpha1/index.js';
import { buildCertificate, type CertificateObject } from '../encryptedservice/certificate.js';
import { ownerReference } from '../encryptedservice/children.js';
import { resolveIssuer, resolvePolicy, type Problem } from '../encryptedservice/policy.js';

export function expectedCertificate(
  es: EncryptedService,
  lookupPolicy: (namespace: string, name: string) => KeyPolicy | undefined,
  defaultIssuer: IssuerRef | undefined,
  /** The reconciler's refusals (claims.ts): a refused service keeps its old Certificate, which must not renew. */
  refused: (es: EncryptedService, policy: KeyPolicy, issuer: Required<IssuerRef>) => Problem | undefined = () => undefined,
): { certificate: CertificateObject } | { problem: Problem } {
  const resolved = resolvePolicy(es, lookupPolicy);
  if ('problem' in resolved) return resolved;
  const issuer = resolveIssuer(es, resolved.policy, defaultIssuer);
  if ('problem' in issuer) return issuer;
  const problem = refused(es, resolved.policy, issuer.issuer);
  if (problem) return { problem };
  return { certificate: buildCertificate(es, resolved.policy, issuer.issuer, ownerReference(es)) };
}
