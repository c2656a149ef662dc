// What the API server's audit log (Metadata level, see e2e/controlplane/cluster-up.sh) says one
// user asked for: mutating requests by verb and resource, and requests of every verb per service.
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

export interface AuditRecord {
  readonly verb: string;
  readonly user: { readonly username: string };
  readonly impersonatedUser?: { readonly username: string };
  readonly objectRef?: { readonly resource?: string; readonly subresource?: string; readonly apiGroup?: string };
  readonly stageTimestamp?: string;
}

const MUTATING = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/** `networkpolicies`, `encryptedservices/status`, `leases`; non-resource requests are `(url)`. */
export function resourceOf(r: AuditRecord): string {
  const ref = r.objectRef;
  if (!ref?.resource) return '(url)';
  return ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource;
}

export const isMutating = (r: AuditRecord): boolean => MUTATING.has(r.verb);
export const isLeaseRenewal = (r: AuditRecord): boolean => r.objectRef?.resource === 'leases' && r.objectRef.apiGroup === 'coordination.k8s.io';

/** Counts as `verb resource` → n, sorted by count. */
export function countByVerbAndResource(records: Iterable<AuditRecord>): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const r of records) {
    const k = `${r.verb} ${resourceOf(r)}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

export function countByVerb(records: Iterable<AuditRecord>): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const r of records) counts.set(r.verb, (counts.get(r.verb) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** Mutating requests other than lease renewals: what "writes at rest" means. */
export const writesAtRest = (records: Iterable<AuditRecord>): AuditRecord[] =>
  [...records].filter((r) => isMutating(r) && !isLeaseRenewal(r));

/** A position in the audit log: the file and how far it had been written. */
export interface AuditMark {
  readonly path: string;
  readonly offset: number;
}

export function auditLogOf(kubeconfig: string): string {
  return join(dirname(kubeconfig), 'logs', 'audit.log');
}

export function markAudit(path: string): AuditMark {
  return { path, offset: existsSync(path) ? statSync(path).size : 0 };
}

/**
 * Every record since `mark` made by `username` with its own credentials. The API server rotates
 * the log at 200 MB: a rotated file written after the mark (audit-<time>.log) is read first,
 * from the mark's offset, then the live file from its start.
 */
export async function recordsSince(mark: AuditMark, username: string): Promise<AuditRecord[]> {
  const live = statSync(mark.path).size;
  const parts: Array<[string, number]> = [];
  if (live < mark.offset) {
    const dir = dirname(mark.path);
    const rotated = readdirSync(dir).filter((f) => /^audit-.*\.log$/.test(f)).map((f) => join(dir, f))
      .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs).at(-1);
    if (rotated) parts.push([rotated, mark.offset]);
    parts.push([mark.path, 0]);
  } else {
    parts.push([mark.path, mark.offset]);
  }
  const out: AuditRecord[] = [];
  for (const [file, start] of parts) {
    const lines = createInterface({ input: createReadStream(file, { start }), crlfDelay: Infinity });
    for await (const line of lines) {
      // Cheap test first: the log holds every client's requests.
      if (!line.includes(username)) continue;
      const r = JSON.parse(line) as AuditRecord;
      if (r.user.username === username && !r.impersonatedUser) out.push(r);
    }
  }
  return out;
}
