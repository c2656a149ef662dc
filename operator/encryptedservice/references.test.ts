import { describe, expect, it } from '@jest/globals';
import type { EncryptedService } from '../api/v1alpha1/index.js';
import type { PodIdentity } from './claims.js';
import { issuerNotFound, portsNotExposed, servicePortsOf, unknownPeerPorts, workloadClaimedTwice } from './references.js';

const es = (name: string, matchLabels: Record<string, string>, deleting = false): EncryptedService => ({
  metadata: { name, namespace: 'shop', uid: `uid-${name}`, ...(deleting ? { deletionTimestamp: new Date() } : {}) },
  spec: { workload: { selector: { matchLabels }, serviceAccountName: name }, keyPolicyRef: { name: 'p' }, ports: [{ name: 'https', port: 8443 }] },
});
const pod = (name: string, labels: Record<string, string>): PodIdentity => ({ metadata: { name, namespace: 'shop', labels } });

describe('issuerNotFound', () => {
  it('points at the other kind when an issuer of that name exists as it', () => {
    expect(issuerNotFound({ name: 'ca', kind: 'Issuer', group: 'cert-manager.io' }, 'shop', true).message)
      .toBe('Issuer ca does not exist in namespace shop: a ClusterIssuer ca exists: set spec.transit.issuerRef.kind: ClusterIssuer to use it');
    expect(issuerNotFound({ name: 'ca', kind: 'ClusterIssuer', group: 'cert-manager.io' }, 'shop', true).message)
      .toBe('ClusterIssuer ca does not exist: an Issuer ca exists in namespace shop: set spec.transit.issuerRef.kind: Issuer to use it');
  });

  it('asks to create or change it otherwise', () => {
    expect(issuerNotFound({ name: 'ca', kind: 'Issuer', group: 'cert-manager.io' }, 'shop', false)).toEqual({
      reason: 'IssuerNotFound', message: 'Issuer ca does not exist in namespace shop: create it or change the issuer',
    });
  });
});

describe('unknownPeerPorts', () => {
  it('names the target, the ports and where the spec asks for them', () => {
    const problem = unknownPeerPorts([{ direction: 'egress', index: 1, target: { namespace: 'shop', name: 'db' }, names: ['grpc', 'admin'] }]);
    expect(problem?.reason).toBe('PeerPortNotFound');
    expect(problem?.message).toBe("shop/db declares no port grpc, admin (access.egress[1]): name a port from that EncryptedService's spec.ports; no rule opens an undeclared port");
  });

  it('is quiet when every port is declared', () => {
    expect(unknownPeerPorts([])).toBeUndefined();
  });
});

describe('workloadClaimedTwice', () => {
  it('equal selectors collide, pods or not', () => {
    const a = es('a', { app: 'x' });
    expect(workloadClaimedTwice(a, [a, es('b', { app: 'x' })], [])?.message).toContain('EncryptedService b selects the same pods (its workload.selector is the same)');
  });

  it('different selectors collide on a pod both select, and the pod is named', () => {
    const a = es('a', { app: 'x' });
    const b = es('b', { tier: 'web' });
    expect(workloadClaimedTwice(a, [a, b], [pod('p1', { app: 'x' }), pod('p2', { app: 'x', tier: 'web' })])).toEqual({
      reason: 'WorkloadClaimedTwice',
      message: 'EncryptedService b selects the same pods (pod p2 is selected by both): keep one EncryptedService per workload, or make the selectors disjoint',
    });
  });

  it('disjoint selectors, itself, and services being deleted do not count', () => {
    const a = es('a', { app: 'x' });
    expect(workloadClaimedTwice(a, [a, es('b', { app: 'y' }), es('c', { app: 'x' }, true)], [pod('p1', { app: 'x' })])).toBeUndefined();
  });
});

describe('portsNotExposed', () => {
  const web = es('web', { app: 'web' });
  const svc = (...ports: { name?: string; port: number; targetPort?: number | string }[]) => ({ metadata: { name: 'web' }, spec: { ports } });

  it('reports a TLS port no Service port routes to, and says which Service to change', () => {
    expect(portsNotExposed(web, svc({ name: 'http', port: 80, targetPort: 8080 }))).toEqual({
      reason: 'PortNotExposed',
      message: 'Service web routes to no pod port 8443 (https) of spec.ports: add the port to Service web (targetPort 8443) or fix spec.ports',
    });
  });

  it('accepts a route by targetPort number or name, or by port when targetPort is omitted', () => {
    expect(portsNotExposed(web, svc({ port: 443, targetPort: 8443 }))).toBeUndefined();
    expect(portsNotExposed(web, svc({ port: 443, targetPort: 'https' }))).toBeUndefined();
    expect(portsNotExposed(web, svc({ port: 8443 }))).toBeUndefined();
  });

  it('says nothing while the Service does not exist', () => {
    expect(portsNotExposed(web, undefined)).toBeUndefined();
  });

  it('the cache keeps only the name and ports of a Service', () => {
    const full = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop', resourceVersion: '7', labels: { a: 'b' } }, spec: { selector: { app: 'web' }, clusterIP: '10.0.0.1', ports: [{ name: 'https', port: 443, targetPort: 8443, protocol: 'TCP' }] } };
    expect(servicePortsOf(full)).toEqual({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop', resourceVersion: '7' }, spec: { ports: [{ name: 'https', port: 443, targetPort: 8443 }] } });
  });
});
