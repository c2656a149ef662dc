// Which condition changes of an EncryptedService become Events. Each Event is a write to the API
// server, and a service that converges passes through several conditions at once: one Event per
// thing a user must know, not one per condition saying the same thing.
import { EncryptedServiceConditions as C, type Condition } from '../api/v1alpha1/index.js';

export interface TransitionEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/**
 * Events for the conditions that changed status or reason: every Ready change (but a first status
 * that only waits), Degraded turning
 * True, and any other condition turning False — except one whose Event the Ready change already
 * gives (same reason and type: Ready's message names every condition that is not ready). Degraded
 * turning False is no news of its own: Ready says the service recovered.
 */
export function transitionEvents(before: readonly Condition[] | undefined, after: readonly Condition[]): TransitionEvent[] {
  // A new service's first status that only says it is on its way (not Ready, nothing Degraded)
  // is progress, not news: its Event comes when it turns Ready, or when something is wrong.
  const first = !before?.some((b) => b.type === C.Ready);
  const wrong = after.some((c) => c.type === C.Degraded && c.status === 'True');
  if (first && !wrong && after.some((c) => c.type === C.Ready && c.status === 'False')) return [];
  const changed = after.filter((c) => {
    const old = before?.find((b) => b.type === c.type);
    return !(old && old.status === c.status && old.reason === c.reason);
  });
  const warns = (c: Condition): boolean => (c.type === C.Degraded ? c.status === 'True' : c.status === 'False');
  const ready = changed.find((c) => c.type === C.Ready);
  const events: TransitionEvent[] = [];
  for (const c of changed) {
    const reported = c.type === C.Ready || (c.type === C.Degraded ? c.status === 'True' : c.status === 'False');
    if (!reported) continue;
    if (c !== ready && ready && ready.reason === c.reason && warns(ready) === warns(c)) continue;
    events.push({ type: warns(c) ? 'Warning' : 'Normal', reason: c.reason, message: `${c.type}: ${c.message}` });
  }
  return events;
}
