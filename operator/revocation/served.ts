// Which certificate a revoked service's endpoints serve, for lifting its quarantine: only once
// every ready endpoint presents the new serial. An endpoint that cannot be reached counts as not
// yet serving it (its pod may still hold the revoked key), so the quarantine stays.
import type { V1EndpointSlice } from '@kubernetes/client-node';
import type { EncryptedService } from '../api/v1alpha1/index.js';
import { serviceNameOf, tlsSecretName } from '../api/v1alpha1/index.js';
import type { Caches } from '../encryptedservice/reconciler.js';
import { endpointsOf } from '../rotationschedule/endpoints.js';
import { servedCertificate } from '../verification/probes.js';
import { normalSerial } from './crl.js';

export type Served = 'new' | 'old' | 'none';

/** 'none' without endpoints; 'new' when every endpoint served `newSerial`; else 'old'. */
export function judgeServed(serials: readonly (string | undefined)[], newSerial: string): Served {
  if (serials.length === 0) return 'none';
  return serials.every((s) => s !== undefined && normalSerial(s) === normalSerial(newSerial)) ? 'new' : 'old';
}

/**
 * Connects to each ready endpoint on the TLS ports with the service's own (new) certificate as
 * client identity — the workload requires mTLS from peers on the bundle — and reads what it serves.
 */
export async function observeServed(
  es: EncryptedService, newSerial: string, caches: Pick<Caches, 'secrets'>,
  slices: (namespace: string, service: string) => Promise<V1EndpointSlice[]>, timeoutMs: number,
): Promise<Served> {
  const namespace = es.metadata.namespace ?? '';
  const endpoints = endpointsOf(await slices(namespace, serviceNameOf(es)), es.spec.ports);
  if (endpoints.length === 0) return 'none';
  const tls = caches.secrets.get(namespace, tlsSecretName(es.metadata.name ?? ''));
  const cert = tls?.data?.['tls.crt'];
  const key = tls?.data?.['tls.key'];
  if (!cert || !key) return 'old';
  const client = { cert: Buffer.from(cert, 'base64').toString('utf8'), key: Buffer.from(key, 'base64').toString('utf8') };
  const servername = `${serviceNameOf(es)}.${namespace}.svc`;
  const serials = await Promise.all(endpoints.map((e) => servedCertificate(e, servername, client, timeoutMs).then((s) => s.serial, () => undefined)));
  return judgeServed(serials, newSerial);
}
