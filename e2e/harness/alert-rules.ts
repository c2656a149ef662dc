// The monitoring pack's alerts evaluated by Prometheus's own rule engine (e2e/promrules) on
// recorded scrapes of a real operator's /metrics: build the tool, scrape, evaluate, and read which
// alerts were active when.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';

const RULES = 'manifests/monitoring/prometheusrule.yaml';
const TARGET = { job: 'lockstep', instance: 'operator' };

export interface Scrape { timeMs: number; labels: Record<string, string>; text: string }
export interface ActiveAlert { state: 'pending' | 'firing'; labels: Record<string, string>; annotations: Record<string, string> }
export interface Evaluation { timeMs: number; alerts: ActiveAlert[]; errors?: string[] }

/** The e2e/promrules binary, built once per source hash into LOCKSTEP_CACHE (e2e/go-tool.sh). */
export function buildPromrules(): string {
  const build = spawnSync('bash', ['e2e/go-tool.sh', 'e2e/promrules'], { encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`building e2e/promrules: ${build.stderr}`);
  return build.stdout.trim();
}

export async function scrape(port: number | undefined): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return { timeMs: Date.now(), labels: TARGET, text: await res.text() };
}

/**
 * `scrape` as if it had been scraped every `stepMs` for `forMs` before it was: the state it shows
 * held for that long (a quiet hour before an attack), as `holdMs` holds the last one afterwards.
 */
export function heldBefore(first: Scrape, forMs: number, stepMs = 30_000): Scrape[] {
  const out: Scrape[] = [];
  for (let t = first.timeMs - forMs; t < first.timeMs; t += stepMs) out.push({ ...first, timeMs: t });
  return out;
}

/** The rules of the PrometheusRule in manifests/monitoring/, as a Prometheus rule file in `work`. */
export function ruleFile(work: string): string {
  const file = join(work, 'rules.yaml');
  const rule = parseAllDocuments(readFileSync(RULES, 'utf8')).map((d) => d.toJS() as { kind?: string; spec?: unknown }).find((o) => o?.kind === 'PrometheusRule');
  if (!rule?.spec) throw new Error(`${RULES} holds no PrometheusRule`);
  writeFileSync(file, stringify(rule.spec));
  return file;
}

export function evaluate(promrules: string, work: string, scrapes: Scrape[], holdMs: number, stepMs = 30_000): Evaluation[] {
  const input = join(work, `input-${Date.now()}.json`);
  writeFileSync(input, JSON.stringify({ stepMs, holdMs, scrapes }));
  const run = spawnSync(promrules, ['eval', ruleFile(work), input], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`promrules eval: ${run.stderr}`);
  const evaluations = JSON.parse(run.stdout) as Evaluation[];
  const errors = evaluations.flatMap((e) => e.errors ?? []);
  if (errors.length) throw new Error(`rule evaluation errors: ${errors.slice(0, 3).join('; ')}`);
  return evaluations;
}

export const matches = (a: ActiveAlert, name: string, labels: Record<string, string>) =>
  a.labels['alertname'] === name && Object.entries(labels).every(([k, v]) => a.labels[k] === v);
/** The state of the alert for these labels at the last evaluation, or 'inactive'. */
export const stateAtEnd = (evals: Evaluation[], name: string, labels: Record<string, string> = {}) =>
  evals.at(-1)?.alerts.find((a) => matches(a, name, labels))?.state ?? 'inactive';
/** Whether the alert for these labels was active (pending or firing) at any evaluation. */
export const everActive = (evals: Evaluation[], name: string, labels: Record<string, string> = {}) =>
  evals.some((e) => e.alerts.some((a) => matches(a, name, labels)));
/** Whether the alert for these labels was firing at any evaluation. */
export const everFiring = (evals: Evaluation[], name: string, labels: Record<string, string> = {}) =>
  evals.some((e) => e.alerts.some((a) => a.state === 'firing' && matches(a, name, labels)));
