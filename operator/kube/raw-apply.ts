// Server-side apply that sends the object's JSON exactly as built. KubernetesObjectApi.patch
// first runs the body through client-node's model serializer, which drops fields whose model
// names differ from the wire names — a NetworkPolicy rule's `from` (modelled as `_from`) would be
// silently removed, admitting every source. The URL still comes from KubernetesObjectApi's
// discovery (specUriPath), and authentication from the KubeConfig (leader guard included).
import * as k8s from '@kubernetes/client-node';

export class RawApplyClient extends k8s.KubernetesObjectApi {
  static forConfig(kc: k8s.KubeConfig): RawApplyClient {
    const client = kc.makeApiClient(RawApplyClient);
    client.setDefaultNamespace(kc);
    return client;
  }

  async apply<T extends k8s.KubernetesObject>(obj: T, fieldManager: string): Promise<T> {
    return this.send(obj, fieldManager, k8s.PatchStrategy.ServerSideApply, obj, { force: 'true' });
  }

  /**
   * Replaces the object's spec with `spec` as it is (a JSON patch of /spec), removing whatever
   * other writers added. The patch carries `obj`'s resourceVersion, which the API server takes as
   * a precondition: a write since `obj` was read makes it 409 Conflict, retried from a fresh read.
   */
  async replaceSpec<T extends k8s.KubernetesObject>(obj: T, spec: unknown, fieldManager: string): Promise<T> {
    const ops = [
      { op: 'replace', path: '/metadata/resourceVersion', value: obj.metadata?.resourceVersion },
      { op: 'replace', path: '/spec', value: spec },
    ];
    return this.send(obj, fieldManager, k8s.PatchStrategy.JsonPatch, ops, {});
  }

  private async send<T extends k8s.KubernetesObject>(obj: T, fieldManager: string, contentType: string, body: unknown, query: Record<string, string>): Promise<T> {
    const path = await this.specUriPath(obj, 'patch');
    const ctx = this.configuration.baseServer.makeRequestContext(path, k8s.HttpMethod.PATCH);
    ctx.setQueryParam('fieldManager', fieldManager);
    for (const [k, v] of Object.entries(query)) ctx.setQueryParam(k, v);
    ctx.setHeaderParam('Content-Type', contentType);
    ctx.setHeaderParam('Accept', 'application/json');
    ctx.setBody(JSON.stringify(body));
    await this.configuration.authMethods.default?.applySecurityAuthentication(ctx);
    const response = await this.configuration.httpApi.send(ctx).toPromise();
    const text = await response.body.text();
    if (response.httpStatusCode < 200 || response.httpStatusCode > 299) {
      // The shape generated clients throw: body is the raw response text.
      throw new k8s.ApiException(response.httpStatusCode, `patch of ${obj.kind} ${obj.metadata?.name} failed`, text, response.headers);
    }
    return JSON.parse(text) as T;
  }
}
