// One CA's list of revoked certificates, kept durably in a ConfigMap in the operator's namespace
// (tenants cannot write there) next to the last CRL signed from it. Pure: parse, add, prune,
// and when the CRL must be signed again. A serial stays listed until the certificate's own
// notAfter has passed (RFC 5280 5.1.2.6: an expired certificate need not stay on a CRL).
import { createHash } from 'node:crypto';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../api/v1alpha1/index.js';
import { isRevocationReason, normalSerial, type RevocationReason, type RevokedEntry } from './crl.js';

export const LIST_ENTRIES_KEY = 'entries.json';
export const LIST_CRL_KEY = 'ca.crl';
export const LIST_CRL_NUMBER_KEY = 'crl-number';
/** SHA-256 fingerprints (X509Certificate.fingerprint256), comma-separated: the CA and its chain. A bundle holding one of them gets this CRL. */
export const LIST_ANCHORS_KEY = 'anchors';
/** `namespace/name` of the CA Secret whose key signs the CRL. */
export const LIST_CA_SECRET_KEY = 'ca-secret';
export const LIST_THIS_UPDATE_KEY = 'this-update';
export const LIST_NEXT_UPDATE_KEY = 'next-update';
export const COMPONENT_REVOCATION = 'revocation';

/** How long a CRL is valid (nextUpdate); it is signed again when half of it has passed. */
export const CRL_VALIDITY_MS = 24 * 3_600_000;

export interface ListedCertificate extends RevokedEntry {
  /** The revoked certificate's notAfter: it leaves the list after that. */
  notAfter: Date;
  /** `namespace/name` of the EncryptedService it belonged to, and the request that revoked it. */
  service: string;
  request: string;
}

/** The list of the CA whose certificate has this fingerprint: one ConfigMap per CA, whatever issuer names it. */
export function revocationListName(caFingerprint256: string): string {
  return `lockstep-revoked-${createHash('sha256').update(caFingerprint256).digest('hex').slice(0, 16)}`;
}

export function parseEntries(json: string | undefined): ListedCertificate[] {
  if (!json) return [];
  const raw = JSON.parse(json) as unknown;
  if (!Array.isArray(raw)) throw new Error('the revocation list is not a JSON array');
  return raw.map((item: Record<string, unknown>) => {
    const reason = String(item['reason'] ?? 'unspecified');
    const entry: ListedCertificate = {
      serial: String(item['serial'] ?? ''),
      revokedAt: new Date(String(item['revokedAt'])),
      reason: isRevocationReason(reason) ? reason : 'unspecified',
      notAfter: new Date(String(item['notAfter'])),
      service: String(item['service'] ?? ''),
      request: String(item['request'] ?? ''),
    };
    if (!entry.serial || Number.isNaN(entry.revokedAt.getTime()) || Number.isNaN(entry.notAfter.getTime())) {
      throw new Error('the revocation list holds an unreadable entry');
    }
    return entry;
  });
}

export function serializeEntries(entries: readonly ListedCertificate[]): string {
  return JSON.stringify([...entries]
    .sort((a, b) => normalSerial(a.serial).localeCompare(normalSerial(b.serial)))
    .map((e) => ({ serial: normalSerial(e.serial), revokedAt: e.revokedAt.toISOString(), reason: e.reason, notAfter: e.notAfter.toISOString(), service: e.service, request: e.request })));
}

/** `entries` with `entry` listed; an already listed serial keeps its first revocation (date and request). */
export function withEntry(entries: readonly ListedCertificate[], entry: ListedCertificate): { entries: ListedCertificate[]; added: boolean } {
  if (entries.some((e) => normalSerial(e.serial) === normalSerial(entry.serial))) return { entries: [...entries], added: false };
  return { entries: [...entries, entry], added: true };
}

/** Entries whose certificate is still valid at `now`. */
export function unexpired(entries: readonly ListedCertificate[], now: Date): ListedCertificate[] {
  return entries.filter((e) => e.notAfter.getTime() > now.getTime());
}

export interface ListState {
  entries: ListedCertificate[];
  crlNumber: bigint;
  thisUpdate?: Date;
  nextUpdate?: Date;
}

export function readList(cm: V1ConfigMap | undefined): ListState {
  const data = cm?.data ?? {};
  const at = (key: string) => (data[key] ? new Date(data[key]) : undefined);
  const thisUpdate = at(LIST_THIS_UPDATE_KEY);
  const nextUpdate = at(LIST_NEXT_UPDATE_KEY);
  return {
    entries: parseEntries(data[LIST_ENTRIES_KEY]),
    crlNumber: BigInt(data[LIST_CRL_NUMBER_KEY] ?? '0'),
    ...(thisUpdate ? { thisUpdate } : {}),
    ...(nextUpdate ? { nextUpdate } : {}),
  };
}

/** When the CRL must be signed again: half-way to its nextUpdate (never later than an entry's expiry would change it). */
export function resignAt(state: ListState): number {
  if (!state.thisUpdate || !state.nextUpdate) return 0;
  const half = state.thisUpdate.getTime() + (state.nextUpdate.getTime() - state.thisUpdate.getTime()) / 2;
  const expiries = state.entries.map((e) => e.notAfter.getTime());
  return Math.min(half, ...expiries);
}

export function buildRevocationList(input: {
  namespace: string; name: string; entries: readonly ListedCertificate[]; crlNumber: bigint; crlPem: string;
  anchors: readonly string[]; caSecret: string; thisUpdate: Date; nextUpdate: Date;
}): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: input.name, namespace: input.namespace, labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_COMPONENT]: COMPONENT_REVOCATION } },
    data: {
      [LIST_ENTRIES_KEY]: serializeEntries(input.entries),
      [LIST_CRL_KEY]: input.crlPem,
      [LIST_CRL_NUMBER_KEY]: input.crlNumber.toString(),
      [LIST_ANCHORS_KEY]: [...new Set(input.anchors)].sort().join(','),
      [LIST_CA_SECRET_KEY]: input.caSecret,
      [LIST_THIS_UPDATE_KEY]: input.thisUpdate.toISOString(),
      [LIST_NEXT_UPDATE_KEY]: input.nextUpdate.toISOString(),
    },
  };
}

/** The CRLs (PEM, concatenated, in a stable order) a namespace's bundle publishes: those of every CA it trusts. */
export function crlsForBundle(bundleFingerprints: ReadonlySet<string>, lists: readonly V1ConfigMap[]): string {
  return lists
    .filter((cm) => (cm.data?.[LIST_ANCHORS_KEY] ?? '').split(',').some((f) => f && bundleFingerprints.has(f)))
    .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))
    .map((cm) => cm.data?.[LIST_CRL_KEY] ?? '')
    .join('');
}

export type { RevocationReason };
