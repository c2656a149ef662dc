// What backup, restore and drill read from and write to the cluster: KeyPolicies, their key
// Secrets, the envelope stores wrapped under their KEKs (found by the policy labels the operator
// puts on them, in any namespace), and the sealed values of EncryptedServices. Through the
// user's kubeconfig; nothing here logs.
import * as k8s from '@kubernetes/client-node';
import type { V1Secret } from '@kubernetes/client-node';
import {
  ENCRYPTED_SERVICE, GROUP, KEY_POLICY, LABEL_COMPONENT, LABEL_ENCRYPTED_SERVICE, LABEL_KEY_POLICY, VERSION, keyPolicyNamespaceOf,
  type EncryptedService, type KeyPolicy,
} from '../api/v1alpha1/index.js';
import { PREVIOUS_DEK_KEY } from '../encryptedservice/data-key-rotation.js';
import { readEnvelopeStore } from '../encryptedservice/envelope-store.js';
import { ANNOTATION_AUDIT_PENDING } from '../keypolicy/audit-outbox.js';
import { ANNOTATION_KEY_POLICY_UID } from '../keypolicy/key-retention.js';
import { LABEL_KEY_POLICY_NAMESPACE } from '../keypolicy/names.js';
import type { PolicyKeyState, StoredSecret } from './backup-file.js';
import type { SealedUnderTest, StoreUnderTest } from './drill-check.js';

/** Annotations that describe one incarnation or one moment, not the keys: never restored. */
const TRANSIENT_ANNOTATIONS = [ANNOTATION_AUDIT_PENDING, ANNOTATION_KEY_POLICY_UID, 'kubectl.kubernetes.io/last-applied-configuration'];

function keep(annotations: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!annotations) return undefined;
  const out = Object.fromEntries(Object.entries(annotations).filter(([k]) => !TRANSIENT_ANNOTATIONS.includes(k)));
  return Object.keys(out).length > 0 ? out : undefined;
}

const isNotFound = (err: unknown) => (err as { code?: number }).code === 404;

export class ClusterKeys {
  private readonly core: k8s.CoreV1Api;
  private readonly custom: k8s.CustomObjectsApi;

  constructor(kc: k8s.KubeConfig) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  async policies(namespace?: string): Promise<KeyPolicy[]> {
    const ref = { group: GROUP, version: VERSION, plural: KEY_POLICY.plural };
    const list = (namespace ? await this.custom.listNamespacedCustomObject({ ...ref, namespace }) : await this.custom.listClusterCustomObject(ref)) as { items: KeyPolicy[] };
    return list.items;
  }

  async services(): Promise<EncryptedService[]> {
    return ((await this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: ENCRYPTED_SERVICE.plural })) as { items: EncryptedService[] }).items;
  }

  /** Every envelope store the operator labelled with a KeyPolicy, in any namespace. */
  async envelopeStores(): Promise<V1Secret[]> {
    const list = await this.core.listSecretForAllNamespaces({ labelSelector: `${LABEL_COMPONENT}=secrets,${LABEL_KEY_POLICY},${LABEL_KEY_POLICY_NAMESPACE}` });
    return list.items;
  }

  async secret(namespace: string, name: string): Promise<V1Secret | undefined> {
    try {
      return await this.core.readNamespacedSecret({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async policy(namespace: string, name: string): Promise<KeyPolicy | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: KEY_POLICY.plural, namespace, name })) as KeyPolicy;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Key Secrets in any namespace, by the labels the operator writes (policies deleted with Retain included). */
  async keySecrets(namespace?: string): Promise<V1Secret[]> {
    const labelSelector = `${LABEL_COMPONENT}=keys,${LABEL_KEY_POLICY},${LABEL_KEY_POLICY_NAMESPACE}`;
    const list = namespace ? await this.core.listNamespacedSecret({ namespace, labelSelector }) : await this.core.listSecretForAllNamespaces({ labelSelector });
    return list.items;
  }

  /** Creates the namespace when missing; true when it was created. */
  async ensureNamespace(name: string): Promise<boolean> {
    try {
      await this.core.readNamespace({ name });
      return false;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    await this.core.createNamespace({ body: { metadata: { name } } });
    return true;
  }

  /** Create only: a Secret that exists is never overwritten (the caller compares). */
  async createSecret(body: V1Secret): Promise<void> {
    await this.core.createNamespacedSecret({ namespace: body.metadata?.namespace ?? '', body });
  }

  /** Replace guarded by the object's resourceVersion. */
  async replaceSecret(body: V1Secret): Promise<void> {
    await this.core.replaceNamespacedSecret({ namespace: body.metadata?.namespace ?? '', name: body.metadata?.name ?? '', body });
  }

  async createPolicy(body: KeyPolicy): Promise<void> {
    await this.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: KEY_POLICY.plural, namespace: body.metadata.namespace ?? '', body });
  }
}

export const policyId = (namespace: string, name: string) => `${namespace}/${name}`;

/** The store's policy as namespace/name, from the labels the operator wrote. */
export function storePolicy(store: V1Secret): string {
  const labels = store.metadata?.labels ?? {};
  return policyId(labels[LABEL_KEY_POLICY_NAMESPACE] ?? '', labels[LABEL_KEY_POLICY] ?? '');
}

export function storedSecret(secret: V1Secret): StoredSecret {
  const annotations = keep(secret.metadata?.annotations);
  return {
    namespace: secret.metadata?.namespace ?? '',
    name: secret.metadata?.name ?? '',
    ...(secret.metadata?.labels ? { labels: secret.metadata.labels } : {}),
    ...(annotations ? { annotations } : {}),
    data: secret.data ?? {},
  };
}

/** One policy's key state for the backup; `policy` undefined for keys a deleted policy left. */
export function policyKeyState(namespace: string, name: string, policy: KeyPolicy | undefined, keySecret: V1Secret, stores: readonly V1Secret[]): PolicyKeyState {
  const policyAnnotations = keep(policy?.metadata.annotations);
  const secretAnnotations = keep(keySecret.metadata?.annotations);
  return {
    namespace, name,
    ...(policy ? { policy: { ...(policy.metadata.labels ? { labels: policy.metadata.labels } : {}), ...(policyAnnotations ? { annotations: policyAnnotations } : {}), spec: policy.spec } } : {}),
    keySecret: { ...(secretAnnotations ? { annotations: secretAnnotations } : {}), data: keySecret.data ?? {} },
    envelopeStores: stores.filter((s) => storePolicy(s) === policyId(namespace, name)).map(storedSecret),
  };
}


/** The ciphertexts a drill opens: every labelled store, every sealed value of every service. */
export function ciphertextsUnderTest(stores: readonly V1Secret[], services: readonly EncryptedService[]): { stores: StoreUnderTest[]; sealed: SealedUnderTest[]; unreadable: string[] } {
  const unreadable: string[] = [];
  const out: StoreUnderTest[] = [];
  for (const store of stores) {
    const id = `${store.metadata?.namespace ?? ''}/${store.metadata?.name ?? ''}`;
    try {
      const content = readEnvelopeStore(store);
      const previous = store.data?.[PREVIOUS_DEK_KEY];
      out.push({
        namespace: store.metadata?.namespace ?? '', name: store.metadata?.name ?? '',
        service: store.metadata?.labels?.[LABEL_ENCRYPTED_SERVICE] ?? '', policy: storePolicy(store),
        wrapped: content.wrappedDataKey, previousWrapped: previous ? Buffer.from(previous, 'base64').toString('utf8') : undefined,
        envelopes: content.envelopes,
      });
    } catch {
      unreadable.push(id);
    }
  }
  const sealed: SealedUnderTest[] = [];
  for (const es of services) {
    const policy = policyId(keyPolicyNamespaceOf(es), es.spec.keyPolicyRef.name);
    for (const s of es.spec.secrets?.sealed ?? []) {
      for (const [key, jwe] of Object.entries(s.encryptedData ?? {})) {
        sealed.push({ namespace: es.metadata.namespace ?? '', service: es.metadata.name ?? '', policy, secret: s.name, key, jwe });
      }
    }
  }
  return { stores: out, sealed, unreadable };
}
