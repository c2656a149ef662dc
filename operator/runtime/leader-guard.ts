import { KubeConfig, type RequestContext } from '@kubernetes/client-node';
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

class LeaderGuardedKubeConfig extends KubeConfig {
  constructor(
    private readonly isLeader: () => boolean,
    private readonly userAgent: string | undefined,
  ) {
    super();
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    if (MUTATING.has(context.getHttpMethod()) && !this.isLeader()) {
      throw new NotLeaderError(`refusing ${context.getHttpMethod()} while not the leader`);
    }
    if (MUTATING.has(context.getHttpMethod())) noteWrite(resourceOfPath(context.getUrl()));
    // Names the replica in the API server's audit log (otherwise every client is node-fetch).
    if (this.userAgent) context.setHeaderParam('User-Agent', this.userAgent);
    return super.applySecurityAuthentication(context);
  }
}

/**
 * A copy of `kc` whose API clients (kc.makeApiClient(...), KubernetesObjectApi.makeApiClient)
 * throw NotLeaderError instead of sending POST/PUT/PATCH/DELETE while `isLeader()` is false.
 * Reads and watches are unaffected. Build the controllers' clients from it; build the Lease
 * client from the original.
 */
export function leaderGuardedKubeConfig(kc: KubeConfig, isLeader: () => boolean, userAgent?: string): KubeConfig {
  const guarded = new LeaderGuardedKubeConfig(isLeader, userAgent);
  guarded.loadFromOptions({
    clusters: kc.clusters,
    contexts: kc.contexts,
    users: kc.users,
    currentContext: kc.currentContext,
  });
  return guarded;
}
