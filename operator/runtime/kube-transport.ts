import {
  ApiException,
  createConfiguration,
  HttpMethod,
  ServerConfiguration,
  Watch,
  type KubeConfig,
} from '@kubernetes/client-node';
import { ApiClientConfig } from './api-client.js';
import type { InformerTransport, ListResponse, QueryParams } from './informer.js';

/**
 * List and watch over the API server with the kubeconfig's credentials. Lists are raw GETs
 * through client-node's own HTTP stack (same TLS agent and auth as its generated clients) on
 * the collection path, so any resource works without discovery and the result is plain JSON,
 * the same shape watch events have, and are bounded by `listTimeoutMs` (default 60 s).
 * Watches use client-node's `Watch`. Given an ApiClientConfig, lists share its connections and
 * rate limit.
 */
export function kubeTransport(kc: KubeConfig, options: { listTimeoutMs?: number } = {}): InformerTransport {
  const listTimeoutMs = options.listTimeoutMs ?? 60_000;
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const config = kc instanceof ApiClientConfig ? kc.configuration() : createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
  });
  const watcher = new Watch(kc);

  return {
    async list(path: string, query: QueryParams, signal?: AbortSignal): Promise<ListResponse> {
      const ctx = config.baseServer.makeRequestContext(path, HttpMethod.GET);
      // client-node sets no timeout: without one, a list the server never answers stalls the
      // informer (and its stop()) for good.
      const timeout = AbortSignal.timeout(listTimeoutMs);
      ctx.setSignal(signal ? AbortSignal.any([signal, timeout]) : timeout);
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') ctx.setQueryParam(k, String(v));
      ctx.setHeaderParam('Accept', 'application/json');
      await kc.applySecurityAuthentication(ctx);
      const response = await config.httpApi.send(ctx).toPromise();
      const text = await response.body.text();
      if (response.httpStatusCode < 200 || response.httpStatusCode > 299) {
        // Same shape client-node's generated clients throw: body is the raw response text.
        throw new ApiException(response.httpStatusCode, 'list failed', text, response.headers);
      }
      return JSON.parse(text) as ListResponse;
    },
    watch: (path, query, onEvent, onDone) => watcher.watch(path, query, onEvent, onDone),
  };
}
