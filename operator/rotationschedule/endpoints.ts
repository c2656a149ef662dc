// The addresses a rotated service is reached at: its EndpointSlices' ready endpoints on the
// EncryptedService's TLS ports. Slice ports carry the Service port's name, so a declared TLS
// port matches by name, or by number when the slice port is unnamed.
import type { V1EndpointSlice } from '@kubernetes/client-node';
import type { TLSPort } from '../api/v1alpha1/index.js';
import type { Endpoint } from './tls-verification.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export function endpointsOf(slices: readonly V1EndpointSlice[], tlsPorts: readonly TLSPort[]): Endpoint[] {
  const out = new Map<string, Endpoint>();
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
    const ports = (slice.ports ?? []).filter((p) => p.port !== undefined && (p.protocol ?? 'TCP') === 'TCP'
      && tlsPorts.some((t) => (p.name ? p.name === t.name : p.port === t.port)));
    for (const endpoint of slice.endpoints ?? []) {
      // Terminating or not-ready endpoints receive no traffic; they are not what clients see.
      if (endpoint.conditions?.ready === false) continue;
      for (const address of endpoint.addresses) {
        for (const p of ports) out.set(`${address}:${p.port}`, { address, port: p.port! });
      }
    }
  }
  return [...out.values()].sort((a, b) => `${a.address}:${a.port}`.localeCompare(`${b.address}:${b.port}`));
}
