import type { KubeConfig, RequestContext } from '@kubernetes/client-node';
import { ApiClientConfig, ClientPool, copyInto } from './api-client.js';
import { noteWrite, resourceOfPath } from './first-write.js';

// Losing the lease must stop the old leader's writes even if a reconcile is half-way through.
// Every generated client (and KubernetesObjectApi) authenticates each request through its
// KubeConfig; a KubeConfig that refuses mutating requests while `isLeader()` is false therefore
// fences every write made with clients built from it, with no change to the calling code.

export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
  readonly reason = 'NotLeader';
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

class LeaderGuardedKubeConfig extends ApiClientConfig {
  constructor(
    pool: ClientPool,
    private readonly isLeader: () => boolean,
  ) {
    super(pool);
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    if (MUTATING.has(context.getHttpMethod()) && !this.isLeader()) {
      throw new NotLeaderError(`refusing ${context.getHttpMethod()} while not the leader`);
    }
    if (MUTATING.has(context.getHttpMethod())) noteWrite(resourceOfPath(context.getUrl()));
    return super.applySecurityAuthentication(context);
  }
}

/**
 * A copy of `kc` whose API clients (kc.makeApiClient(...), KubernetesObjectApi.makeApiClient)
 * throw NotLeaderError instead of sending POST/PUT/PATCH/DELETE while `isLeader()` is false.
 * Reads and watches are unaffected. Build the controllers' clients from it; build the Lease
 * client from the original. Given an ApiClientConfig, its clients share that one's
 * connections and rate limit.
 */
export function leaderGuardedKubeConfig(kc: KubeConfig, isLeader: () => boolean, userAgent?: string): KubeConfig {
  const pool = kc instanceof ApiClientConfig ? kc.pool : new ClientPool(userAgent ? { userAgent } : {});
  return copyInto(new LeaderGuardedKubeConfig(pool, isLeader), kc);
}
