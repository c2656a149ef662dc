// What every fault runs against: the operator (in this process) talking to the API server through
// a TcpProxy, so its network can be cut without cutting the test's; and the list of faults, in
// the order the suite tries them.
import * as k8s from '@kubernetes/client-node';
import type { Clients } from '../harness/cluster.js';
import { deleteNamespaceAndFinalize, installCrds } from '../harness/lockstep.js';
import { createTestNamespace } from '../harness/namespace.js';
import { startInProcess } from '../harness/operator.js';
import { TcpProxy } from '../harness/tcp-proxy.js';
import { COMPONENTS, killAndRestart, networkCut, noFault, type Fault } from './faults.js';
import { applyPolicy, policyReady } from './fleet.js';

export interface Rig {
  /** Where every fault's services live, with the KeyPolicy they share. */
  readonly namespace: string;
  readonly proxy: TcpProxy;
  readonly operator: ReturnType<typeof startInProcess>;
  stop(): Promise<void>;
}

/** `kc` with its server replaced by the proxy's address (same CA, same user). */
function throughProxy(kc: k8s.KubeConfig, port: number): k8s.KubeConfig {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user) throw new Error('no current cluster or user in the kubeconfig');
  const proxied = new k8s.KubeConfig();
  proxied.loadFromOptions({
    clusters: [{ ...cluster, server: `https://127.0.0.1:${port}` }], users: [user],
    contexts: [{ name: 'proxied', cluster: cluster.name, user: user.name }], currentContext: 'proxied',
  });
  return proxied;
}

export async function startRig(c: Clients): Promise<Rig> {
  installCrds();
  const server = new URL(c.kc.getCurrentCluster()?.server ?? '');
  const proxy = new TcpProxy({ host: server.hostname, port: Number(server.port || 443) });
  const port = await proxy.start();
  // Requests the cut network swallows end after 10 s (the default is 30 s), within any cut.
  const operator = startInProcess(throughProxy(c.kc, port), { kubeRequestTimeoutMs: 10_000 });
  const namespace = await createTestNamespace(c, 'faults');
  await applyPolicy(c, namespace);
  await policyReady(c, namespace);
  return {
    namespace, proxy, operator,
    async stop() {
      proxy.restore();
      // The operator finalizes the services first: stopped earlier, it would leave them behind.
      await deleteNamespaceAndFinalize(c, namespace);
      await operator.stop();
      await proxy.stop();
    },
  };
}

export interface FaultSettings {
  /** How long a killed process stays down. */
  readonly downSeconds: number;
  /** How long the operator's network is cut. */
  readonly cutSeconds: number;
  /** Also kill the kubelet (needs the node of cluster-up.sh, root). */
  readonly kubelet?: boolean;
}

export function faultList(rig: Rig, s: FaultSettings): Fault[] {
  return [
    noFault(),
    ...COMPONENTS.map((component) => killAndRestart(component, s.downSeconds)),
    ...(s.kubelet ? [killAndRestart('kubelet', s.downSeconds)] : []),
    networkCut(rig.proxy, s.cutSeconds),
  ];
}
