// The local API server's audit log (e2e/controlplane/cluster-up.sh: every request at Metadata
// level): what a given identity actually asked for, and what was refused. Tests read the part
// written after an offset they took, so earlier test files do not count.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const auditLogPath = process.env.LOCKSTEP_E2E_AUDIT_LOG ?? join(dirname(process.env.KUBECONFIG ?? ''), 'logs', 'audit.log');

export interface AuditEntry {
  verb: string;
  requestURI: string;
  user: { username: string };
  impersonatedUser?: { username: string };
  objectRef?: { resource?: string; subresource?: string; apiGroup?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number; message?: string };
  annotations?: Record<string, string>;
}

export function auditLogAvailable(): boolean {
  return existsSync(auditLogPath);
}

export function auditOffset(): number {
  return statSync(auditLogPath).size;
}

/** Entries written since `offset`, made with `username`'s own credentials (not impersonated). */
export function auditEntriesSince(offset: number, username: string): AuditEntry[] {
  return readFileSync(auditLogPath).subarray(offset).toString('utf8').split('\n').filter(Boolean)
    .map((line) => JSON.parse(line) as AuditEntry)
    .filter((e) => e.user.username === username && !e.impersonatedUser);
}

/** `verb group/resource[/subresource]`, the unit an RBAC rule grants. Undefined for non-resource URLs. */
export function permissionOf(e: AuditEntry): string | undefined {
  const ref = e.objectRef;
  if (!ref?.resource) return undefined;
  const resource = ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource;
  return `${e.verb} ${ref.apiGroup ?? ''}/${resource}`;
}

/**
 * Every permission a request was authorized with. A server-side apply that creates the object
 * (a patch answered 201) is checked twice: patch by the authorization filter, then create by the
 * patch handler; the log records only the verb patch.
 */
export function permissionsUsed(e: AuditEntry): string[] {
  const p = permissionOf(e);
  // Any answer but a denial means the request was authorized: a 404 or 409 used the permission too.
  if (!p || deniedByRbac(e) || e.responseStatus?.code === 401) return [];
  return e.verb === 'patch' && e.responseStatus?.code === 201 ? [p, p.replace(/^patch /, 'create ')] : [p];
}

/**
 * Refused by RBAC: by the authorization filter (decision forbid), or by the handler's second check
 * (an apply that would create), which leaves the filter's "allow" in the log and says so in the answer.
 */
export const deniedByRbac = (e: AuditEntry): boolean =>
  e.annotations?.['authorization.k8s.io/decision'] === 'forbid' || /is forbidden: User "[^"]*" cannot /.test(e.responseStatus?.message ?? '');

/** Refused by a ValidatingAdmissionPolicy (Deny-only bindings add no audit annotation: read the answer). */
export const deniedByPolicy = (e: AuditEntry): boolean =>
  (e.responseStatus?.code ?? 0) >= 400 && (e.responseStatus?.message ?? '').includes('ValidatingAdmissionPolicy');
