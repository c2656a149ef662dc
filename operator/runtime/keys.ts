import type { KubernetesObject } from '@kubernetes/client-node';

// Work queue keys follow client-go's MetaNamespaceKeyFunc: `namespace/name` for namespaced
// objects, bare `name` for cluster-scoped ones. Each controller owns its queue, so the key does
// not carry the kind: a key always names an object of the controller's primary kind.

export interface ObjectName {
  /** Undefined for cluster-scoped objects. */
  readonly namespace: string | undefined;
  readonly name: string;
}

export function keyFor(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

export function objectKey(obj: KubernetesObject): string {
  const name = obj.metadata?.name;
  if (!name) throw new Error('object has no metadata.name');
  return keyFor(obj.metadata?.namespace, name);
}

export function splitKey(key: string): ObjectName {
  const slash = key.indexOf('/');
  if (slash < 0) return { namespace: undefined, name: key };
  if (slash === 0 || slash === key.length - 1 || key.indexOf('/', slash + 1) >= 0) {
    throw new Error(`malformed work queue key "${key}": want "namespace/name" or "name"`);
  }
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
