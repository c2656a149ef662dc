// One fault tried on services while they converge. All faults share one namespace and KeyPolicy:
// what earlier faults left converged is what this one must not lose. N more services are applied
// and the fault injected at once, while the operator works through them. Measured: from the
// dependency back to every service Ready. Checked: every Secret that existed before is there with
// the same uid and data, every sealed value reads back, no new KEK generation, no audit entry
// written twice.
import { eventually, type Clients } from '../harness/cluster.js';
import type { Fault } from './faults.js';
import { applyAll, compare, inventory, prepareFleet, sealedValuesIntact, unconverged, POLICY, type Fleet } from './fleet.js';

export interface ScenarioOptions {
  readonly namespace: string;
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
  /** Services in the namespace (converged before, and the new ones). */
  readonly services: number;
  readonly problems: string[];
}

/** Every service of the namespace so far: each fault adds its own. */
const fleets: Fleet[] = [];

async function converged(c: Clients, fleet: Fleet, timeoutMs: number): Promise<void> {
  let left: string[] = [];
  await eventually(`${fleet.names.length} services converged`, async () => {
    left = await unconverged(c, fleet);
    return left.length === 0 ? true : undefined;
  }, timeoutMs, 250).catch((err: Error) => {
    throw new Error(`${err.message}; not converged: ${left.slice(0, 10).join(', ')}${left.length > 10 ? ` and ${left.length - 10} more` : ''}`);
  });
}

export async function runScenario(c: Clients, fault: Fault, o: ScenarioOptions): Promise<Outcome> {
  const all = (): Fleet => ({ namespace: o.namespace, names: fleets.flatMap((f) => f.names), sealed: new Map(fleets.flatMap((f) => [...f.sealed])) });
  const before = await inventory(c, o.namespace);
  const fresh = await prepareFleet(c, o.namespace, `f${fleets.length}`, o.converging);
  fleets.push(fresh.fleet);
  await applyAll(c, fresh.services);
  o.log(`${fault.name}: ${all().names.length - o.converging} services converged, ${o.converging} applied; injecting`);
  const outage = await fault.inject();
  let convergeMs = NaN;
  const problems: string[] = [];
  try {
    await converged(c, all(), o.convergeTimeoutMs);
    convergeMs = Date.now() - outage.backAt;
  } catch (err) {
    problems.push((err as Error).message);
  }
  const after = await inventory(c, o.namespace);
  problems.push(...compare(before, after), ...await sealedValuesIntact(c, all()));
  const outcome = { fault: fault.name, downMs: outage.backAt - outage.downAt, convergeMs, services: all().names.length, problems };
  o.log(`${fault.name}: down ${(outcome.downMs / 1000).toFixed(1)} s; ${outcome.services} services converged ${(convergeMs / 1000).toFixed(1)} s after it was back; `
    + `${problems.length ? `PROBLEMS: ${problems.join('; ')}` : `nothing lost (${before.secrets.size} Secrets before, KEK ${after.kids.join(',')}, ${after.audit.length} audit entries of KeyPolicy ${POLICY}, none repeated)`}`);
  return outcome;
}
