import { describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { renderServices } from './render.js';

const service = (name: string, spec: Record<string, unknown> = {}): KubernetesObject => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', metadata: { name, namespace: 'shop' },
  spec: {
    workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name },
    ports: [{ name: 'https', port: 8443 }],
    keyPolicyRef: { name: 'shop' },
    ...spec,
  },
} as KubernetesObject);
const policy: KubernetesObject = { apiVersion: 'lockstep.dev/v1alpha1', kind: 'KeyPolicy', metadata: { name: 'shop', namespace: 'shop' }, spec: { certificates: { maxDuration: '48h' } } } as KubernetesObject;

describe('renderServices', () => {
  it('renders the Certificate and NetworkPolicies of each service, with the policy applied', () => {
    const { objects, warnings } = renderServices([policy, service('api', { transit: { duration: '100h' } })], 'ClusterIssuer/root');
    expect(warnings).toEqual([]);
    expect(objects.map((o) => `${o.kind}/${o.metadata?.name}`)).toEqual(['Certificate/api', 'NetworkPolicy/api-default-deny', 'NetworkPolicy/api-allow']);
    const cert = objects[0] as KubernetesObject & { spec: Record<string, unknown> };
    expect(cert.spec['duration']).toBe('48h');
    expect(cert.spec['issuerRef']).toEqual({ name: 'root', kind: 'ClusterIssuer', group: 'cert-manager.io' });
    expect(objects.every((o) => o.metadata?.ownerReferences === undefined)).toBe(true);
  });

  it('renders no Certificate for names or a trust domain the policy does not allow, and says why', () => {
    const { objects, warnings } = renderServices([
      policy,
      service('api', { transit: { extraDNSNames: ['*.example.com'] } }),
      service('web', { transit: { trustDomain: 'prod.example' } }),
    ], 'ClusterIssuer/root');
    expect(objects.filter((o) => o.kind === 'Certificate')).toEqual([]);
    expect(warnings).toEqual([
      'shop/api: DNSNameNotAllowed: KeyPolicy shop/shop does not permit extraDNSNames *.example.com: a service\'s certificate carries its own names unless the policy\'s spec.certificates.allowedDNSNames permits more; no Certificate',
      'shop/web: TrustDomainNotAllowed: transit.trustDomain prod.example is not KeyPolicy shop/shop\'s trust domain cluster.local: set transit.trustDomain to cluster.local; no Certificate',
    ]);
  });

  it('resolves peers among the files and warns about the rest', () => {
    const { objects, warnings } = renderServices([
      policy,
      service('api', { access: { ingress: [{ service: { name: 'web' } }, { service: { name: 'ghost' } }] } }),
      service('web'),
    ], 'ClusterIssuer/root');
    expect(warnings).toEqual(['shop/api: peer shop/ghost not in the files; no rule admits it']);
    const allow = objects.find((o) => o.metadata?.name === 'api-allow') as KubernetesObject & { spec: { ingress: unknown[] } };
    expect(allow.spec.ingress).toEqual([
      { from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ port: 8443, protocol: 'TCP' }] },
      // What an operator installed from manifests/ needs to verify the service.
      {
        from: [{
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'lockstep-system' } },
          podSelector: { matchLabels: { 'app.kubernetes.io/name': 'lockstep-operator', 'app.kubernetes.io/instance': 'lockstep' } },
        }],
        ports: [{ port: 8443, protocol: 'TCP' }],
      },
    ]);
  });

  it('renders a versioned StorageClass and the claim per volume, and uses defaults for a missing policy', () => {
    const { objects, warnings } = renderServices([
      service('db', { atRest: { volumes: [{ name: 'data', provider: 'aws-ebs', size: '10Gi', aws: { kmsKeyId: 'alias/shop' } }] } }),
    ], 'ClusterIssuer/root');
    expect(warnings).toEqual(['shop/db: KeyPolicy shop/shop not in the files; using its defaults']);
    const sc = objects.find((o) => o.kind === 'StorageClass') as KubernetesObject & { parameters: Record<string, string> };
    expect(sc.metadata?.name).toMatch(/^lockstep-aws-ebs-[0-9a-f]{10}$/);
    expect(sc.parameters).toMatchObject({ encrypted: 'true', kmsKeyId: 'alias/shop' });
    const pvc = objects.find((o) => o.kind === 'PersistentVolumeClaim') as KubernetesObject & { spec: { storageClassName: string } };
    expect(pvc.metadata?.name).toBe('db-data');
    expect(pvc.spec.storageClassName).toBe(sc.metadata?.name);
  });
});
