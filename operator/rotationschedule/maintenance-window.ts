// Recurring maintenance windows (days, HH:MM start in the schedule's time zone, duration). A
// window may run past midnight, so the window that started the local day before counts too.
import { parseDuration, WEEKDAYS, type MaintenanceWindow } from '../api/v1alpha1/index.js';
import { addDays, instantOf, wallClock } from './zoned-time.js';

export interface WindowSpan {
  start: number;
  end: number;
}

function starts(window: MaintenanceWindow, around: number, timeZone: string, fromDay: number, toDay: number): WindowSpan[] {
  const [hh = '0', mm = '0'] = window.start.split(':');
  const length = parseDuration(window.duration);
  const today = wallClock(around, timeZone);
  const days = window.days ? new Set(window.days.map((d) => WEEKDAYS.indexOf(d))) : undefined;
  const out: WindowSpan[] = [];
  for (let i = fromDay; i <= toDay; i++) {
    const d = addDays(today.year, today.month, today.day, i);
    if (days && !days.has(d.weekday)) continue;
    const start = instantOf(d.year, d.month, d.day, Number(hh), Number(mm), timeZone);
    out.push({ start, end: start + length });
  }
  return out;
}

/** The window `now` falls in (the one ending last when several overlap), if any. */
export function currentWindow(windows: readonly MaintenanceWindow[], now: number, timeZone: string): WindowSpan | undefined {
  let best: WindowSpan | undefined;
  for (const w of windows) {
    for (const span of starts(w, now, timeZone, -1, 0)) {
      if (span.start <= now && now < span.end && (!best || span.end > best.end)) best = span;
    }
  }
  return best;
}

/** The first window starting strictly after `now`, or undefined when there are no windows. */
export function nextWindowStart(windows: readonly MaintenanceWindow[], now: number, timeZone: string): number | undefined {
  let best: number | undefined;
  for (const w of windows) {
    for (const span of starts(w, now, timeZone, 0, 8)) {
      if (span.start > now && (best === undefined || span.start < best)) best = span.start;
    }
  }
  return best;
}
