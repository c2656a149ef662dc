// `make bench-scale`: the operator at scale against the API server's own limit, in one run, on
// the cluster $KUBECONFIG names (the local control plane). Prints the issue-12 table; asserts
// nothing. Steps (bench/scale/): baseline → operator convergence → idle (RSS at rest, writes at
// rest) → spec-change latency → 50,000 unrelated objects → cleanup (also on Ctrl-C).
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KUBE_RATE_LIMIT_DEFAULT } from '../operator/config.js';
import { auditLogOf, countByVerb, countByVerbAndResource, markAudit, recordsSince, writesAtRest } from './scale/audit.js';
import { runBaseline } from './scale/baseline.js';
import { Cleanup, removeRunNamespaces } from './scale/cleanup.js';
import { addClutter } from './scale/clutter.js';
import type { Layout } from './scale/fixtures.js';
import { adminConfig, Cluster, limitsText, sleep, type ClientLimits } from './scale/kube.js';
import { measureSpecChanges } from './scale/latency.js';
import { controllerFigures, eventToWrite } from './scale/operator-metrics.js';
import { installManifests, OPERATOR_USER, startOperator, writeOperatorKubeconfig, type OperatorProcess } from './scale/operator-process.js';
import { converge, firstVerdicts, prepareNamespaces } from './scale/operator-run.js';
import { parseMetrics } from './scale/prom.js';
import { duration, mib, spread, spreadText } from './scale/stats.js';
import { countsText, markdownTable, ratio, type Row } from './scale/table.js';

const USAGE = `Usage: make bench-scale [ARGS="--services 10000 ..."]   (npx tsx bench/scale.ts [options])
Needs a running cluster in $KUBECONFIG with cert-manager and the ClusterIssuer lockstep-ca — the
local control plane: make cluster-up (or NODES=0 ... make cluster-up), then export the KUBECONFIG it prints.
  --services N        EncryptedServices (default 1000)
  --namespaces N      namespaces, one KeyPolicy each (default 10)
  --samples N         spec changes for the latency figure (default 25)
  --unrelated N       unrelated Secrets + ConfigMaps added at the end (default 50000; 0 skips)
  --concurrency N     requests in flight of the bench's apply client (default 16)
  --qps N --burst N   client rate limit of the apply client (default: the operator's default,
                      LOCKSTEP_KUBE_QPS/BURST; --qps off for none)
  --verdict-wait S    after Ready, seconds to wait at most for every service's first
                      verification verdict before the idle window (default 420; 0 skips)
  --idle S            seconds idle after that, for RSS and writes at rest (default 60)
  --no-baseline       skip the baseline
  --operator-dir DIR  build and run the operator of another checkout (e.g. a worktree of main, for a
                      before/after pair); default this one
`;

const { values: opts } = parseArgs({
  options: {
    services: { type: 'string', default: '1000' },
    namespaces: { type: 'string', default: '10' },
    samples: { type: 'string', default: '25' },
    unrelated: { type: 'string', default: '50000' },
    concurrency: { type: 'string', default: '16' },
    qps: { type: 'string' },
    burst: { type: 'string' },
    idle: { type: 'string', default: '60' },
    'verdict-wait': { type: 'string', default: '420' },
    'no-baseline': { type: 'boolean', default: false },
    'operator-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help || !process.env.KUBECONFIG) {
  process.stdout.write(USAGE);
  process.exit(opts.help ? 0 : 2);
}

const root = join(import.meta.dirname, '..');
const operatorDir = opts['operator-dir'] ?? root;
const n = Number(opts.services);
const runId = `${Date.now().toString(36)}`;
const limits: ClientLimits = {
  concurrency: Number(opts.concurrency),
  // The same client limit as the operator's default, so the baseline is the limit the operator has.
  qps: opts.qps === 'off' ? undefined : Number(opts.qps ?? KUBE_RATE_LIMIT_DEFAULT.qps),
  burst: Number(opts.burst ?? (opts.qps === undefined ? KUBE_RATE_LIMIT_DEFAULT.burst : opts.qps)),
};
// Generous: a 2-core machine shared with other work; a figure is a measurement, not a limit.
const timeoutMs = Math.max(600_000, n * 1_500);
const idleMs = Number(opts.idle) * 1000;
const verdictWaitMs = Number(opts['verdict-wait']) * 1000;
const layout = (prefix: string): Layout => ({ services: n, namespaces: Number(opts.namespaces), prefix, runId });
const log = (msg: string): void => console.error(`[bench-scale ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

const kc = adminConfig();
const cluster = await Cluster.connect(kc, Math.max(limits.concurrency * 2, 8));
const cleanup = new Cleanup();
const rows: Row[] = [];
// Each figure is logged when measured, so an interrupted run still leaves what it measured.
const addRow = (r: Row): void => {
  rows.push(r);
  log(`${r.figure}: ${r.measured}`);
};
const details: string[] = [];
let operator: OperatorProcess | undefined;

try {
  log(`N=${n} in ${opts.namespaces} namespaces; load ${load()}`);
  await removeRunNamespaces(cluster, false, timeoutMs);
  installManifests(root);
  cleanup.add('deleting the run\'s namespaces', () => removeRunNamespaces(cluster, operator !== undefined, timeoutMs));

  let baselineMs = NaN;
  if (!opts['no-baseline']) {
    log(`baseline: rendering and applying the children of ${n} services (${limitsText(limits)})`);
    const b = await runBaseline(cluster, layout('bench-base'), limits, timeoutMs);
    baselineMs = b.totalMs;
    addRow({ figure: `baseline: the same children (${b.objects} objects, rendered by the same builders) applied concurrently, until cert-manager reports every Certificate Ready`, measured: `${duration(b.totalMs)} (${duration(b.applyMs)} of it the apply)` });
    log(`baseline done in ${duration(b.totalMs)}; deleting its namespaces`);
    await removeRunNamespaces(cluster, false, timeoutMs);
  }

  log(`building the operator in ${operatorDir} (npm run build)`);
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: operatorDir, stdio: ['ignore', 'ignore', 'inherit'] });
  const operatorKubeconfig = join(tmpdir(), `lockstep-bench-${process.pid}.kubeconfig`);
  writeOperatorKubeconfig(root, kc, operatorKubeconfig, Math.ceil(timeoutMs / 3_600_000) + 2);
  operator = await startOperator(operatorDir, operatorKubeconfig, {});
  const running = operator;
  cleanup.add('stopping the operator', async () => {
    await running.stop();
    operator = undefined;
  });
  // Runs before the operator stops: its finalizers on the run's objects are lifted by the operator itself.
  cleanup.add('deleting the run\'s namespaces while the operator runs', () => removeRunNamespaces(cluster, true, timeoutMs));
  log(`operator pid ${running.pid}, ${running.metricsUrl}`);

  const run = layout('bench-op');
  await prepareNamespaces(cluster, run, limits, timeoutMs);
  const auditLog = auditLogOf(process.env.KUBECONFIG ?? '');
  const beforeConvergence = parseMetrics(await running.metrics());
  const convergenceMark = markAudit(auditLog);
  log(`applying ${n} EncryptedServices`);
  const c = await converge(cluster, run, limits, timeoutMs);
  cleanup.add('stopping the watch of EncryptedServices', () => c.services.stop());
  const afterConvergence = parseMetrics(await running.metrics());
  const convergenceRecords = await recordsSince(convergenceMark, OPERATOR_USER);
  const atConvergence = running.memory();
  addRow({ figure: `all ${n} Ready after the CRs are applied`, measured: duration(c.readyMs) });
  addRow({ figure: 'ratio operator / baseline', measured: ratio(c.readyMs, baselineMs) });
  log(`converged in ${duration(c.readyMs)}; waiting for every service's first verification verdict`);
  const verdictsMs = verdictWaitMs > 0 ? await firstVerdicts(c, run, verdictWaitMs) : undefined;
  if (verdictWaitMs > 0) addRow({
    figure: `all ${n} with a first verification verdict (Verified condition; the first probe is due a jittered LOCKSTEP_VERIFY_PERIOD after a service appears)`,
    measured: verdictsMs === undefined ? `not within ${duration(verdictWaitMs)} (${c.services.list().filter((s) => (s as { status?: { conditions?: { type: string }[] } }).status?.conditions?.some((x) => x.type === 'Verified')).length} had one)` : duration(verdictsMs),
  });
  log(`idle ${idleMs / 1000} s`);

  const idleMark = markAudit(auditLog);
  await sleep(idleMs / 2);
  const rest = running.memory();
  const restMetric = parseMetrics(await running.metrics());
  await sleep(idleMs / 2);
  const rss = (m: typeof rest, metric: number): string => `peak ${mib(m.peak)}, now ${mib(m.current)} (process_resident_memory_bytes ${mib(metric)})`;
  const residentOf = (s: ReturnType<typeof parseMetrics>): number => s.find((x) => x.name === 'process_resident_memory_bytes')?.value ?? NaN;
  addRow({ figure: `operator RSS at ${n}`, measured: `peak ${mib(atConvergence.peak)} at convergence; at rest (${idleMs / 2000} s idle) ${mib(rest.current)}, process_resident_memory_bytes ${mib(residentOf(restMetric))}` });
  const idleWrites = writesAtRest(await recordsSince(idleMark, OPERATOR_USER));
  addRow({ figure: `mutating requests in ${idleMs / 1000} s at rest (besides lease renewals)`, measured: `${idleWrites.length}: ${countsText(countByVerbAndResource(idleWrites))}` });

  for (const f of controllerFigures(beforeConvergence, afterConvergence)) {
    addRow({
      figure: `${f.controller} controller while ${n} converged`,
      measured: `${f.reconciles} reconciles, mean ${duration(f.meanMs)}; queue adds ${f.adds}, retries ${f.retries}, requeues ${f.requeues}`,
    });
  }
  addRow({ figure: 'API requests per converged service, by verb (audit log, convergence window)', measured: countsText(countByVerb(convergenceRecords), n) });
  details.push(`requests during convergence by verb and resource: ${countsText(countByVerbAndResource(convergenceRecords))}`);

  log(`spec changes: ${opts.samples} services, one at a time`);
  const beforeChanges = parseMetrics(await running.metrics());
  const lat = await measureSpecChanges(cluster, run, c.services, Number(opts.samples), 120_000);
  const afterChanges = parseMetrics(await running.metrics());
  const e2w = eventToWrite(beforeChanges, afterChanges, { controller: 'encryptedservice', resource: 'networkpolicies' });
  const loopLag = afterChanges.find((x) => x.name === 'nodejs_eventloop_lag_max_seconds')?.value ?? NaN;
  addRow({
    figure: `spec change → NetworkPolicy written, from the operator's watch event (lockstep_event_to_write_seconds, n=${e2w.n})`,
    measured: e2w.n === 0 ? 'no samples (an operator without the metric?)'
      : `p50 ${duration(e2w.p50)}, p90 ${duration(e2w.p90)}, p99 ${duration(e2w.p99)}, max ≤ ${duration(e2w.maxBound)}; event-loop lag of the operator up to ${duration(loopLag * 1000)} before an event is read is not in it`,
  });
  addRow({ figure: 'spec change → new NetworkPolicy seen by a watch, end to end from the client\'s apply', measured: spreadText(spread(lat.endToEnd)) });
  details.push(`spec change → the change seen by the bench's own watch of EncryptedServices: ${spreadText(spread(lat.delivered))}`);

  const unrelated = Number(opts.unrelated);
  if (unrelated > 0) {
    log(`adding ${unrelated} unrelated Secrets and ConfigMaps`);
    const tookMs = await addClutter(cluster, `bench-unrelated`, runId, unrelated, limits.concurrency * 2);
    log(`added in ${duration(tookMs)}; settling 30 s`);
    await sleep(30_000);
    const m = running.memory();
    addRow({ figure: `operator RSS with ${unrelated} unrelated Secrets/ConfigMaps in the cluster`, measured: rss(m, residentOf(parseMetrics(await running.metrics()))) });
  }

  console.log(`\nScale run: ${new Date().toISOString().slice(0, 16)}Z, operator from ${operatorDir}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${mib(totalmem())}; ${n} EncryptedServices in ${opts.namespaces} namespaces; client ${limitsText(limits)}; load average at the end ${load()}\n`);
  console.log(markdownTable(rows));
  for (const d of details) console.log(`\n${d}`);
} catch (err) {
  console.error(`bench-scale failed: ${(err as Error).stack ?? err}`);
  if (operator) console.error(`operator's last output:\n${operator.tail()}`);
  process.exitCode = 1;
} finally {
  log('cleaning up');
  await cleanup.run();
  cluster.http.close();
}
