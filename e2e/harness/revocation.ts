// Revocation lists a test run leaves in the operator's namespace: the operator keeps a CA's list
// as long as the CA may sign, and a test's CA goes with its namespace.
import { LABEL_COMPONENT } from '../../operator/api/v1alpha1/index.js';
import { COMPONENT_REVOCATION, LIST_ENTRIES_KEY, parseEntries } from '../../operator/revocation/revocation-list.js';
import { OPERATOR_NAMESPACE } from './audit.js';
import type { Clients } from './cluster.js';

/** Deletes the lists that hold an entry of a service in `namespace`. */
export async function deleteRevocationLists(c: Clients, namespace: string): Promise<void> {
  const lists = await c.core.listNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, labelSelector: `${LABEL_COMPONENT}=${COMPONENT_REVOCATION}` }).catch(() => ({ items: [] }));
  for (const cm of lists.items) {
    if (!parseEntries(cm.data?.[LIST_ENTRIES_KEY]).some((e) => e.service.startsWith(`${namespace}/`))) continue;
    await c.core.deleteNamespacedConfigMap({ namespace: OPERATOR_NAMESPACE, name: cm.metadata?.name ?? '' }).catch(() => undefined);
  }
}
