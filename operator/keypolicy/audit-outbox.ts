// Key events are written into the key Secret (as an annotation) in the same write that changes
// the keys, and appended to the audit trail afterwards; the annotation is cleared once the trail
// has them. A failed append (API error, crash) is therefore retried on the next reconcile instead
// of losing the entry, and a fingerprint on each entry keeps a retried append from recording it
// twice. The annotation holds what the trail holds: names, kids, times — no key material.
import { AUDIT_EVENT_TYPES, type AuditEvent, type AuditEventType } from '../audit/chain.js';
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
