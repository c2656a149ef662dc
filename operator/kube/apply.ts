// Every write the operator makes to objects it owns goes through here: server-side apply
// under one field manager, skipped when the live object already matches; for objects that must be
// exactly as declared (exactSpec), then a JSON patch that removes what other writers added to the spec.
import * as k8s from '@kubernetes/client-node';
import { RawApplyClient } from './raw-apply.js';
import { refusable } from './refusal.js';
import { isSubset } from './subset.js';

export const FIELD_MANAGER = 'lockstep-operator';

const applyOptions = () => k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply);

export interface CustomResourceRef {
  group: string;
  version: string;
  plural: string;
  namespace: string;
  name: string;
}

export interface ApplyResult<T> {
  object: T;
  changed: boolean;
  /** The spec held fields another writer added, and was replaced by the desired one (exactSpec). */
  reverted?: boolean;
}

export interface ApplyOptions {
  /**
   * The live spec must be exactly the desired one. Server-side apply sets what it is given and
   * leaves fields other writers added, and a subset check cannot see them; for objects whose
   * every field is a security decision (a NetworkPolicy: a rule or a selector label someone adds
   * opens the pods) a spec still holding more than the desired one after the apply is replaced
   * (a JSON patch guarded by the resourceVersion: a concurrent write makes it fail and retry).
   */
  readonly exactSpec?: boolean;
}

type WithSpec = k8s.KubernetesObject & { spec?: unknown };

/** Whether `live`'s spec holds anything `desired`'s does not (values the server defaults must be in `desired`). */
export function specHasForeignFields(desired: WithSpec, live: WithSpec): boolean {
  return !isSubset(live.spec, desired.spec);
}

export class Applier {
  private readonly objects: k8s.KubernetesObjectApi;
  private readonly raw: RawApplyClient;
  private readonly custom: k8s.CustomObjectsApi;

  constructor(kc: k8s.KubeConfig, private readonly fieldManager = FIELD_MANAGER) {
    this.objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    this.raw = RawApplyClient.forConfig(kc);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  /**
   * Applies `desired` unless `live` (from an informer cache, or undefined) already matches it.
   * A write the API server refuses (quota, admission, invalid) throws a WriteRefusedError.
   */
  async apply<T extends k8s.KubernetesObject>(desired: T, live?: k8s.KubernetesObject, options: ApplyOptions = {}): Promise<ApplyResult<T>> {
    const exact = (obj: k8s.KubernetesObject) => !options.exactSpec || !specHasForeignFields(desired, obj);
    if (live && isSubset(desired, live) && exact(live)) return { object: live as T, changed: false };
    // The apply first: it also removes what this manager set before and no longer declares.
    const object = await refusable(desired, () => this.raw.apply(desired, this.fieldManager));
    if (exact(object)) return { object, changed: true };
    // What is left beyond the declared spec, another writer added.
    const replaced = await refusable(desired, () => this.raw.replaceSpec(object, (desired as WithSpec).spec, this.fieldManager));
    return { object: replaced, changed: true, reverted: true };
  }

  /**
   * Applies the status subresource of a custom resource; only the fields given are owned.
   * `force` only settles field ownership between managers; it is no concurrency control. Given
   * the resourceVersion the reconcile read (or its own last write returned), the apply carries it
   * as a precondition: when anyone wrote the object since — a new leader while this replica's
   * reconcile was still in flight, or a newer reconcile — the API server answers 409 Conflict and
   * nothing of this write lands; the error goes to the work queue, which retries from a fresh read.
   * Returns the resourceVersion the write produced, for the next write of the same reconcile.
   */
  async applyStatus(ref: CustomResourceRef & { kind: string }, status: object, resourceVersion?: string): Promise<string | undefined> {
    const metadata = { name: ref.name, namespace: ref.namespace, ...(resourceVersion ? { resourceVersion } : {}) };
    const written = (await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: ref.group, version: ref.version, plural: ref.plural,
        namespace: ref.namespace, name: ref.name,
        body: { apiVersion: `${ref.group}/${ref.version}`, kind: ref.kind, metadata, status },
        fieldManager: this.fieldManager,
        force: true,
      },
      applyOptions(),
    )) as { metadata?: { resourceVersion?: string } } | undefined;
    return written?.metadata?.resourceVersion;
  }

  /** Removes one finalizer with a JSON patch guarded by a test, so a concurrent change to the
   * list fails (and is retried) instead of dropping someone else's finalizer. */
  async removeFinalizer(ref: CustomResourceRef, current: readonly string[], finalizer: string): Promise<void> {
    const index = current.indexOf(finalizer);
    if (index < 0) return;
    try {
      await this.custom.patchNamespacedCustomObject(
        {
          group: ref.group, version: ref.version, plural: ref.plural, namespace: ref.namespace, name: ref.name,
          body: [
            { op: 'test', path: `/metadata/finalizers/${index}`, value: finalizer },
            { op: 'remove', path: `/metadata/finalizers/${index}` },
          ],
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
      );
    } catch (err) {
      if ((err as { code?: number }).code === 404) return;
      throw err;
    }
  }

  /** Deletes an object; a missing object counts as deleted. */
  async delete(ref: k8s.KubernetesObject): Promise<boolean> {
    try {
      await this.objects.delete(ref);
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return false;
      throw err;
    }
  }
}
