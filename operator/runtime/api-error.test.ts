import { describe, expect, it } from '@jest/globals';
import { ApiException } from '@kubernetes/client-node';
import { describeApiError, isAlreadyExists, isConflict, isGone, isNotFound } from './api-error.js';
import { Redactor, SecretRegistry } from './redact.js';

const status = (code: number, reason: string, message: string): string =>
  JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });

describe('describeApiError', () => {
  it('reads reason and message from the Status body of an ApiException', () => {
    const err = new ApiException(404, 'Not Found', status(404, 'NotFound', 'secrets "db" not found'), {});
    expect(describeApiError(err)).toEqual({ code: 404, reason: 'NotFound', message: 'secrets "db" not found' });
    expect(isNotFound(err)).toBe(true);
  });

  it('never uses the exception message, which embeds the body and headers', () => {
    const body = JSON.stringify({ kind: 'Secret', data: { key: 'c2VjcmV0LXNlY3JldA==' } });
    const err = new ApiException(500, 'Internal', body, { authorization: 'Bearer abc.def.123' });
    expect(err.message).toContain('c2VjcmV0LXNlY3JldA==');
    const d = describeApiError(err);
    expect(d).toEqual({ code: 500, reason: 'InternalError', message: 'HTTP 500' });
  });

  it('falls back to the HTTP code when the body is not JSON', () => {
    expect(describeApiError(new ApiException(503, 'x', '<html>down</html>', {}))).toEqual({
      code: 503, reason: 'ServiceUnavailable', message: 'HTTP 503',
    });
  });

  it('distinguishes AlreadyExists from an update conflict', () => {
    const exists = new ApiException(409, 'x', status(409, 'AlreadyExists', 'leases "l" already exists'), {});
    const conflict = new ApiException(409, 'x', status(409, 'Conflict', 'the object has been modified'), {});
    expect(isConflict(exists) && isConflict(conflict)).toBe(true);
    expect(isAlreadyExists(exists)).toBe(true);
    expect(isAlreadyExists(conflict)).toBe(false);
  });

  it('redacts and bounds Status messages that echo values', () => {
    const registry = new SecretRegistry();
    registry.register('super-secret-value');
    const err = new ApiException(422, 'x', status(422, 'Invalid', `spec.x: Invalid value: "super-secret-value" ${'y'.repeat(2000)}`), {});
    const d = describeApiError(err, new Redactor(registry));
    expect(d.message).not.toContain('super-secret-value');
    expect(d.message.length).toBeLessThanOrEqual(513);
  });

  it('describes watch, network, abort and plain errors', () => {
    expect(describeApiError(Object.assign(new Error('Gone'), { statusCode: 410 }))).toEqual({ code: 410, reason: 'Expired', message: 'Gone' });
    expect(isGone(Object.assign(new Error('Gone'), { statusCode: 410 }))).toBe(true);
    expect(describeApiError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' })).reason).toBe('NetworkError');
    const abort = new Error('aborted');
    abort.name = 'AbortError';
    expect(describeApiError(abort).reason).toBe('Aborted');
    expect(describeApiError(Object.assign(new Error('nope'), { reason: 'WrongBinding' })).reason).toBe('WrongBinding');
    expect(describeApiError(new RangeError('r'))).toEqual({ code: undefined, reason: 'RangeError', message: 'r' });
    expect(describeApiError('text')).toEqual({ code: undefined, reason: 'Unknown', message: 'text' });
  });
});
