// A KMS v2 client over the plugin's Unix socket, as the API server talks to it: for
// `lockstep kms-plugin status` and for tests that exercise the real server.
import * as grpc from '@grpc/grpc-js';
import { kmsService, type DecryptResponse, type EncryptResponse, type StatusResponse } from './api.js';

export interface KmsClient {
  status(): Promise<StatusResponse>;
  encrypt(plaintext: Buffer, uid?: string): Promise<EncryptResponse>;
  decrypt(ciphertext: Buffer, keyId: string, uid?: string): Promise<Buffer>;
  close(): void;
}

type Unary = (request: unknown, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, response: unknown) => void) => void;

export function kmsClient(socket: string, timeoutMs = 5000): KmsClient {
  const Service = kmsService();
  const client = new Service(`unix://${socket}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, Unary>;
  const call = <T>(method: string, request: unknown): Promise<T> =>
    new Promise((resolve, reject) => {
      client[method]!.call(client, request, { deadline: Date.now() + timeoutMs }, (err, response) => (err ? reject(err) : resolve(response as T)));
    });
  return {
    status: () => call<StatusResponse>('Status', {}),
    encrypt: (plaintext, uid = '') => call<EncryptResponse>('Encrypt', { plaintext, uid }),
    decrypt: async (ciphertext, keyId, uid = '') => (await call<DecryptResponse>('Decrypt', { ciphertext, key_id: keyId, uid, annotations: {} })).plaintext,
    close: () => client.close(),
  };
}
