// Key events are written into the key Secret (as an annotation) in the same write that changes
// the keys, and appended to the audit trail afterwards; the annotation is cleared once the trail
// has them. A failed append (API error, crash) is therefore retried on the next reconcile instead
// of losing the entry, and a fingerprint on each entry keeps a retried append from recording it
// twice. The annotation holds what the trail holds: names, kids, times — no key material.
//
// The key Secret is in the tenant's namespace, where `edit` may write Secrets: the annotation is
// signed with the operator's audit key and bound to that Secret (sealPending/openPending), so
// events a tenant writes there, or copies from another policy, are refused rather than appended
// to the trail under the operator's signature.
import type { KeyObject } from 'node:crypto';
import { canonicalJson } from '../audit/canonical-json.js';
import { AUDIT_EVENT_TYPES, type AuditEvent, type AuditEventType } from '../audit/chain.js';
import { outboxSignatureValid, signOutboxBody, type AuditSigningKey } from '../audit/signing.js';
import { auditFingerprint } from './audit-trail.js';

/** On the key Secret: key events not yet confirmed in the audit trail (JSON). */
export const ANNOTATION_AUDIT_PENDING = 'lockstep.dev/audit-pending';

/** The event with a `fingerprint` detail derived from what it records. */
export function fingerprinted(event: AuditEvent): AuditEvent {
  const s = event.subject;
  const fingerprint = auditFingerprint([event.type, s.kind ?? '', s.namespace ?? '', s.name ?? '', s.kid ?? '', event.time.toISOString()]);
  return { ...event, details: { ...event.details, fingerprint } };
}

export function encodePending(events: readonly AuditEvent[]): string {
  return JSON.stringify(events.map((e) => ({ type: e.type, time: e.time.toISOString(), subject: e.subject, details: e.details ?? {} })));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Pending events from the annotation; anything unreadable is dropped (the trail validates the rest). */
export function decodePending(text: string | undefined): AuditEvent[] {
  if (!text) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  const out: AuditEvent[] = [];
  for (const item of parsed) {
    if (!isRecord(item) || !isRecord(item['subject'])) continue;
    const type = item['type'];
    const time = new Date(typeof item['time'] === 'string' ? item['time'] : '');
    if (!(AUDIT_EVENT_TYPES as readonly unknown[]).includes(type) || Number.isNaN(time.getTime())) continue;
    const details = isRecord(item['details']) ? (item['details'] as Record<string, string | number | boolean>) : {};
    out.push({ type: type as AuditEventType, time, subject: item['subject'] as AuditEvent['subject'], details });
  }
  return out;
}

const outboxBody = (secret: string, events: unknown): string => `${secret}\n${canonicalJson(events)}`;

/** The annotation value: the events and a signature binding them to Secret `secret` (namespace/name). */
export function sealPending(events: readonly AuditEvent[], key: AuditSigningKey, secret: string): string {
  const list = JSON.parse(encodePending(events)) as unknown;
  return JSON.stringify({ events: list, sig: signOutboxBody(key, outboxBody(secret, list)) });
}

/** Pending events, or `tampered` when the annotation was not written by the operator for this Secret. */
export function openPending(text: string | undefined, publicKey: KeyObject, secret: string): { events: AuditEvent[]; tampered: boolean } {
  if (!text) return { events: [], tampered: false };
  try {
    const parsed = JSON.parse(text) as unknown;
    if (!isRecord(parsed) || !Array.isArray(parsed['events']) || typeof parsed['sig'] !== 'string') return { events: [], tampered: true };
    if (!outboxSignatureValid(publicKey, outboxBody(secret, parsed['events']), parsed['sig'])) return { events: [], tampered: true };
    return { events: decodePending(JSON.stringify(parsed['events'])), tampered: false };
  } catch {
    return { events: [], tampered: true };
  }
}
