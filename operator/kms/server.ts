// The KMS v2 plugin's gRPC server on a Unix socket: Status, Encrypt and Decrypt over a
// KmsKeyBackend. The API server's `kms` provider (apiVersion v2) calls Encrypt once per DEK seed
// it generates (at start and whenever Status reports a new key ID) and Decrypt for every DEK seed
// it has not cached, so these calls are few and small; the bulk encryption of Secrets happens in
// the API server under those seeds. Logs carry key IDs, request UIDs and failure reasons only.
import { lstat, rm, chmod } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../runtime/logger.js';
import { KMS_API_VERSION, KMS_HEALTHY, kmsService, type DecryptRequest, type DecryptResponse, type EncryptRequest, type EncryptResponse, type StatusResponse } from './api.js';
import { KmsError, type KmsKeyBackend } from './backend.js';

export interface KmsPluginOptions {
  readonly socket: string;
  readonly backend: KmsKeyBackend;
  readonly log: Logger;
}

export interface RunningKmsPlugin {
  /** The address the API server's EncryptionConfiguration names (`unix://…`). */
  readonly endpoint: string;
  close(): Promise<void>;
}

const STATUS_CODE: Record<KmsError['reason'], grpc.status> = {
  Malformed: grpc.status.INVALID_ARGUMENT,
  UnknownKey: grpc.status.NOT_FOUND,
  Tampered: grpc.status.INVALID_ARGUMENT,
  KeyIdMismatch: grpc.status.INVALID_ARGUMENT,
  NoKeys: grpc.status.UNAVAILABLE,
};

function grpcError(err: unknown): grpc.ServiceError {
  const known = err instanceof KmsError;
  return Object.assign(new Error(known ? err.message : 'internal error'), {
    code: known ? STATUS_CODE[err.reason] : grpc.status.INTERNAL,
    details: known ? `${err.reason}: ${err.message}` : 'internal error',
    metadata: new grpc.Metadata(),
  });
}

function handlers(backend: KmsKeyBackend, log: Logger): grpc.UntypedServiceImplementation {
  // A failed call is logged with what it was and why; never with the bytes it carried.
  const fail = (method: string, uid: string, err: unknown): grpc.ServiceError => {
    const reason = err instanceof KmsError ? err.reason : 'Internal';
    log.warn(`${method} failed`, { uid, reason, error: err instanceof KmsError ? err.message : (err as Error).name });
    return grpcError(err);
  };
  return {
    Status(_call: grpc.ServerUnaryCall<unknown, StatusResponse>, callback: grpc.sendUnaryData<StatusResponse>) {
      backend.status().then(
        ({ keyId, problem }) => callback(null, { version: KMS_API_VERSION, healthz: problem ?? KMS_HEALTHY, key_id: keyId }),
        (err: unknown) => callback(fail('Status', '', err)),
      );
    },
    Encrypt(call: grpc.ServerUnaryCall<EncryptRequest, EncryptResponse>, callback: grpc.sendUnaryData<EncryptResponse>) {
      const { plaintext, uid } = call.request;
      backend.encrypt(plaintext).then(
        ({ keyId, ciphertext }) => {
          log.info('encrypted a data key', { uid, keyId });
          callback(null, { ciphertext, key_id: keyId, annotations: {} });
        },
        (err: unknown) => callback(fail('Encrypt', uid, err)),
      );
    },
    Decrypt(call: grpc.ServerUnaryCall<DecryptRequest, DecryptResponse>, callback: grpc.sendUnaryData<DecryptResponse>) {
      const { ciphertext, uid, key_id: keyId } = call.request;
      backend.decrypt(keyId, ciphertext).then(
        (plaintext) => {
          log.debug('decrypted a data key', { uid, keyId });
          callback(null, { plaintext });
        },
        (err: unknown) => callback(fail('Decrypt', uid, err)),
      );
    },
  };
}

/** process.umask(mask), returning the previous mask; undefined where a process cannot set it (a worker thread). */
function setUmask(mask: number): number | undefined {
  try {
    return process.umask(mask);
  } catch {
    return undefined;
  }
}

// A socket left by a plugin that crashed would make bind fail with EADDRINUSE; anything at the
// path that is not a socket is someone else's file and is left alone.
async function clearStaleSocket(path: string): Promise<void> {
  try {
    const info = await lstat(path);
    if (!info.isSocket()) throw new Error(`${path} exists and is not a socket`);
    await rm(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export async function startKmsPlugin(options: KmsPluginOptions): Promise<RunningKmsPlugin> {
  const { socket, backend, log } = options;
  // Fails here, at start, on a missing or invalid key file rather than on the first request.
  const { keyId } = await backend.status();
  await clearStaleSocket(socket);
  const server = new grpc.Server();
  server.addService(kmsService().service, handlers(backend, log));
  const endpoint = `unix://${socket}`;
  // Only the API server's user may talk to the plugin: the socket is made 0600 (umask 0177 while
  // it is bound, so it is never reachable with looser modes), and chmod says so again.
  const umask = setUmask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(endpoint, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
  } finally {
    if (umask !== undefined) setUmask(umask);
  }
  await chmod(socket, 0o600);
  log.info('KMS v2 plugin serving', { endpoint, keyId });
  return {
    endpoint,
    async close() {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), 5000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await rm(socket, { force: true });
      log.info('KMS v2 plugin stopped', { endpoint });
    },
  };
}
