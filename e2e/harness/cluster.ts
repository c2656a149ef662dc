// Access to the cluster the e2e suite runs against: whatever KUBECONFIG points at (the local
// control plane from `make cluster-up`, or a kind cluster). Never a fake.
import * as k8s from '@kubernetes/client-node';

export function kubeConfig(): k8s.KubeConfig {
  if (!process.env.KUBECONFIG) {
    throw new Error('KUBECONFIG is not set: run `make cluster-up` and export the KUBECONFIG it prints');
  }
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  return kc;
}

export interface Clients {
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  objects: k8s.KubernetesObjectApi;
  custom: k8s.CustomObjectsApi;
  apiext: k8s.ApiextensionsV1Api;
}

export function clients(kc: k8s.KubeConfig = kubeConfig()): Clients {
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    objects: k8s.KubernetesObjectApi.makeApiClient(kc),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
    apiext: kc.makeApiClient(k8s.ApiextensionsV1Api),
  };
}

/** The Status message of a rejected request (ApiException.body is raw response text). */
export function apiErrorMessage(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  if (typeof e.body === 'string') {
    try {
      const status = JSON.parse(e.body) as { message?: string };
      if (status.message) return status.message;
    } catch {
      return e.body;
    }
  }
  return e.message ?? String(err);
}

export function apiErrorCode(err: unknown): number | undefined {
  return (err as { code?: number }).code;
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last === undefined ? '' : `; last error: ${apiErrorMessage(last)}`;
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
