// The Kubernetes KMS v2 gRPC service (k8s.io/kms apis/v2) the API server calls over a Unix
// socket, described as data: proto-loader builds the service from this descriptor, so no .proto
// file has to travel with the compiled JavaScript (tsc copies only .ts output to dist/). Package,
// service, method and field numbers are the wire contract and must match k8s.io/kms exactly.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The `version` a v2 plugin reports from Status (the API server refuses anything else). */
export const KMS_API_VERSION = 'v2';
/** The `healthz` value that means healthy; anything else is shown in the API server's healthz. */
export const KMS_HEALTHY = 'ok';
/** Fully qualified service name, for clients and logs. */
export const KMS_SERVICE = 'v2.KeyManagementService';

const string = (id: number) => ({ type: 'string', id });
const bytes = (id: number) => ({ type: 'bytes', id });

const DESCRIPTOR = {
  nested: {
    v2: {
      nested: {
        KeyManagementService: {
          methods: {
            Status: { requestType: 'StatusRequest', responseType: 'StatusResponse' },
            Decrypt: { requestType: 'DecryptRequest', responseType: 'DecryptResponse' },
            Encrypt: { requestType: 'EncryptRequest', responseType: 'EncryptResponse' },
          },
        },
        StatusRequest: { fields: {} },
        StatusResponse: { fields: { version: string(1), healthz: string(2), key_id: string(3) } },
        DecryptRequest: {
          fields: { ciphertext: bytes(1), uid: string(2), key_id: string(3), annotations: { keyType: 'string', ...bytes(4) } },
        },
        DecryptResponse: { fields: { plaintext: bytes(1) } },
        EncryptRequest: { fields: { plaintext: bytes(1), uid: string(2) } },
        EncryptResponse: { fields: { ciphertext: bytes(1), key_id: string(2), annotations: { keyType: 'string', ...bytes(3) } } },
      },
    },
  },
};

export interface StatusResponse {
  version: string;
  healthz: string;
  key_id: string;
}
export interface EncryptRequest {
  plaintext: Buffer;
  uid: string;
}
export interface EncryptResponse {
  ciphertext: Buffer;
  key_id: string;
  annotations: Record<string, Buffer>;
}
export interface DecryptRequest {
  ciphertext: Buffer;
  uid: string;
  key_id: string;
  annotations: Record<string, Buffer>;
}
export interface DecryptResponse {
  plaintext: Buffer;
}

let cached: grpc.ServiceClientConstructor | undefined;

/** The service constructor: `.service` for a server, `new (address, credentials)` for a client. */
export function kmsService(): grpc.ServiceClientConstructor {
  if (cached) return cached;
  // keepCase: the fields are `key_id` on the wire and in these types; defaults: absent fields
  // (an empty key_id, no annotations) arrive as '' and {} rather than undefined.
  // (protobufjs's INamespace typings demand members its JSON format leaves optional: `comment`.)
  const definition = protoLoader.fromJSON(DESCRIPTOR as unknown as Parameters<typeof protoLoader.fromJSON>[0], { keepCase: true, defaults: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { v2: { KeyManagementService: grpc.ServiceClientConstructor } };
  cached = pkg.v2.KeyManagementService;
  return cached;
}
