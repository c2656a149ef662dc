// One fault tried on services while they converge: in a namespace of its own, a few services
// converged before the fault (what must not be lost), then N more applied and the fault injected
// at once, while the operator works through them. Measured: from the dependency back to every
// service Ready. Checked: every Secret that existed before is there with the same uid and data,
// every sealed value reads back, no new KEK generation, no audit entry written twice.
import type { Clients } from '../harness/cluster.js';
import { eventually } from '../harness/cluster.js';
import { deleteNamespaceAndFinalize } from '../harness/lockstep.js';
import { createTestNamespace } from '../harness/namespace.js';
import type { Fault } from './faults.js';
import { applyAll, applyPolicy, policyReady, compare, inventory, prepareFleet, sealedValuesIntact, unconverged, POLICY } from './fleet.js';

export interface ScenarioOptions {
  /** Services converged before the fault. */
  readonly kept: number;
  /** Services applied just before the fault, converging through it. */
  readonly converging: number;
  /** How long the services may take after the dependency is back (the goal is 30 s). */
  readonly convergeTimeoutMs: number;
  readonly log: (line: string) => void;
}

export interface Outcome {
  readonly fault: string;
  readonly downMs: number;
  /** From the dependency back to every service converged. */
  readonly convergeMs: number;
  readonly services: number;
  readonly problems: string[];
}

async function converged(c: Clients, fleet: Parameters<typeof unconverged>[1], timeoutMs: number): Promise<void> {
  let left: string[] = [];
  await eventually(`${fleet.names.length} services converged`, async () => {
    left = await unconverged(c, fleet);
    return left.length === 0 ? true : undefined;
  }, timeoutMs, 250).catch((err: Error) => {
    throw new Error(`${err.message}; not converged: ${left.slice(0, 10).join(', ')}${left.length > 10 ? ` and ${left.length - 10} more` : ''}`);
  });
}

export async function runScenario(c: Clients, fault: Fault, o: ScenarioOptions): Promise<Outcome> {
  const namespace = await createTestNamespace(c, 'faults');
  try {
    await applyPolicy(c, namespace);
    await policyReady(c, namespace);
    const kept = await prepareFleet(c, namespace, 'kept', o.kept);
    await applyAll(c, kept.services);
    await converged(c, kept.fleet, 120_000);
    const before = await inventory(c, namespace);

    const fresh = await prepareFleet(c, namespace, 'new', o.converging);
    await applyAll(c, fresh.services);
    o.log(`${fault.name}: ${o.kept} services converged, ${o.converging} applied; injecting`);
    const outage = await fault.inject();
    let convergeMs = NaN;
    const problems: string[] = [];
    try {
      await converged(c, { ...fresh.fleet, names: [...kept.fleet.names, ...fresh.fleet.names] }, o.convergeTimeoutMs);
      convergeMs = Date.now() - outage.backAt;
    } catch (err) {
      problems.push((err as Error).message);
    }
    const after = await inventory(c, namespace);
    problems.push(...compare(before, after));
    for (const fleet of [kept.fleet, fresh.fleet]) problems.push(...await sealedValuesIntact(c, fleet));
    const outcome = { fault: fault.name, downMs: outage.backAt - outage.downAt, convergeMs, services: o.kept + o.converging, problems };
    o.log(`${fault.name}: down ${(outcome.downMs / 1000).toFixed(1)} s; ${outcome.services} services converged ${(convergeMs / 1000).toFixed(1)} s after it was back; `
      + `${problems.length ? `PROBLEMS: ${problems.join('; ')}` : `nothing lost (${before.secrets.size} Secrets, KEK ${after.kids.join(',')}, ${after.audit.length} audit entries of KeyPolicy ${POLICY}, none repeated)`}`);
    return outcome;
  } finally {
    await deleteNamespaceAndFinalize(c, namespace);
  }
}
