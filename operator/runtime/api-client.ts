// The KubeConfig every API client of the operator is made from (generated clients,
// KubernetesObjectApi, the appliers and the informers' lists), for three things client-node
// 1.4 does not do:
//  - connection reuse: its applySecurityAuthentication makes a new https.Agent for every
//    request, so every request paid a TCP + TLS handshake on both ends and left OpenSSL
//    buffers behind (native memory that RSS showed and the heap did not). One keep-alive agent
//    per KubeConfig serves them all;
//  - a client-side rate limit (token bucket, like client-go's QPS/burst), taken when the
//    request is sent;
//  - 429 Too Many Requests (API Priority and Fairness rejecting, or max-in-flight): the request
//    is sent again after the server's Retry-After, and every other request waits with it.
// It also bounds each request in time (client-node sets no timeout, so a connection the network
// silently drops holds its caller for good) and tells a Reachability of each request that got
// no answer, refused or timed out (reachability.ts).
// Watches are long-lived streams set up by client-node's Watch and are neither limited nor retried here.
import {
  createConfiguration, HttpMethod, IsomorphicFetchHttpLibrary, KubeConfig, ResponseContext, SelfDecodingBody, ServerConfiguration, wrapHttpLibrary,
  type ApiType, type Configuration, type HttpLibrary, type RequestContext,
} from '@kubernetes/client-node';
import * as http from 'node:http';
import * as https from 'node:https';
import { describeApiError } from './api-error.js';
import { sleep, systemClock, type Clock } from './clock.js';
import type { KubeClientObserver } from './metrics.js';
import type { Reachability } from './reachability.js';
import type { RateLimit } from './token-bucket.js';
import { TokenBucket } from './token-bucket.js';

export interface ClientSettings {
  /** Omit for no client-side limit. */
  readonly rateLimit?: RateLimit;
  /** Names the replica in the API server's audit log (otherwise every client is node-fetch). */
  readonly userAgent?: string;
  /** Times a request answered 429 is sent again before the 429 is returned. Default 5. */
  readonly maxThrottledRetries?: number;
  /** Told of every 429 and of how long each request waited before it was sent. */
  readonly observer?: KubeClientObserver;
  /** Told of each request that got no answer (see reachability.ts). */
  readonly reachability?: Pick<Reachability, 'unanswered'>;
  /** Longest wait for one request's whole response. Default REQUEST_TIMEOUT_DEFAULT_MS. */
  readonly requestTimeoutMs?: number;
  readonly clock?: Clock;
}

/**
 * Half the API server's own limit for a request (--request-timeout, 60 s, after which it answers
 * 504 itself): an answer that has not come by then is not coming soon. Lists are paged (500).
 */
export const REQUEST_TIMEOUT_DEFAULT_MS = 30_000;

/** Thrown when a request got no whole response within the client's request timeout. */
export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
  /** Read as a network failure (describeApiError: NetworkError). */
  readonly code = 'ETIMEDOUT';
  constructor(method: string, path: string, ms: number) {
    super(`no answer from the API server within ${ms / 1000} s (${method} ${path})`);
  }
}

/** Retry-After in seconds (the API server sends whole seconds); 1 s when absent or unreadable, at most 60 s. */
export function retryAfterMs(header: string | undefined): number {
  const seconds = Number(header);
  if (!Number.isFinite(seconds) || seconds <= 0) return 1000;
  return Math.min(seconds, 60) * 1000;
}

/** Sends through client-node's fetch library, after a token, again after a 429's Retry-After. */
export function throttledHttp(settings: ClientSettings): HttpLibrary {
  const inner = new IsomorphicFetchHttpLibrary();
  const clock = settings.clock ?? systemClock;
  const bucket = settings.rateLimit ? new TokenBucket(settings.rateLimit, clock) : undefined;
  const retries = settings.maxThrottledRetries ?? 5;
  const observer = settings.observer;
  const reachability = settings.reachability;
  const timeoutMs = settings.requestTimeoutMs ?? REQUEST_TIMEOUT_DEFAULT_MS;
  // The timer covers the whole response: its body is read here, within it, and handed on whole
  // (client-node reads every body whole anyway), so no caller has a socket left to drain.
  const sendOnce = async (request: RequestContext, callerSignal: AbortSignal | undefined): Promise<ResponseContext> => {
    const timer = new AbortController();
    const timeout = clock.setTimeout(() => timer.abort(), timeoutMs);
    request.setSignal(callerSignal ? AbortSignal.any([callerSignal, timer.signal]) : timer.signal);
    try {
      const response = await inner.send(request).toPromise();
      const body = await response.body.binary();
      return new ResponseContext(response.httpStatusCode, response.headers, new SelfDecodingBody(Promise.resolve(body)));
    } catch (err) {
      // The caller giving up (its own signal) says nothing about the server.
      if (callerSignal?.aborted) throw err;
      if (timer.signal.aborted) {
        reachability?.unanswered();
        throw new RequestTimeoutError(request.getHttpMethod(), new URL(request.getUrl()).pathname, timeoutMs);
      }
      if (describeApiError(err).reason === 'NetworkError') reachability?.unanswered();
      throw err;
    } finally {
      clock.clearTimeout(timeout);
    }
  };
  return wrapHttpLibrary({
    async send(request: RequestContext): Promise<ResponseContext> {
      // Without a bucket to pause, the Retry-After is slept before the next attempt.
      let backoff = 0;
      const signal = request.getSignal() ?? undefined;
      for (let attempt = 0; ; attempt++) {
        const queued = clock.now();
        if (backoff > 0) await sleep(clock, backoff, signal);
        await bucket?.take(signal);
        observer?.waited(clock.now() - queued);
        const response = await sendOnce(request, signal);
        if (response.httpStatusCode !== 429) return response;
        if (attempt >= retries) {
          observer?.throttled('returned');
          return response;
        }
        observer?.throttled('retried');
        const wait = retryAfterMs(response.headers['retry-after']);
        if (bucket) bucket.pause(wait);
        else backoff = wait;
      }
    },
  });
}

function isPlainAgent(agent: unknown): agent is http.Agent {
  return typeof agent === 'object' && agent !== null && (agent.constructor === https.Agent || agent.constructor === http.Agent);
}

/** What every KubeConfig of one process shares: the connection pool and the rate limit. */
export class ClientPool {
  readonly http: HttpLibrary;
  agent: http.Agent | undefined;

  constructor(readonly settings: ClientSettings = {}) {
    this.http = throttledHttp(settings);
  }
}

export class ApiClientConfig extends KubeConfig {
  constructor(readonly pool: ClientPool = new ClientPool()) {
    super();
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    if (this.pool.settings.userAgent) context.setHeaderParam('User-Agent', this.pool.settings.userAgent);
    // Proxy agents (a kubeconfig proxy-url) are left as made.
    const made = context.getAgent();
    if (!isPlainAgent(made)) return;
    // The agent's options are the same on every request (credentials from the kubeconfig);
    // a token that changes travels in a header, not here.
    const options = (made as http.Agent & { options: https.AgentOptions }).options;
    this.pool.agent ??= made instanceof https.Agent ? new https.Agent({ ...options, keepAlive: true }) : new http.Agent({ ...options, keepAlive: true });
    context.setAgent(this.pool.agent);
  }

  override makeApiClient<T extends ApiType>(apiClientType: new (config: Configuration) => T): T {
    return new apiClientType(this.configuration());
  }

  /** For requests made by hand (the informers' raw lists): same server, auth, agent and limit. */
  configuration(): Configuration {
    const cluster = this.getCurrentCluster();
    if (!cluster) throw new Error('No active cluster!');
    return createConfiguration({ baseServer: new ServerConfiguration(cluster.server, {}), authMethods: { default: this }, httpApi: this.pool.http });
  }
}

/** GET /readyz (every user, even an anonymous one, may read it): true when it is 200. */
export function readyzProbe(kc: ApiClientConfig): (signal: AbortSignal) => Promise<boolean> {
  const config = kc.configuration();
  return async (signal) => {
    const ctx = config.baseServer.makeRequestContext('/readyz', HttpMethod.GET);
    ctx.setSignal(signal);
    await kc.applySecurityAuthentication(ctx);
    const response = await config.httpApi.send(ctx).toPromise();
    return response.httpStatusCode === 200;
  };
}

/** A copy of `kc` whose clients share one connection pool, one rate limit and a user agent. */
export function apiClientConfig(kc: KubeConfig, settings: ClientSettings = {}): ApiClientConfig {
  return copyInto(new ApiClientConfig(new ClientPool(settings)), kc);
}

export function copyInto<T extends KubeConfig>(target: T, kc: KubeConfig): T {
  target.loadFromOptions({ clusters: kc.clusters, contexts: kc.contexts, users: kc.users, currentContext: kc.currentContext });
  return target;
}
