import { describe, expect, it } from '@jest/globals';
import type { V1OwnerReference } from '@kubernetes/client-node';
import {
  API_VERSION, withEncryptedServiceDefaults, type EncryptedService, type EncryptedServiceSpec,
} from '../api/v1alpha1/index.js';
import {
  allowPolicyName, buildNetworkPolicies, defaultDenyPolicyName, peerServiceRefs, resolvePeers,
  type EncryptedServiceLookup, type NetworkPolicy,
} from './network-policy.js';

const owner: V1OwnerReference = {
  apiVersion: API_VERSION, kind: 'EncryptedService', name: 'api', uid: 'uid-api', controller: true, blockOwnerDeletion: true,
};

function service(name: string, namespace: string, spec: Partial<EncryptedServiceSpec> = {}): EncryptedService {
  return {
    apiVersion: API_VERSION,
    kind: 'EncryptedService',
    metadata: { name, namespace, uid: `uid-${name}` },
    spec: withEncryptedServiceDefaults({
      workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name },
      ports: [{ name: 'https', port: 8443 }, { name: 'grpc', port: 9443 }],
      keyPolicyRef: { name: 'default' },
      ...spec,
    }),
  };
}

function lookupOf(...services: EncryptedService[]): EncryptedServiceLookup {
  return (namespace, name) => services.find((s) => s.metadata.namespace === namespace && s.metadata.name === name);
}

const web = service('web', 'shop');
const billing = service('billing', 'payments', { ports: [{ name: 'https', port: 7443 }, { name: 'admin', port: 7444 }] });
const nobody: EncryptedServiceLookup = () => undefined;

function policies(es: EncryptedService, lookup: EncryptedServiceLookup = nobody): { deny: NetworkPolicy; allow: NetworkPolicy } {
  const { peers } = resolvePeers(es, lookup);
  const [deny, allow, ...rest] = buildNetworkPolicies(es, peers, owner);
  expect(rest).toEqual([]);
  if (!deny || !allow) throw new Error('expected two policies');
  return { deny, allow };
}

/** Paths of values the API server would drop (undefined, empty lists), which would make the
 * desired object differ from the live one forever. */
function unstorable(value: unknown, path = ''): string[] {
  if (value === undefined) return [path];
  if (Array.isArray(value)) return value.length === 0 ? [path] : value.flatMap((v, i) => unstorable(v, `${path}[${i}]`));
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => unstorable(v, `${path}.${k}`));
  return [];
}

const tls = [{ protocol: 'TCP', port: 8443 }, { protocol: 'TCP', port: 9443 }];

describe('buildNetworkPolicies: the operator\'s probes', () => {
  const probes = { namespace: 'lockstep-system', podLabels: { 'app.kubernetes.io/name': 'lockstep-operator' } };
  const build = (es: EncryptedService, lookup: EncryptedServiceLookup = nobody) =>
    buildNetworkPolicies(es, resolvePeers(es, lookup).peers, owner, probes);

  it('admits the operator\'s pods, pinned to its namespace by name, on the TLS ports only', () => {
    const [deny, allow] = build(service('api', 'shop'));
    expect(deny?.spec).toEqual({ podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Ingress'] });
    expect(allow?.spec?.ingress).toEqual([{
      from: [{
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'lockstep-system' } },
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'lockstep-operator' } },
      }],
      ports: tls,
    }]);
  });

  it('comes after the declared peers, so their rules keep their positions', () => {
    const web = service('web', 'shop');
    const api = service('api', 'shop', { access: { ingress: [{ service: { name: 'web' }, ports: ['https'] }] } });
    const [, allow] = build(api, lookupOf(web));
    expect(allow?.spec?.ingress?.map((r) => r.from?.[0]?.namespaceSelector?.matchLabels)).toEqual([
      undefined, { 'kubernetes.io/metadata.name': 'lockstep-system' },
    ]);
    expect(allow?.spec?.ingress?.[0]?.ports).toEqual([{ protocol: 'TCP', port: 8443 }]);
  });

  it('is absent when no probe source is configured', () => {
    const api = service('api', 'shop');
    expect(buildNetworkPolicies(api, [], owner)[1]?.spec?.ingress).toBeUndefined();
  });
});

describe('buildNetworkPolicies', () => {
  it('without peers: a default-deny policy and an allow policy that admits nothing', () => {
    const api = service('api', 'shop');
    const { deny, allow } = policies(api);
    const metadata = (name: string) => ({
      name,
      namespace: 'shop',
      labels: { 'app.kubernetes.io/managed-by': 'lockstep', 'lockstep.dev/encrypted-service': 'api', 'lockstep.dev/component': 'access' },
      ownerReferences: [owner],
    });
    expect(deny).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: metadata('api-default-deny'),
      spec: { podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Ingress'] },
    });
    // No `ingress: []`: the server drops empty lists, so it would never match the live object.
    expect(allow).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: metadata('api-allow'),
      spec: { podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Ingress'] },
    });
    expect([defaultDenyPolicyName('api'), allowPolicyName('api')]).toEqual(['api-default-deny', 'api-allow']);
  });

  const ingressCases: { name: string; spec: Partial<EncryptedServiceSpec>; ingress: unknown }[] = [
    {
      name: 'a same-namespace service peer: its workload pods, on all of this service\'s TLS ports',
      spec: { access: { ingress: [{ service: { name: 'web' } }] } },
      ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: tls }],
    },
    {
      name: 'a service peer naming its own namespace is still written as same-namespace',
      spec: { access: { ingress: [{ service: { name: 'web', namespace: 'shop' } }] } },
      ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: tls }],
    },
    {
      name: 'a cross-namespace service peer: pinned to its namespace by the immutable name label',
      spec: { access: { ingress: [{ service: { name: 'billing', namespace: 'payments' } }] } },
      ingress: [{
        from: [{
          podSelector: { matchLabels: { app: 'billing' } },
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'payments' } },
        }],
        // Ingress port names are this service's ports, not the peer's.
        ports: tls,
      }],
    },
    {
      name: 'a peer limited to a subset of ports',
      spec: { access: { ingress: [{ service: { name: 'web' }, ports: ['grpc'] }] } },
      ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ protocol: 'TCP', port: 9443 }] }],
    },
    {
      name: 'selector peers map directly',
      spec: {
        access: {
          ingress: [
            { podSelector: { matchLabels: { role: 'monitoring' } }, namespaceSelector: { matchLabels: { team: 'sre' } }, ports: ['https'] },
            { namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] } },
            { podSelector: { matchLabels: { role: 'batch' } } },
          ],
        },
      },
      ingress: [
        {
          from: [{ podSelector: { matchLabels: { role: 'monitoring' } }, namespaceSelector: { matchLabels: { team: 'sre' } } }],
          ports: [{ protocol: 'TCP', port: 8443 }],
        },
        { from: [{ namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] } }], ports: tls },
        { from: [{ podSelector: { matchLabels: { role: 'batch' } } }], ports: tls },
      ],
    },
    {
      name: 'empty selector members are dropped, an empty selector ({} = everything) is kept',
      spec: { access: { ingress: [{ podSelector: { matchLabels: { role: 'x' }, matchExpressions: [] }, namespaceSelector: {} }] } },
      ingress: [{ from: [{ podSelector: { matchLabels: { role: 'x' } }, namespaceSelector: {} }], ports: tls }],
    },
  ];

  it.each(ingressCases)('$name', ({ spec, ingress }) => {
    const { deny, allow } = policies(service('api', 'shop', spec), lookupOf(web, billing));
    expect(allow.spec).toEqual({ podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Ingress'], ingress });
    expect(deny.spec).toEqual({ podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Ingress'] });
    expect(unstorable(allow)).toEqual([]);
  });

  it('follows a peer service\'s workload selector, match expressions included', () => {
    const worker = service('worker', 'shop', {
      workload: { selector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, serviceAccountName: 'worker' },
    });
    const { allow } = policies(service('api', 'shop', { access: { ingress: [{ service: { name: 'worker' } }] } }), lookupOf(worker));
    expect(allow.spec?.ingress?.[0]?.from).toEqual([{ podSelector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] } }]);
  });

  it('egress restriction: deny both ways, allow the named destinations on their ports, then DNS', () => {
    const api = service('api', 'shop', {
      access: {
        egress: {
          restrict: true,
          to: [
            // Egress service ports name the destination's ports: billing's "https" is 7443.
            { service: { name: 'billing', namespace: 'payments' }, ports: ['https'] },
            { service: { name: 'web' } },
            // Selector destinations: container port names, or every port when none are named.
            { podSelector: { matchLabels: { app: 'postgres' } }, ports: ['postgres', 'metrics'] },
            { namespaceSelector: { matchLabels: { team: 'data' } } },
          ],
        },
      },
    });
    const { deny, allow } = policies(api, lookupOf(web, billing));
    expect([...unstorable(deny), ...unstorable(allow)]).toEqual([]);
    expect(deny.spec?.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(allow.spec?.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(allow.spec?.ingress).toBeUndefined();
    expect(allow.spec?.egress).toEqual([
      {
        to: [{
          podSelector: { matchLabels: { app: 'billing' } },
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'payments' } },
        }],
        ports: [{ protocol: 'TCP', port: 7443 }],
      },
      { to: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: tls },
      { to: [{ podSelector: { matchLabels: { app: 'postgres' } } }], ports: [{ protocol: 'TCP', port: 'metrics' }, { protocol: 'TCP', port: 'postgres' }] },
      { to: [{ namespaceSelector: { matchLabels: { team: 'data' } } }] },
      {
        to: [{
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
          podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
        }],
        ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
      },
    ]);
  });

  it('egress restriction without DNS leaves out the DNS rule; with nothing allowed, egress is simply denied', () => {
    const withPeer = policies(service('api', 'shop', { access: { egress: { restrict: true, allowDNS: false, to: [{ service: { name: 'web' } }] } } }), lookupOf(web));
    expect(withPeer.allow.spec?.egress).toEqual([{ to: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: tls }]);

    const nothing = policies(service('api', 'shop', { access: { egress: { restrict: true, allowDNS: false } } }));
    expect(nothing.allow.spec).toEqual({ podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Ingress', 'Egress'] });
    expect(nothing.deny.spec?.policyTypes).toEqual(['Ingress', 'Egress']);
  });

  it('DNS is allowed by default (the CRD default) when egress is restricted', () => {
    const { allow } = policies(service('api', 'shop', { access: { egress: { restrict: true } } }));
    expect(allow.spec?.egress).toHaveLength(1);
    expect(allow.spec?.egress?.[0]?.ports).toEqual([{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }]);
  });

  it('is deterministic: same inputs give identical objects, whatever order peers or ports arrive in', () => {
    const spec: Partial<EncryptedServiceSpec> = {
      access: {
        ingress: [{ service: { name: 'web' } }, { podSelector: { matchLabels: { a: 'b' } } }, { service: { name: 'billing', namespace: 'payments' } }],
        egress: { restrict: true, to: [{ service: { name: 'web' } }, { podSelector: {} }] },
      },
    };
    const api = service('api', 'shop', spec);
    const { peers } = resolvePeers(api, lookupOf(web, billing));
    const first = JSON.stringify(buildNetworkPolicies(api, peers, owner));
    expect(JSON.stringify(buildNetworkPolicies(api, resolvePeers(api, lookupOf(billing, web)).peers, owner))).toBe(first);
    expect(JSON.stringify(buildNetworkPolicies(api, [...peers].reverse(), owner))).toBe(first);
    const reorderedPorts = service('api', 'shop', { ...spec, ports: [{ name: 'grpc', port: 9443 }, { name: 'https', port: 8443 }] });
    expect(JSON.stringify(buildNetworkPolicies(reorderedPorts, resolvePeers(reorderedPorts, lookupOf(web, billing)).peers, owner))).toBe(first);
  });

  it('returns objects that share nothing with the spec or the peer services', () => {
    const api = service('api', 'shop', { access: { ingress: [{ service: { name: 'web' } }, { podSelector: { matchLabels: { a: 'b' } } }] } });
    const { allow, deny } = policies(api, lookupOf(web));
    const peerLabels = allow.spec?.ingress?.[0]?.from?.[0]?.podSelector?.matchLabels;
    if (peerLabels) peerLabels.app = 'changed';
    const podLabels = deny.spec?.podSelector?.matchLabels;
    if (podLabels) podLabels.app = 'changed';
    expect(web.spec.workload.selector.matchLabels).toEqual({ app: 'web' });
    expect(api.spec.workload.selector.matchLabels).toEqual({ app: 'api' });
    expect(allow.spec?.podSelector?.matchLabels).toEqual({ app: 'api' });
  });
});

describe('resolvePeers', () => {
  it('fails closed on a missing service peer: no rule, listed once in missing, other peers unaffected', () => {
    const api = service('api', 'shop', {
      access: {
        ingress: [{ service: { name: 'ghost' } }, { service: { name: 'web' } }, { service: { name: 'ghost', namespace: 'shop' } }],
        egress: { restrict: true, to: [{ service: { name: 'gone', namespace: 'elsewhere' } }] },
      },
    });
    const { peers, missing, unknownPorts } = resolvePeers(api, lookupOf(web));
    expect(missing).toEqual([{ namespace: 'shop', name: 'ghost' }, { namespace: 'elsewhere', name: 'gone' }]);
    expect(unknownPorts).toEqual([]);
    expect(peers.map((p) => [p.direction, p.index, p.service])).toEqual([['ingress', 1, { namespace: 'shop', name: 'web' }]]);
    const { allow } = policies(api, lookupOf(web));
    expect(allow.spec?.ingress).toEqual([{ from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: tls }]);
    // Only DNS: the missing destination opens nothing.
    expect(allow.spec?.egress).toHaveLength(1);
  });

  it('reports port names the destination does not declare and never widens a rule to every port', () => {
    const api = service('api', 'shop', {
      access: {
        egress: {
          restrict: true,
          to: [
            { service: { name: 'billing', namespace: 'payments' }, ports: ['https', 'grpc'] },
            { service: { name: 'billing', namespace: 'payments' }, ports: ['grpc'] },
          ],
        },
      },
    });
    const { peers, unknownPorts } = resolvePeers(api, lookupOf(billing));
    expect(unknownPorts).toEqual([
      { direction: 'egress', index: 0, target: { namespace: 'payments', name: 'billing' }, names: ['grpc'] },
      { direction: 'egress', index: 1, target: { namespace: 'payments', name: 'billing' }, names: ['grpc'] },
    ]);
    expect(peers).toHaveLength(1);
    expect(peers[0]?.ports).toEqual([{ protocol: 'TCP', port: 7443 }]);
  });

  it('an explicitly empty port list opens nothing', () => {
    const api = service('api', 'shop', {
      access: { ingress: [{ podSelector: { matchLabels: { a: 'b' } }, ports: [] }], egress: { restrict: true, to: [{ podSelector: {}, ports: [] }] } },
    });
    expect(resolvePeers(api, nobody).peers).toEqual([]);
  });

  it('ignores egress.to unless egress is restricted', () => {
    const spec: EncryptedServiceSpec = {
      ...service('api', 'shop').spec,
      access: { egress: { restrict: false, allowDNS: true, to: [{ service: { name: 'ghost' } }] } },
    };
    const api: EncryptedService = { metadata: { name: 'api', namespace: 'shop' }, spec };
    expect(resolvePeers(api, nobody)).toEqual({ peers: [], missing: [], unknownPorts: [] });
    const { allow, deny } = policies(api);
    expect(allow.spec?.egress).toBeUndefined();
    expect(deny.spec?.policyTypes).toEqual(['Ingress']);
  });

  it('needs the service\'s namespace', () => {
    const api = service('api', 'shop');
    delete api.metadata.namespace;
    expect(() => resolvePeers(api, nobody)).toThrow(/no namespace/);
  });
});

describe('peerServiceRefs', () => {
  it('lists each referenced EncryptedService once, with the default namespace filled in', () => {
    const api = service('api', 'shop', {
      access: {
        ingress: [{ service: { name: 'web' } }, { podSelector: {} }, { service: { name: 'web', namespace: 'shop' } }],
        egress: { restrict: true, to: [{ service: { name: 'billing', namespace: 'payments' } }, { service: { name: 'web' } }] },
      },
    });
    expect(peerServiceRefs(api)).toEqual([{ namespace: 'shop', name: 'web' }, { namespace: 'payments', name: 'billing' }]);
  });

  it('leaves out egress destinations while egress is not restricted', () => {
    const api = service('api', 'shop', { access: { egress: { restrict: false, to: [{ service: { name: 'billing' } }] } } });
    expect(peerServiceRefs(api)).toEqual([]);
  });
});
