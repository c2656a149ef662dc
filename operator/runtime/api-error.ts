import { defaultRedactor, type Redactor } from './redact.js';

// client-node's ApiException puts the whole response body and headers into `message`, and a
// failed write's body can echo the object that was sent (a Secret's data included). Errors are
// therefore described from the parsed Status `reason`/`message` only, never from `message`.

export interface ApiErrorDescription {
  /** HTTP status code, when the error came from the API server. */
  readonly code: number | undefined;
  /** A CamelCase reason: the Status reason (`NotFound`, `Conflict`, ...) or a local category. */
  readonly reason: string;
  /** A short human message, redacted and bounded. */
  readonly message: string;
}

const MAX_MESSAGE = 512;

const REASON_BY_CODE: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

interface StatusLike {
  reason?: unknown;
  message?: unknown;
  code?: unknown;
}

/** True for client-node's ApiException (duck-typed so this module needs no client-node import). */
function isApiException(err: unknown): err is { code: number; body: unknown; headers: unknown } {
  return (
    typeof err === 'object' && err !== null &&
    typeof (err as { code?: unknown }).code === 'number' &&
    'body' in err && 'headers' in err
  );
}

function parseStatus(body: unknown): StatusLike | undefined {
  if (typeof body === 'object' && body !== null) return body as StatusLike;
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) return undefined;
  try {
    const parsed: unknown = JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8'));
    return typeof parsed === 'object' && parsed !== null ? (parsed as StatusLike) : undefined;
  } catch {
    return undefined;
  }
}

function bounded(text: string, redactor: Redactor): string {
  const clean = redactor.redactString(text);
  return clean.length > MAX_MESSAGE ? `${clean.slice(0, MAX_MESSAGE)}…` : clean;
}

function reasonForCode(code: number | undefined): string {
  if (code === undefined) return 'Unknown';
  return REASON_BY_CODE[code] ?? (code >= 500 ? 'InternalError' : `HTTP${code}`);
}

/** Describes any thrown value without leaking request or response bodies. */
export function describeApiError(err: unknown, redactor: Redactor = defaultRedactor): ApiErrorDescription {
  if (isApiException(err)) {
    const status = parseStatus(err.body);
    const reason = typeof status?.reason === 'string' && status.reason !== '' ? status.reason : reasonForCode(err.code);
    const message = typeof status?.message === 'string' && status.message !== ''
      ? bounded(status.message, redactor)
      : `HTTP ${err.code}`;
    return { code: err.code, reason, message };
  }
  if (err instanceof Error) {
    // Watch failures carry `statusCode`; node-fetch network failures carry `code` like ECONNREFUSED.
    const statusCode = (err as { statusCode?: unknown }).statusCode;
    if (typeof statusCode === 'number') {
      return { code: statusCode, reason: reasonForCode(statusCode), message: bounded(err.message, redactor) };
    }
    const reason = (err as { reason?: unknown }).reason;
    const sysCode = (err as { code?: unknown }).code;
    if (err.name === 'AbortError') return { code: undefined, reason: 'Aborted', message: bounded(err.message, redactor) };
    if (err.name === 'FetchError' || (typeof sysCode === 'string' && /^E[A-Z]+/.test(sysCode))) {
      return { code: undefined, reason: 'NetworkError', message: bounded(err.message, redactor) };
    }
    return {
      code: undefined,
      reason: typeof reason === 'string' && /^[A-Za-z][A-Za-z0-9]*$/.test(reason) ? reason : err.name || 'Error',
      message: bounded(err.message, redactor),
    };
  }
  return { code: undefined, reason: 'Unknown', message: bounded(String(err), redactor) };
}

export function apiErrorCode(err: unknown): number | undefined {
  if (isApiException(err)) return err.code;
  const statusCode = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof statusCode === 'number' ? statusCode : undefined;
}

export const isNotFound = (err: unknown): boolean => apiErrorCode(err) === 404;
/** 409: an optimistic-concurrency conflict or AlreadyExists on create. */
export const isConflict = (err: unknown): boolean => apiErrorCode(err) === 409;
export const isAlreadyExists = (err: unknown): boolean =>
  isConflict(err) && describeApiError(err).reason === 'AlreadyExists';
export const isGone = (err: unknown): boolean => apiErrorCode(err) === 410;
