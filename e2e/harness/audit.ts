// Where the e2e tests find a KeyPolicy's audit trail: ConfigMaps in the operator's namespace
// (testConfig's `lockstep-system`), selected by the trail's hashed key, live segments by default.
import type { V1ConfigMap } from '@kubernetes/client-node';
import { type AuditEntry } from '../../operator/audit/chain.js';
import { segmentsOf } from '../../operator/keypolicy/audit-store.js';
import { LABEL_AUDIT_ROLE, LABEL_AUDIT_TRAIL, auditTrailKey } from '../../operator/keypolicy/names.js';
import { parseSegment } from '../../operator/audit/segments.js';
import type { Clients } from './cluster.js';

export const OPERATOR_NAMESPACE = 'lockstep-system';

export async function auditConfigMaps(c: Clients, namespace: string, policy: string, role: 'segment' | 'archive' | 'head' = 'segment'): Promise<V1ConfigMap[]> {
  const list = await c.core.listNamespacedConfigMap({
    namespace: OPERATOR_NAMESPACE, labelSelector: `${LABEL_AUDIT_TRAIL}=${auditTrailKey(namespace, policy)},${LABEL_AUDIT_ROLE}=${role}`,
  });
  return list.items.sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
}

/** Every entry of the trail, archived and live, in chain order. */
export async function auditEntries(c: Clients, namespace: string, policy: string): Promise<AuditEntry[]> {
  const archived = segmentsOf(await auditConfigMaps(c, namespace, policy, 'archive'));
  const live = segmentsOf(await auditConfigMaps(c, namespace, policy));
  const seen = new Set<number>();
  return [...archived, ...live].filter((s) => !seen.has(s.index) && seen.add(s.index)).flatMap((s) => parseSegment(s.text).entries);
}
