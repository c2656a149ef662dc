// The operator's part of the run: KeyPolicies first (one per namespace, Ready before the clock
// starts), then every EncryptedService applied at once by the same client as the baseline, and
// the time until all of them report Ready for their current generation.
import type * as k8s from '@kubernetes/client-node';
import type { Informer } from '../../operator/runtime/informer.js';
import { encryptedServices, keyPolicies, namespaces, RUN_LABEL, type Layout } from './fixtures.js';
import { isReady, mapLimit, waitUntil, type ClientLimits, type Cluster } from './kube.js';

const LOCKSTEP = { group: 'lockstep.dev', version: 'v1alpha1' };

export const readyForGeneration = (o: k8s.KubernetesObject): boolean =>
  isReady(o) && (o as { status?: { observedGeneration?: number } }).status?.observedGeneration === o.metadata?.generation;

export interface Convergence {
  readonly startedAt: number;
  readonly readyMs: number;
  /** Watch cache of the run's EncryptedServices, kept for the latency step; stop it at the end. */
  readonly services: Informer;
}

export async function prepareNamespaces(cluster: Cluster, layout: Layout, limits: ClientLimits, timeoutMs: number): Promise<void> {
  await mapLimit(namespaces(layout), limits.concurrency, (ns) => cluster.apply(ns));
  await cluster.applyAll(keyPolicies(layout), limits);
  const policies = await cluster.cache('keypolicies', { ...LOCKSTEP, plural: 'keypolicies' }, `${RUN_LABEL}=${layout.runId}`);
  try {
    await waitUntil(`${layout.namespaces} KeyPolicies Ready`, () => policies.list().filter(readyForGeneration).length >= layout.namespaces, timeoutMs);
  } finally {
    await policies.stop();
  }
}

export async function converge(cluster: Cluster, layout: Layout, limits: ClientLimits, timeoutMs: number): Promise<Convergence> {
  const services = await cluster.cache('encryptedservices', { ...LOCKSTEP, plural: 'encryptedservices' }, `${RUN_LABEL}=${layout.runId}`);
  const startedAt = Date.now();
  await cluster.applyAll(encryptedServices(layout), limits);
  const ready = (): number => services.list().filter(readyForGeneration).length;
  try {
    await waitUntil(`${layout.services} EncryptedServices Ready`, () => ready() >= layout.services, timeoutMs, 100);
  } catch (err) {
    await services.stop();
    const notReady = services.list().filter((s) => !readyForGeneration(s)).slice(0, 3)
      .map((s) => `${s.metadata?.namespace}/${s.metadata?.name}: ${JSON.stringify((s as { status?: unknown }).status ?? {}).slice(0, 300)}`);
    throw new Error(`${(err as Error).message} (${ready()} Ready); e.g. ${notReady.join('; ')}`);
  }
  return { startedAt, readyMs: Date.now() - startedAt, services };
}

const hasVerdict = (o: k8s.KubernetesObject): boolean =>
  ((o as { status?: { conditions?: { type: string }[] } }).status?.conditions ?? []).some((c) => c.type === 'Verified');

/**
 * Waits until every service has its first verification verdict: the verifier's first probe of a
 * new service is due a jittered period (default 5 min) after it appears, and until then the
 * operator still has work to do — "at rest" starts after it. Returns ms since `startedAt`, or
 * undefined when `timeoutMs` passed first (an operator without the verifier).
 */
export async function firstVerdicts(c: Convergence, layout: Layout, timeoutMs: number): Promise<number | undefined> {
  try {
    await waitUntil(`${layout.services} first verification verdicts`, () => c.services.list().filter(hasVerdict).length >= layout.services, timeoutMs, 1_000);
    return Date.now() - c.startedAt;
  } catch {
    return undefined;
  }
}
