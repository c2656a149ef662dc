import { AsyncLocalStorage } from 'node:async_hooks';

// How long a change waits before the operator acts on it: the controller runs each reconcile in
// a context that knows when the event that queued its key arrived; the leader guard, which sees
// every mutating request, reports the reconcile's first write to it. Writes leave no trace in
// reconcilers themselves, and a write sent after its reconcile returned (a batched Event) is not
// the reconcile's answer to the event, so it is not counted.

interface Pending {
  onFirstWrite: ((resource: string) => void) | undefined;
  open: boolean;
}

const current = new AsyncLocalStorage<Pending>();

/** Runs `reconcile`; the first write it sends (see noteWrite) calls `onFirstWrite` once. */
export async function observeFirstWrite<T>(onFirstWrite: (resource: string) => void, reconcile: () => Promise<T>): Promise<T> {
  const pending: Pending = { onFirstWrite, open: true };
  try {
    return await current.run(pending, reconcile);
  } finally {
    pending.open = false;
  }
}

/** Called for every mutating request, with its resource (see resourceOfPath). */
export function noteWrite(resource: string): void {
  const pending = current.getStore();
  if (!pending?.open || !pending.onFirstWrite) return;
  const report = pending.onFirstWrite;
  pending.onFirstWrite = undefined;
  report(resource);
}

/**
 * `networkpolicies`, `encryptedservices/status`, ... from a request path, so a metric label says
 * what was written without naming the object (names are tenant-chosen and unbounded).
 */
export function resourceOfPath(path: string): string {
  const parts = new URL(path, 'http://x').pathname.split('/').filter(Boolean);
  // /api/v1/... or /apis/group/version/...
  let rest = parts[0] === 'api' ? parts.slice(2) : parts.slice(3);
  if (rest[0] === 'namespaces' && rest.length > 2) rest = rest.slice(2);
  const [resource, , subresource] = rest;
  if (!resource) return 'unknown';
  return subresource ? `${resource}/${subresource}` : resource;
}
