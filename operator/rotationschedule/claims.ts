// One rotation at a time per thing a rotation changes: a target service, an issuer, a KeyPolicy,
// a namespace's trust bundle. A claim is a Lease named after the thing, kept in the operator's own
// namespace (tenants cannot touch it there, and the operator needs no Lease rights elsewhere,
// where other components keep their leader-election Leases), held by
// `<schedule namespace>/<schedule name>/<rotation id>`. Creating a Lease is atomic, so two
// schedules cannot both win; a holder whose rotation is no longer open (finished, or never
// persisted because the operator crashed between claiming and writing status) is stale and is
// taken over with a resourceVersion-checked update. Two overlapping schedules therefore never
// share a `<svc>-tls-previous` backup, an issuer switch or bundle annotations mid-rotation.
import { createHash } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { V1Lease } from '@kubernetes/client-node';
import { LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../api/v1alpha1/index.js';
import { isAlreadyExists, isConflict, isNotFound } from '../runtime/api-error.js';

export type ClaimKind = 'service' | 'issuer' | 'clusterissuer' | 'keypolicy' | 'bundle';

export interface Claim {
  kind: ClaimKind;
  /** The thing's namespace (a ClusterIssuer's: the cluster resource namespace). */
  namespace: string;
  /** The thing's name ('' for a namespace's bundle). */
  name: string;
}

export interface Holder {
  namespace: string;
  schedule: string;
  rotationId: string;
}

/** Labels every claim carries, so a finished rotation finds and releases its own. */
export const LABEL_CLAIM_SCHEDULE = 'lockstep.dev/rotation-claim';
/** What a claim's Lease stands for, readable (its name is a hash). */
export const ANNOTATION_CLAIM = 'lockstep.dev/claim';

export const holderIdentity = (h: Holder): string => `${h.namespace}/${h.schedule}/${h.rotationId}`;

export function parseHolder(identity: string | undefined): Holder | undefined {
  const parts = (identity ?? '').split('/');
  return parts.length === 3 && parts.every(Boolean) ? { namespace: parts[0]!, schedule: parts[1]!, rotationId: parts[2]! } : undefined;
}

/** One Lease name per thing, across namespaces and kinds. */
export function claimLeaseName(claim: Claim): string {
  return `lockstep-rotation-${claim.kind}-${createHash('sha256').update(`${claim.namespace}/${claim.name}`).digest('hex').slice(0, 24)}`;
}

export const describeClaim = (claim: Claim): string =>
  claim.kind === 'bundle' ? `the trust bundle of namespace ${claim.namespace}`
    : claim.kind === 'clusterissuer' ? `ClusterIssuer ${claim.name}`
      : `${claim.kind === 'service' ? 'EncryptedService' : claim.kind === 'issuer' ? 'Issuer' : 'KeyPolicy'} ${claim.namespace}/${claim.name}`;

/** Distinct schedules get distinct label values (a label value holds at most 63 characters). */
const scheduleLabel = (h: Holder): string => createHash('sha256').update(`${h.namespace}/${h.schedule}`).digest('hex').slice(0, 40);

/** How long a fresh claim counts as held before its holder's status must show the rotation open. */
export const CLAIM_GRACE_MS = 30_000;

export type AcquireResult = { ok: true } | { ok: false; claim: Claim; heldBy: Holder };

export class RotationClaims {
  private readonly api: k8s.CoordinationV1Api;

  /**
   * `namespace`: the operator's own, where the claims live. `isOpen` says whether a holder's
   * rotation is still open (read fresh from the API server).
   */
  constructor(writer: k8s.KubeConfig, private readonly namespace: string, private readonly isOpen: (holder: Holder) => Promise<boolean>) {
    this.api = writer.makeApiClient(k8s.CoordinationV1Api);
  }

  /**
   * Takes every claim for `holder`, or none: on the first claim another open rotation holds, the
   * claims taken by this call are given back and the holder is returned. Idempotent for `holder`.
   */
  async acquire(claims: readonly Claim[], holder: Holder): Promise<AcquireResult> {
    const taken: Claim[] = [];
    for (const claim of uniqueClaims(claims)) {
      const heldBy = await this.take(claim, holder);
      if (heldBy) {
        for (const mine of taken) await this.give(mine, holder);
        return { ok: false, claim, heldBy };
      }
      taken.push(claim);
    }
    return { ok: true };
  }

  /** Gives back every claim `holder` still holds, wherever it is. */
  async releaseAll(holder: Holder): Promise<void> {
    const list = await this.api.listNamespacedLease({ namespace: this.namespace, labelSelector: `${LABEL_CLAIM_SCHEDULE}=${scheduleLabel(holder)}` });
    for (const lease of list.items) {
      if (lease.spec?.holderIdentity !== holderIdentity(holder)) continue;
      await this.delete(lease);
    }
  }

  /** undefined when `holder` now holds the claim; else the open rotation that does. */
  private async take(claim: Claim, holder: Holder): Promise<Holder | undefined> {
    const name = claimLeaseName(claim);
    const body = (resourceVersion?: string): V1Lease => ({
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
      metadata: {
        name, namespace: this.namespace, ...(resourceVersion ? { resourceVersion } : {}),
        labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_CLAIM_SCHEDULE]: scheduleLabel(holder) },
        annotations: { [ANNOTATION_CLAIM]: describeClaim(claim) },
      },
      spec: { holderIdentity: holderIdentity(holder), acquireTime: new k8s.V1MicroTime() },
    });
    for (let attempt = 0; attempt < 3; attempt++) {
      let current: V1Lease | undefined;
      try {
        current = await this.api.readNamespacedLease({ namespace: this.namespace, name });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      if (!current) {
        try {
          await this.api.createNamespacedLease({ namespace: this.namespace, body: body() });
          return undefined;
        } catch (err) {
          if (isAlreadyExists(err)) continue;
          throw err;
        }
      }
      const other = parseHolder(current.spec?.holderIdentity);
      if (current.spec?.holderIdentity === holderIdentity(holder)) return undefined;
      // A holder claims first and records its rotation in status after: another schedule's claim
      // younger than the grace is held even when its rotation is not (yet) open, or two schedules
      // that start together would each see the other as stale and both rotate. An earlier
      // rotation of this same schedule is over (a schedule runs one at a time): taken at once.
      const sameSchedule = other?.namespace === holder.namespace && other.schedule === holder.schedule;
      const fresh = !sameSchedule && Date.now() - new Date(current.spec?.acquireTime ?? 0).getTime() < CLAIM_GRACE_MS;
      if (other && (fresh || await this.isOpen(other))) return other;
      try {
        await this.api.replaceNamespacedLease({ namespace: this.namespace, name, body: body(current.metadata?.resourceVersion) });
        return undefined;
      } catch (err) {
        if (!isConflict(err) && !isNotFound(err)) throw err;
      }
    }
    throw new Error(`the claim on ${describeClaim(claim)} changed three times while taking it; retrying later`);
  }

  private async give(claim: Claim, holder: Holder): Promise<void> {
    try {
      const lease = await this.api.readNamespacedLease({ namespace: this.namespace, name: claimLeaseName(claim) });
      if (lease.spec?.holderIdentity === holderIdentity(holder)) await this.delete(lease);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** Deletes only the version read: a claim taken over meanwhile stays. */
  private async delete(lease: V1Lease): Promise<void> {
    try {
      await this.api.deleteNamespacedLease({
        namespace: lease.metadata?.namespace ?? '', name: lease.metadata?.name ?? '',
        body: { preconditions: { resourceVersion: lease.metadata?.resourceVersion ?? '' } },
      });
    } catch (err) {
      if (!isNotFound(err) && !isConflict(err)) throw err;
    }
  }
}

function uniqueClaims(claims: readonly Claim[]): Claim[] {
  const seen = new Map<string, Claim>();
  for (const c of claims) seen.set(claimLeaseName(c), c);
  // A fixed order: two schedules wanting overlapping sets meet on the same first claim.
  return [...seen.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, c]) => c);
}
