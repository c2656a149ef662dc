// A write the API server refused for what the object is or where it goes — a ResourceQuota or an
// admission policy forbids it, RBAC does not allow it (403), or a value is invalid (422) — told
// apart from conflicts and outages, which a retry fixes. Callers report a refusal as a condition
// naming the object and the server's reason (the quota, the policy) and delete nothing.
import type { KubernetesObject } from '@kubernetes/client-node';
import { describeApiError, apiErrorCode } from '../runtime/api-error.js';

const REFUSED = new Set([403, 422]);

export class WriteRefusedError extends Error {
  override readonly name = 'WriteRefusedError';
  constructor(
    /** `Kind namespace/name` of the object that was not written. */
    readonly target: string,
    /** The HTTP status (403, 422): apiErrorCode and describeApiError read it as they read a watch error's. */
    readonly statusCode: number,
    /** The Status reason (`Forbidden`, `Invalid`). */
    readonly statusReason: string,
    detail: string,
  ) {
    super(`the API server refused to write ${target} (${statusReason}): ${detail}`);
  }
}

const describeTarget = (obj: KubernetesObject): string => {
  const { namespace, name } = obj.metadata ?? {};
  return `${obj.kind ?? 'object'} ${namespace ? `${namespace}/` : ''}${name ?? ''}`;
};

/** The refusal `err` is, for a write of `obj`, or undefined when it is anything else. */
export function asRefusal(err: unknown, obj: KubernetesObject): WriteRefusedError | undefined {
  const code = apiErrorCode(err);
  if (code === undefined || !REFUSED.has(code)) return undefined;
  // describeApiError keeps only the Status reason and message, redacted and bounded: never the body sent.
  const { reason, message } = describeApiError(err);
  return new WriteRefusedError(describeTarget(obj), code, reason, message);
}

/** Runs a write of `obj`; a refusal is rethrown as a WriteRefusedError, anything else as it was. */
export async function refusable<T>(obj: KubernetesObject, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    throw asRefusal(err, obj) ?? err;
  }
}
