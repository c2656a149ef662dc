// Helm from its own Go packages (e2e/helm/main.go), for the chart tests: the unit test renders and
// lints charts/lockstep; the e2e test installs it into the local control plane.
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const CHART = `${repoRoot}charts/lockstep`;

export type ChartObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
};

let built: string | undefined;

/** The tool's path: built once per source hash into LOCKSTEP_CACHE by e2e/helm/build.sh. */
export function helmBinary(): string {
  built ??= execFileSync('bash', [`${repoRoot}e2e/helm/build.sh`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  return built;
}

export interface HelmRun { status: number; stdout: string; stderr: string }

/** `helm <command> ...args`; --set pairs from `set`. Never throws: tests look at status and output. */
export function helm(command: string, args: readonly string[], set: Record<string, string | number | boolean> = {}): HelmRun {
  const sets = Object.entries(set).flatMap(([k, v]) => ['--set', `${k}=${String(v)}`]);
  const run = spawnSync(helmBinary(), [command, ...args, ...sets], { encoding: 'utf8', env: process.env });
  return { status: run.status ?? -1, stdout: run.stdout, stderr: run.stderr };
}

export function parseObjects(text: string): ChartObject[] {
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as unknown)
    .filter((o): o is ChartObject => typeof o === 'object' && o !== null && 'kind' in o);
}

/** The chart's objects as `helm template` renders them; throws with Helm's error when it fails. */
export function renderChart(args: readonly string[] = [], set: Record<string, string | number | boolean> = {}): ChartObject[] {
  const run = helm('template', [CHART, ...args], set);
  if (run.status !== 0) throw new Error(`helm template failed: ${run.stderr}`);
  return parseObjects(run.stdout);
}

export const objectKey = (o: ChartObject): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export function byKey(objects: readonly ChartObject[]): Map<string, ChartObject> {
  return new Map([...objects].sort((a, b) => objectKey(a).localeCompare(objectKey(b))).map((o) => [objectKey(o), o]));
}
