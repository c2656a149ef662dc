// Where audit trails are kept: ConfigMaps in the operator's namespace, which tenants cannot
// write (the operator's Role there is the only grant). Per trail: live segments (the newest
// AUDIT_MAX_SEGMENTS, the last one still growing), archived segments (gzip, immutable, kept for
// AUDIT_ARCHIVE_SEGMENTS more) and one head ConfigMap holding the signed anchored head. Reads are
// plain functions on a CoreV1Api so `lockstep audit verify` uses them with the user's credentials.
import { gunzipSync, gzipSync } from 'node:zlib';
import type { CoreV1Api, V1ConfigMap } from '@kubernetes/client-node';
import { LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../api/v1alpha1/index.js';
import { parseHead, serializeHead, type AnchoredHead } from '../audit/head.js';
import { segmentDataKey } from '../audit/segments.js';
import { isNotFound } from '../runtime/api-error.js';
import {
  ANNOTATION_AUDIT_OWNER, LABEL_AUDIT_ROLE, LABEL_AUDIT_TRAIL, auditArchiveSegmentName, auditHeadName, auditLiveSegmentName, auditTrailKey,
} from './names.js';

export const HEAD_DATA_KEY = 'head.json';
/** Set by an administrator on the head ConfigMap to restart a broken chain from its head. */
export const ANNOTATION_AUDIT_RESET = 'lockstep.dev/audit-reset';
const SEGMENT_KEY = /^segment-(\d{6})\.jsonl(\.gz)?$/;

export type AuditRole = 'segment' | 'archive' | 'head';

export interface TrailRef {
  /** The operator's namespace. */
  readonly store: string;
  /** The KeyPolicy the trail belongs to. */
  readonly namespace: string;
  readonly name: string;
}

export interface StoredSegment {
  readonly configMap: string;
  readonly index: number;
  readonly text: string;
  readonly resourceVersion?: string;
  readonly immutable?: boolean;
}

export interface StoredHead {
  readonly head: AnchoredHead | undefined;
  /** Why the stored head could not be read, when it exists but is not a head. */
  readonly unreadable?: string;
  readonly resourceVersion?: string;
  readonly reset?: string;
}

export function auditLabels(ref: TrailRef, role: AuditRole): Record<string, string> {
  return { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_COMPONENT]: 'audit', [LABEL_AUDIT_TRAIL]: auditTrailKey(ref.namespace, ref.name), [LABEL_AUDIT_ROLE]: role };
}

function metadata(ref: TrailRef, name: string, role: AuditRole, resourceVersion?: string): V1ConfigMap['metadata'] {
  return {
    name, namespace: ref.store, labels: auditLabels(ref, role),
    annotations: { [ANNOTATION_AUDIT_OWNER]: `KeyPolicy/${ref.namespace}/${ref.name}` },
    ...(resourceVersion ? { resourceVersion } : {}),
  };
}

/** Segments held by ConfigMaps (plain or gzip data), in index order. */
export function segmentsOf(configMaps: readonly V1ConfigMap[]): StoredSegment[] {
  const out: StoredSegment[] = [];
  for (const cm of configMaps) {
    const entries: [string, string][] = [
      ...Object.entries(cm.data ?? {}),
      ...Object.entries(cm.binaryData ?? {}).map(([k, v]): [string, string] => {
        try {
          return [k, gunzipSync(Buffer.from(v, 'base64')).toString('utf8')];
        } catch {
          return [k, ''];
        }
      }),
    ];
    for (const [key, text] of entries) {
      const match = SEGMENT_KEY.exec(key);
      if (!match) continue;
      out.push({
        configMap: cm.metadata?.name ?? '', index: Number(match[1]), text,
        ...(cm.metadata?.resourceVersion ? { resourceVersion: cm.metadata.resourceVersion } : {}),
        ...(cm.immutable ? { immutable: true } : {}),
      });
    }
  }
  return out.sort((a, b) => a.index - b.index);
}

export async function readSegments(core: CoreV1Api, ref: TrailRef, role: 'segment' | 'archive'): Promise<StoredSegment[]> {
  const list = await core.listNamespacedConfigMap({
    namespace: ref.store,
    labelSelector: `${LABEL_AUDIT_TRAIL}=${auditTrailKey(ref.namespace, ref.name)},${LABEL_AUDIT_ROLE}=${role}`,
  });
  return segmentsOf(list.items);
}

export async function readHead(core: CoreV1Api, ref: TrailRef): Promise<StoredHead> {
  let cm: V1ConfigMap;
  try {
    cm = await core.readNamespacedConfigMap({ namespace: ref.store, name: auditHeadName(ref.namespace, ref.name) });
  } catch (err) {
    if (isNotFound(err)) return { head: undefined };
    throw err;
  }
  const rv = cm.metadata?.resourceVersion ? { resourceVersion: cm.metadata.resourceVersion } : {};
  const reset = cm.metadata?.annotations?.[ANNOTATION_AUDIT_RESET];
  const extra = { ...rv, ...(reset ? { reset } : {}) };
  try {
    return { head: parseHead(cm.data?.[HEAD_DATA_KEY] ?? ''), ...extra };
  } catch (err) {
    return { head: undefined, unreadable: err instanceof Error ? err.message : 'unreadable', ...extra };
  }
}

/** Guarded by resourceVersion (create when there is none): two writers never both move the head. */
export async function writeHead(core: CoreV1Api, ref: TrailRef, head: AnchoredHead, resourceVersion: string | undefined): Promise<string | undefined> {
  const body: V1ConfigMap = {
    apiVersion: 'v1', kind: 'ConfigMap', metadata: metadata(ref, auditHeadName(ref.namespace, ref.name), 'head', resourceVersion),
    data: { [HEAD_DATA_KEY]: serializeHead(head) },
  };
  const written = resourceVersion
    ? await core.replaceNamespacedConfigMap({ namespace: ref.store, name: auditHeadName(ref.namespace, ref.name), body })
    : await core.createNamespacedConfigMap({ namespace: ref.store, body });
  return written.metadata?.resourceVersion;
}

/** A full segment never changes again: immutable, so even the operator's Role cannot edit it. */
export async function writeLiveSegment(
  core: CoreV1Api, ref: TrailRef, index: number, text: string, existing: StoredSegment | undefined, immutable: boolean,
): Promise<string | undefined> {
  const name = auditLiveSegmentName(ref.namespace, ref.name, index);
  const body: V1ConfigMap = {
    apiVersion: 'v1', kind: 'ConfigMap', metadata: metadata(ref, name, 'segment', existing?.resourceVersion),
    data: { [segmentDataKey(index)]: text }, ...(immutable ? { immutable: true } : {}),
  };
  // A create that finds the segment already written by someone else is a conflict: re-read.
  const written = existing
    ? await core.replaceNamespacedConfigMap({ namespace: ref.store, name, body })
    : await core.createNamespacedConfigMap({ namespace: ref.store, body });
  return written.metadata?.resourceVersion;
}

/**
 * Copies a full segment into the archive. A copy left by an interrupted earlier attempt is
 * accepted only when it holds the same text; anything else is reported, never overwritten.
 */
export async function archiveSegment(core: CoreV1Api, ref: TrailRef, index: number, text: string): Promise<'written' | 'present' | 'differs'> {
  const name = auditArchiveSegmentName(ref.namespace, ref.name, index);
  try {
    const live = await core.readNamespacedConfigMap({ namespace: ref.store, name });
    return segmentsOf([live])[0]?.text === text ? 'present' : 'differs';
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await core.createNamespacedConfigMap({
    namespace: ref.store,
    body: {
      apiVersion: 'v1', kind: 'ConfigMap', metadata: metadata(ref, name, 'archive'), immutable: true,
      binaryData: { [`${segmentDataKey(index)}.gz`]: gzipSync(Buffer.from(text, 'utf8')).toString('base64') },
    },
  });
  return 'written';
}

export async function deleteConfigMap(core: CoreV1Api, namespace: string, name: string): Promise<void> {
  await core.deleteNamespacedConfigMap({ namespace, name }).catch((err: unknown) => { if (!isNotFound(err)) throw err; });
}
