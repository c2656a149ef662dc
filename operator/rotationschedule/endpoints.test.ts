import { describe, expect, it } from '@jest/globals';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { endpointsOf } from './endpoints.js';

const slice = (over: Partial<V1EndpointSlice>): V1EndpointSlice => ({ addressType: 'IPv4', endpoints: [], ...over });

describe('endpointsOf', () => {
  const tlsPorts = [{ name: 'https', port: 443 }];
  it('lists ready endpoints on the TLS ports, deduplicated and sorted', () => {
    const slices = [
      slice({
        ports: [{ name: 'https', port: 8443 }, { name: 'metrics', port: 9090 }],
        endpoints: [
          { addresses: ['127.0.0.3'] },
          { addresses: ['127.0.0.2'], conditions: { ready: true } },
          { addresses: ['127.0.0.9'], conditions: { ready: false } },
        ],
      }),
      slice({ ports: [{ name: 'https', port: 8443 }], endpoints: [{ addresses: ['127.0.0.2'] }] }),
      slice({ addressType: 'FQDN', ports: [{ name: 'https', port: 8443 }], endpoints: [{ addresses: ['db.example.com'] }] }),
    ];
    expect(endpointsOf(slices, tlsPorts)).toEqual([{ address: '127.0.0.2', port: 8443 }, { address: '127.0.0.3', port: 8443 }]);
  });

  it('matches an unnamed slice port by number', () => {
    expect(endpointsOf([slice({ ports: [{ port: 443 }], endpoints: [{ addresses: ['10.0.0.1'] }] })], tlsPorts))
      .toEqual([{ address: '10.0.0.1', port: 443 }]);
  });

  it('finds nothing without a matching port', () => {
    expect(endpointsOf([slice({ ports: [{ name: 'http', port: 80 }], endpoints: [{ addresses: ['10.0.0.1'] }] })], tlsPorts)).toEqual([]);
  });
});
