// The Secret-manifest side of `lockstep seal`: reading a Secret (what `kubectl create secret …
// --dry-run=client -o yaml` prints), the complete `sealed:` entry for an EncryptedService, and
// merging that entry into an EncryptedService file (comments and order kept). Pure.
import { isMap, isSeq, parseAllDocuments, stringify, type Document } from 'yaml';
import { CliError, EXIT } from './errors.js';

export interface SecretManifest {
  readonly name?: string;
  readonly namespace?: string;
  readonly type?: string;
  /** Every key's value (data base64-decoded, stringData as UTF-8; stringData wins like the API server). */
  readonly values: Map<string, Buffer>;
}

export interface SealedEntry {
  readonly name: string;
  readonly type?: string;
  readonly encryptedData: Readonly<Record<string, string>>;
}

const KEY = /^[-._a-zA-Z0-9]+$/;

/** Reads one Secret from YAML or JSON; the error never quotes a value. */
export function parseSecretManifest(text: string): SecretManifest {
  const docs = parseAllDocuments(text).filter((d) => d.contents !== null);
  if (docs.length !== 1) throw new CliError(`expected one Secret manifest, got ${docs.length} documents`, EXIT.usage);
  const doc = docs[0] as Document;
  if (doc.errors.length > 0) throw new CliError(`the Secret manifest is not valid YAML (line ${doc.errors[0]?.linePos?.[0]?.line ?? '?'})`, EXIT.usage);
  const secret = doc.toJS() as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown }; type?: unknown; data?: unknown; stringData?: unknown } | null;
  if (!secret || typeof secret !== 'object' || secret.kind !== 'Secret') throw new CliError('the manifest is not a Secret (kind: Secret)', EXIT.usage);
  const values = new Map<string, Buffer>();
  const entries = (field: string, map: unknown): [string, unknown][] => {
    if (map == null) return [];
    if (typeof map !== 'object' || Array.isArray(map)) throw new CliError(`the Secret's ${field} must be a map`, EXIT.usage);
    return Object.entries(map);
  };
  for (const [key, value] of entries('data', secret.data)) {
    if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value.replace(/\s/g, ''))) throw new CliError(`the Secret's data.${key} is not base64`, EXIT.usage);
    values.set(key, Buffer.from(value, 'base64'));
  }
  for (const [key, value] of entries('stringData', secret.stringData)) {
    if (typeof value !== 'string') throw new CliError(`the Secret's stringData.${key} must be a string`, EXIT.usage);
    values.set(key, Buffer.from(value, 'utf8'));
  }
  for (const key of values.keys()) if (!KEY.test(key)) throw new CliError(`the Secret's key ${JSON.stringify(key)} is not a valid Secret key`, EXIT.usage);
  if (values.size === 0) throw new CliError('the Secret has no data or stringData: nothing to seal', EXIT.usage);
  const text_ = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const name = text_(secret.metadata?.name);
  const namespace = text_(secret.metadata?.namespace);
  const type = text_(secret.type);
  return { values, ...(name ? { name } : {}), ...(namespace ? { namespace } : {}), ...(type ? { type } : {}) };
}

/** The entry for spec.secrets.sealed; `type` only when it is not the default Opaque. */
export function sealedEntry(name: string, encryptedData: Readonly<Record<string, string>>, type?: string): SealedEntry {
  return { name, ...(type && type !== 'Opaque' ? { type } : {}), encryptedData };
}

/** The entry as a YAML list item, ready to paste under `sealed:` (JWEs on one line each). */
export function sealedEntryYaml(entry: SealedEntry): string {
  return stringify([entry], { lineWidth: 0 });
}

/**
 * The EncryptedService file with `entry` in spec.secrets.sealed (replacing an entry of the same
 * name, else appended). With several EncryptedServices in the file, `service` picks one. The
 * sealed values are bound to `namespace`: a service in another namespace is refused.
 */
export function mergeSealedEntry(fileText: string, entry: SealedEntry, namespace: string, service?: string): string {
  const docs = parseAllDocuments(fileText);
  if (docs.some((d) => d.errors.length > 0)) throw new CliError('the file to merge into is not valid YAML', EXIT.usage);
  const candidates = docs.filter((d) => d.get('kind') === 'EncryptedService' && (service === undefined || d.getIn(['metadata', 'name']) === service));
  if (candidates.length !== 1) {
    throw new CliError(candidates.length === 0
      ? `no EncryptedService${service ? ` named ${service}` : ''} in the file to merge into`
      : 'several EncryptedServices in the file to merge into: pick one with --service', EXIT.usage);
  }
  const doc = candidates[0] as Document;
  const esNamespace = doc.getIn(['metadata', 'namespace']);
  if (typeof esNamespace === 'string' && esNamespace !== namespace) {
    throw new CliError(`EncryptedService ${esNamespace}/${String(doc.getIn(['metadata', 'name']))} is in namespace ${esNamespace}, but the values were sealed for ${namespace}: they would not open there`, EXIT.usage);
  }
  const sealed = doc.getIn(['spec', 'secrets', 'sealed'], true);
  const node = doc.createNode(entry);
  if (isSeq(sealed)) {
    const at = sealed.items.findIndex((item) => isMap(item) && item.get('name') === entry.name);
    if (at >= 0) sealed.items[at] = node;
    else sealed.items.push(node);
  } else {
    doc.setIn(['spec', 'secrets', 'sealed'], doc.createNode([entry]));
  }
  return docs.map((d) => d.toString({ lineWidth: 0, flowCollectionPadding: false })).join('');
}
