// `lockstep render`: what the operator would generate for EncryptedServices, offline — the same
// pure builders the reconciler uses, fed from files instead of informer caches.
import { parseArgs } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import type { KubernetesObject, V1OwnerReference } from '@kubernetes/client-node';
import {
  ENCRYPTED_SERVICE, KEY_POLICY, keyPolicyNamespaceOf, withEncryptedServiceDefaults, withKeyPolicyDefaults,
  type EncryptedService, type KeyPolicy,
} from '../api/v1alpha1/index.js';
import { buildCertificate } from '../encryptedservice/certificate.js';
import { dnsNamesDenied, trustDomainDenied } from '../encryptedservice/claims.js';
import { buildNetworkPolicies, resolvePeers, type ProbeSource } from '../encryptedservice/network-policy.js';
import { OPERATOR_POD_LABELS } from '../config.js';
import { parseIssuerSetting, resolveIssuer } from '../encryptedservice/policy.js';
import { buildStorageClass, buildVolumeClaim } from '../encryptedservice/storage.js';
import { CliError, type CliIo } from './io.js';

export const RENDER_USAGE = `Usage: lockstep render -f FILE [-f FILE ...] [--default-issuer Kind/name]
Prints, as YAML, the objects the operator would generate for each EncryptedService in the files:
its Certificate, NetworkPolicies, and per volume the StorageClass and PersistentVolumeClaim.
KeyPolicies and peer EncryptedServices are taken from the same files; a missing KeyPolicy is
treated as one with all defaults. Owner references, the trust bundle (it holds the issuer's
roots) and generated key material only exist in a cluster and are not shown.
`;

// Offline there is no uid; references are shown by name so the output stays readable.
const offlineOwner = (es: EncryptedService): V1OwnerReference => ({
  apiVersion: 'lockstep.dev/v1alpha1', kind: ENCRYPTED_SERVICE.kind, name: es.metadata.name ?? '', uid: 'assigned-by-the-api-server', controller: true, blockOwnerDeletion: true,
});

/** What an operator installed from manifests/ admits for its probes. */
export const INSTALLED_PROBE_SOURCE: ProbeSource = { namespace: 'lockstep-system', podLabels: { ...OPERATOR_POD_LABELS } };

export function renderServices(
  objects: readonly KubernetesObject[], defaultIssuer: string | undefined, probes: ProbeSource | undefined = INSTALLED_PROBE_SOURCE,
): { objects: KubernetesObject[]; warnings: string[] } {
  const policies = objects.filter((o): o is KeyPolicy & KubernetesObject => o.kind === KEY_POLICY.kind) as unknown as KeyPolicy[];
  const services = (objects.filter((o) => o.kind === ENCRYPTED_SERVICE.kind) as unknown as EncryptedService[])
    .map((es) => ({ ...es, metadata: { ...es.metadata, namespace: es.metadata.namespace ?? 'default' }, spec: withEncryptedServiceDefaults(es.spec) }));
  const warnings: string[] = [];
  const out: KubernetesObject[] = [];
  const lookup = (ns: string, name: string) => services.find((s) => s.metadata.namespace === ns && s.metadata.name === name);
  for (const es of services) {
    const id = `${es.metadata.namespace}/${es.metadata.name}`;
    const policyNs = keyPolicyNamespaceOf(es);
    const found = policies.find((p) => (p.metadata.namespace ?? 'default') === policyNs && p.metadata.name === es.spec.keyPolicyRef.name);
    if (!found) warnings.push(`${id}: KeyPolicy ${policyNs}/${es.spec.keyPolicyRef.name} not in the files; using its defaults`);
    const policy: KeyPolicy = found
      ? { ...found, spec: withKeyPolicyDefaults(found.spec) }
      : { metadata: { name: es.spec.keyPolicyRef.name, namespace: policyNs }, spec: withKeyPolicyDefaults({}) };
    const owner = offlineOwner(es);
    const issuer = resolveIssuer(es, policy, parseIssuerSetting(defaultIssuer));
    // Issuer grants and pods live in the cluster; what the files alone decide is checked here.
    const refused = trustDomainDenied(es, policy) ?? dnsNamesDenied(es, policy);
    if ('problem' in issuer) warnings.push(`${id}: ${issuer.problem.message}`);
    else if (refused) warnings.push(`${id}: ${refused.reason}: ${refused.message}; no Certificate`);
    else out.push(buildCertificate(es, policy, issuer.issuer, owner));
    const { peers, missing } = resolvePeers(es, lookup);
    for (const m of missing) warnings.push(`${id}: peer ${m.namespace}/${m.name} not in the files; no rule admits it`);
    out.push(...buildNetworkPolicies(es, peers, owner, probes));
    for (const volume of es.spec.atRest?.volumes ?? []) {
      const sc = buildStorageClass(es, volume);
      out.push(sc, buildVolumeClaim(es, volume, sc.metadata?.name ?? '', owner));
    }
  }
  return { objects: out.map(withoutOwnerReferences), warnings };
}

function withoutOwnerReferences(o: KubernetesObject): KubernetesObject {
  const copy = structuredClone(o);
  if (copy.metadata) delete copy.metadata.ownerReferences;
  return copy;
}

export async function renderCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      filename: { type: 'string', short: 'f', multiple: true },
      'default-issuer': { type: 'string', default: 'ClusterIssuer/lockstep-ca' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(RENDER_USAGE);
    return 0;
  }
  if (!values.filename?.length) throw new CliError(`-f FILE is required\n${RENDER_USAGE}`, 2);
  const objects: KubernetesObject[] = [];
  for (const file of values.filename) {
    for (const doc of parseAllDocuments((await io.readFile(file)).toString('utf8'))) {
      if (doc.errors.length > 0) throw new CliError(`${file}: ${doc.errors[0]?.message}`);
      const obj = doc.toJS() as KubernetesObject | null;
      if (obj?.kind) objects.push(obj);
    }
  }
  const { objects: rendered, warnings } = renderServices(objects, values['default-issuer']);
  for (const w of warnings) io.err(`warning: ${w}\n`);
  if (rendered.length === 0) throw new CliError('no EncryptedService in the files');
  io.out(rendered.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'));
  return 0;
}
