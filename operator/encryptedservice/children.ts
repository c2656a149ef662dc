// What every object generated for an EncryptedService carries, so it can be traced back to its
// owner, watched by label, and garbage-collected with it.
import type { V1OwnerReference } from '@kubernetes/client-node';
import {
  API_VERSION, ENCRYPTED_SERVICE, LABEL_COMPONENT, LABEL_ENCRYPTED_SERVICE, LABEL_MANAGED_BY, MANAGED_BY_VALUE,
  type Component, type EncryptedService,
} from '../api/v1alpha1/index.js';

export function ownerReference(es: EncryptedService): V1OwnerReference {
  const { name, uid } = es.metadata;
  if (!name || !uid) throw new Error('an owner reference needs the EncryptedService as read from the API server (name and uid)');
  return { apiVersion: API_VERSION, kind: ENCRYPTED_SERVICE.kind, name, uid, controller: true, blockOwnerDeletion: true };
}

export function childLabels(es: EncryptedService, component: Component): Record<string, string> {
  return {
    [LABEL_MANAGED_BY]: MANAGED_BY_VALUE,
    [LABEL_ENCRYPTED_SERVICE]: es.metadata.name ?? '',
    [LABEL_COMPONENT]: component,
  };
}

/** Label selector for everything the operator generates: its informers watch only these. */
export const MANAGED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY_VALUE}`;
