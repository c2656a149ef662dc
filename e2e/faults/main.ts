// `make faults`: the fault suite against the local cluster of `make cluster-up` (KUBECONFIG), at
// full size, ending with the recovery table README.md quotes. Runs an operator in this process
// (through a proxy, for the network cut): stop any other Lockstep operator on the cluster first.
//   npx tsx e2e/faults/main.ts [--services 100] [--down 5] [--cut 60]
// The kubelet is killed too when the cluster has a node (cluster-up.sh as root).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { clients } from '../harness/cluster.js';
import { localCertManager } from '../harness/cert-manager.js';
import { clusterDir } from './faults.js';
import { faultList, startRig } from './rig.js';
import { runScenario, type Outcome } from './scenario.js';

const { values } = parseArgs({ options: {
  services: { type: 'string', default: '100' }, down: { type: 'string', default: '5' }, cut: { type: 'string', default: '60' },
} });

async function main(): Promise<number> {
  if (!localCertManager()) {
    console.error('faults: KUBECONFIG must point at the local cluster of `make cluster-up` (its processes are what gets killed)');
    return 2;
  }
  const c = clients();
  const kubelet = existsSync(join(clusterDir() ?? '', 'node', 'pids', 'kubelet'));
  const rig = await startRig(c);
  const outcomes: Outcome[] = [];
  try {
    for (const fault of faultList(rig, { downSeconds: Number(values.down), cutSeconds: Number(values.cut), kubelet })) {
      outcomes.push(await runScenario(c, fault, {
        namespace: rig.namespace, converging: Number(values.services), convergeTimeoutMs: 600_000, log: (l) => console.log(l),
      }));
    }
  } finally {
    await rig.stop();
  }
  console.log('\n| Fault | Down | Services | Converged after it was back | Checked |\n|---|---|---|---|---|');
  for (const o of outcomes) {
    const checked = o.problems.length ? `PROBLEMS: ${o.problems.join('; ')}` : 'nothing lost or done twice';
    console.log(`| ${o.fault} | ${(o.downMs / 1000).toFixed(1)} s | ${o.services} | ${(o.convergeMs / 1000).toFixed(1)} s | ${checked} |`);
  }
  if (!kubelet) console.log('\n(kubelet not tried: this cluster has no node)');
  return outcomes.some((o) => o.problems.length > 0 || !(o.convergeMs <= 30_000)) ? 1 : 0;
}

process.exitCode = await main();
