import { V1MicroTime, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import { isConflict, isNotFound } from './api-error.js';
import { LeaseConflictError, type LeaseRecord, type LeaseState, type LeaseStore } from './leader-election.js';

// Lease times are MicroTime: the API server parses them with exactly six fractional digits,
// so they are sent as V1MicroTime (whose toISOString pads to microseconds). client-node does
// not deserialise MicroTime on the way back: reads return strings, parsed here.

function toMillis(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'string' && value !== '') {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

function toState(lease: V1Lease): LeaseState {
  const spec = lease.spec ?? {};
  return {
    resourceVersion: lease.metadata?.resourceVersion ?? '',
    record: {
      holderIdentity: spec.holderIdentity ?? '',
      leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
      acquireTime: toMillis(spec.acquireTime),
      renewTime: toMillis(spec.renewTime),
      leaseTransitions: spec.leaseTransitions ?? 0,
    },
  };
}

function toSpec(record: LeaseRecord): NonNullable<V1Lease['spec']> {
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    leaseTransitions: record.leaseTransitions,
    ...(record.acquireTime !== undefined ? { acquireTime: new V1MicroTime(record.acquireTime) } : {}),
    ...(record.renewTime !== undefined ? { renewTime: new V1MicroTime(record.renewTime) } : {}),
  };
}

/**
 * The Lease `namespace/name` on the API server. Use a client built from the plain KubeConfig,
 * not the leader-guarded one: the elector has to write while it is not (yet) the leader.
 */
export function kubeLeaseStore(api: CoordinationV1Api, namespace: string, name: string): LeaseStore {
  const conflictsAsLease = (err: unknown): never => {
    if (isConflict(err)) throw new LeaseConflictError(`lease ${namespace}/${name} was written by someone else`);
    throw err;
  };
  return {
    async get() {
      try {
        return toState(await api.readNamespacedLease({ namespace, name }));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async create(record) {
      const body: V1Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: toSpec(record) };
      return toState(await api.createNamespacedLease({ namespace, body }).catch(conflictsAsLease));
    },
    async update(record, resourceVersion) {
      const body: V1Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace, resourceVersion },
        spec: toSpec(record),
      };
      return toState(await api.replaceNamespacedLease({ namespace, name, body }).catch(conflictsAsLease));
    },
  };
}
