// The bench's HTTP client: one keep-alive connection pool to the API server, as client-go keeps.
// client-node 1.4 builds a new https.Agent for every request (a TLS handshake each time, about
// 30 ms on this machine under load against 5 ms on a kept connection), which would make the
// baseline measure client overhead instead of the API server's limit.
import https from 'node:https';
import type * as k8s from '@kubernetes/client-node';

interface Route {
  readonly prefix: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

const ROUTES: Readonly<Record<string, Route>> = {
  'v1/Namespace': { prefix: '/api/v1', plural: 'namespaces', namespaced: false },
  'v1/Secret': { prefix: '/api/v1', plural: 'secrets', namespaced: true },
  'v1/ConfigMap': { prefix: '/api/v1', plural: 'configmaps', namespaced: true },
  'networking.k8s.io/v1/NetworkPolicy': { prefix: '/apis/networking.k8s.io/v1', plural: 'networkpolicies', namespaced: true },
  'cert-manager.io/v1/Certificate': { prefix: '/apis/cert-manager.io/v1', plural: 'certificates', namespaced: true },
  'cert-manager.io/v1/CertificateRequest': { prefix: '/apis/cert-manager.io/v1', plural: 'certificaterequests', namespaced: true },
  'lockstep.dev/v1alpha1/KeyPolicy': { prefix: '/apis/lockstep.dev/v1alpha1', plural: 'keypolicies', namespaced: true },
  'lockstep.dev/v1alpha1/EncryptedService': { prefix: '/apis/lockstep.dev/v1alpha1', plural: 'encryptedservices', namespaced: true },
};

/** The object's URL path (`collection` for a create); only the kinds a scale run writes. */
export function objectPath(obj: k8s.KubernetesObject, collection = false): string {
  const route = ROUTES[`${obj.apiVersion}/${obj.kind}`];
  if (!route) throw new Error(`bench client: no route for ${obj.apiVersion} ${obj.kind}`);
  const ns = route.namespaced ? `/namespaces/${encodeURIComponent(obj.metadata?.namespace ?? 'default')}` : '';
  const base = `${route.prefix}${ns}/${route.plural}`;
  return collection ? base : `${base}/${encodeURIComponent(obj.metadata?.name ?? '')}`;
}

export class HttpError extends Error {
  constructor(readonly code: number, body: string) {
    super(`HTTP ${code}: ${body.slice(0, 300)}`);
  }
}

export class KeepAliveClient {
  private constructor(
    private readonly server: URL,
    private readonly agent: https.Agent,
    private readonly headers: Record<string, string>,
  ) {}

  static async forConfig(kc: k8s.KubeConfig, maxSockets: number): Promise<KeepAliveClient> {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const agent = new https.Agent({ keepAlive: true, maxSockets, ca: opts.ca, cert: opts.cert, key: opts.key });
    return new KeepAliveClient(new URL(cluster.server), agent, { ...(opts.headers as Record<string, string> | undefined) });
  }

  request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = https.request({
        host: this.server.hostname, port: this.server.port, path, method, agent: this.agent,
        headers: { ...this.headers, Accept: 'application/json', 'User-Agent': 'lockstep-bench', ...(payload ? { 'Content-Type': contentType } : {}) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const code = res.statusCode ?? 0;
          if (code < 200 || code > 299) reject(new HttpError(code, text));
          else resolve(text ? JSON.parse(text) : undefined);
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  apply(obj: k8s.KubernetesObject, fieldManager: string): Promise<unknown> {
    return this.request('PATCH', `${objectPath(obj)}?fieldManager=${encodeURIComponent(fieldManager)}&force=true`, obj, 'application/apply-patch+yaml');
  }

  create(obj: k8s.KubernetesObject): Promise<unknown> {
    return this.request('POST', objectPath(obj, true), obj);
  }

  mergePatchStatus(obj: k8s.KubernetesObject, patch: object): Promise<unknown> {
    return this.request('PATCH', `${objectPath(obj)}/status`, patch, 'application/merge-patch+json');
  }

  close(): void {
    this.agent.destroy();
  }
}
