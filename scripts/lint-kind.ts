// Static checks of the kind / image / GitOps files that CI can run on a machine without Docker or
// kind (scripts/lint-kind.sh runs this after bash -n and shellcheck). Exits non-zero on a failure.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { MIN_NODE_MAJOR } from '../operator/runtime/node-version.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
type Obj = Record<string, unknown>;

let passed = 0;
const failures: string[] = [];

function check(name: string, fn: () => void): void {
  try {
    fn();
    passed++;
  } catch (err) {
    failures.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(o: unknown, ...path: string[]): unknown {
  let cur: unknown = o;
  for (const key of path) cur = isObj(cur) ? cur[key] : undefined;
  return cur;
}

function loadYaml(rel: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(join(root, rel), 'utf8'));
  const out: Obj[] = [];
  for (const doc of docs) {
    const first = doc.errors[0];
    if (first) throw new Error(`${rel}: ${first.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    assert(isObj(value), `${rel}: a document is not a mapping`);
    out.push(value);
  }
  assert(out.length > 0, `${rel}: no YAML documents`);
  return out;
}

function repoDir(path: string): boolean {
  const abs = join(root, path.replace(/^\.\//, ''));
  return existsSync(abs) && statSync(abs).isDirectory();
}

// --- kind cluster config
const NODE_IMAGE = /^kindest\/node:v1\.(\d+)\.\d+@sha256:[0-9a-f]{64}$/;
check('e2e/kind/config.yaml', () => {
  const docs = loadYaml('e2e/kind/config.yaml');
  assert(docs.length === 1, 'expected one document');
  const [cfg] = docs;
  assert(cfg?.['apiVersion'] === 'kind.x-k8s.io/v1alpha4', `apiVersion ${String(cfg?.['apiVersion'])}`);
  assert(cfg['kind'] === 'Cluster', `kind ${String(cfg['kind'])}`);
  const nodes = cfg['nodes'];
  assert(Array.isArray(nodes), 'nodes is not a list');
  const roles = nodes.map((n) => field(n, 'role'));
  assert(roles.filter((r) => r === 'control-plane').length === 1, `need one control-plane node, roles: ${roles.join(',')}`);
  assert(roles.filter((r) => r === 'worker').length >= 1, 'need at least one worker node');
  assert(roles.every((r) => r === 'control-plane' || r === 'worker'), `unknown role in ${roles.join(',')}`);
  const images = new Set(nodes.map((n) => field(n, 'image')));
  assert(images.size === 1, 'all nodes must run the same node image');
  const [image] = [...images];
  const m = typeof image === 'string' ? NODE_IMAGE.exec(image) : null;
  assert(m, `node image must be kindest/node:vX.Y.Z@sha256:<digest>, got ${String(image)}`);
  assert(Number(m[1]) >= 33, `node image must be Kubernetes v1.33 or newer, got ${String(image)}`);
});

// --- the kind overlay renders, with the locally loaded image and no pulls
check('e2e/kind/overlay', () => {
  let out: string;
  try {
    out = execFileSync('kubectl', ['kustomize', join(root, 'e2e/kind/overlay')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('kubectl is not on PATH');
    throw new Error(`kubectl kustomize failed: ${e.stderr ?? String(err)}`);
  }
  const deployment = parseAllDocuments(out)
    .map((d) => d.toJS() as unknown)
    .find((o) => field(o, 'kind') === 'Deployment' && field(o, 'metadata', 'name') === 'lockstep-operator');
  assert(deployment, 'no lockstep-operator Deployment in the overlay output');
  const containers = field(deployment, 'spec', 'template', 'spec', 'containers');
  assert(Array.isArray(containers), 'Deployment has no containers');
  const script = readFileSync(join(root, 'scripts/e2e-kind.sh'), 'utf8');
  const built = /^image="([^"]+)"$/m.exec(script)?.[1];
  assert(built, 'scripts/e2e-kind.sh does not define image="..."');
  assert(field(containers[0], 'image') === built, `overlay image ${String(field(containers[0], 'image'))} is not the image e2e-kind.sh builds (${built})`);
  assert(field(containers[0], 'imagePullPolicy') === 'Never', 'overlay must set imagePullPolicy: Never for the kind-loaded image');
});

// --- GitOps examples
/** An Application's sources: `spec.source`, or each of `spec.sources`. */
function sources(app: Obj): Obj[] {
  const many = field(app, 'spec', 'sources');
  return Array.isArray(many) ? (many as Obj[]) : [(field(app, 'spec', 'source') ?? {}) as Obj];
}

function sourcePaths(app: Obj): unknown[] {
  return sources(app).map((src) => src['path']);
}

function argoApps(rel: string): Obj[] {
  const apps = loadYaml(rel).filter((o) => o['kind'] === 'Application');
  assert(apps.length > 0, `${rel}: no Argo CD Application`);
  for (const app of apps) {
    assert(app['apiVersion'] === 'argoproj.io/v1alpha1', `${rel}: apiVersion ${String(app['apiVersion'])}`);
    for (const path of sourcePaths(app)) {
      assert(typeof path === 'string' && repoDir(path), `${rel}: source path ${String(path)} is not a folder of this repository`);
    }
    assert(sources(app).every((src) => typeof src['repoURL'] === 'string'), `${rel}: a source without repoURL`);
    assert(typeof field(app, 'spec', 'destination', 'server') === 'string', `${rel}: no destination.server`);
  }
  return apps;
}

const gitopsFiles = readdirSync(join(root, 'examples/gitops'))
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();
check('examples/gitops: every file parses', () => {
  assert(gitopsFiles.length > 0, 'no YAML files in examples/gitops');
  for (const f of gitopsFiles) loadYaml(`examples/gitops/${f}`);
});

check('examples/gitops: Argo CD installs manifests/ server-side', () => {
  // argocd-health.yaml is Argo CD configuration (argocd-cm), not an Application: e2e/gitops.e2e.test.ts runs it.
  const apps = gitopsFiles.filter((f) => f.startsWith('argocd-') && f !== 'argocd-health.yaml').flatMap((f) => argoApps(`examples/gitops/${f}`));
  const install = apps.find((a) => field(a, 'spec', 'source', 'path') === 'manifests');
  assert(install, 'no Application with source.path manifests');
  const opts = field(install, 'spec', 'syncPolicy', 'syncOptions');
  assert(Array.isArray(opts) && opts.includes('ServerSideApply=true'), 'the manifests/ Application needs ServerSideApply=true (large CRDs)');
  assert(
    apps.some((a) => sourcePaths(a).includes('examples/three-tier')),
    'no Application for examples/three-tier',
  );
});

check('examples/gitops: Flux GitRepository + Kustomization for manifests/', () => {
  const objs = gitopsFiles.filter((f) => f.startsWith('flux-')).flatMap((f) => loadYaml(`examples/gitops/${f}`));
  const repo = objs.find((o) => o['kind'] === 'GitRepository');
  const ks = objs.find((o) => o['kind'] === 'Kustomization');
  assert(repo && ks, 'need a GitRepository and a Kustomization');
  assert(repo['apiVersion'] === 'source.toolkit.fluxcd.io/v1', `GitRepository apiVersion ${String(repo['apiVersion'])}`);
  assert(ks['apiVersion'] === 'kustomize.toolkit.fluxcd.io/v1', `Kustomization apiVersion ${String(ks['apiVersion'])}`);
  assert(
    field(ks, 'spec', 'sourceRef', 'kind') === 'GitRepository' &&
      field(ks, 'spec', 'sourceRef', 'name') === field(repo, 'metadata', 'name'),
    'Kustomization.sourceRef does not name the GitRepository',
  );
  const path = field(ks, 'spec', 'path');
  assert(path === './manifests' && repoDir(path), `Kustomization.spec.path must be ./manifests, got ${String(path)}`);
});

// --- Dockerfile: multi-stage, non-root distroless runtime, exec-form entrypoint to the build output
check('Dockerfile', () => {
  const lines = readFileSync(join(root, 'Dockerfile'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const args = new Map<string, string>();
  for (const l of lines) {
    const m = /^ARG\s+(\w+)=(\S+)$/.exec(l);
    if (m?.[1] && m[2]) args.set(m[1], m[2]);
  }
  const expand = (s: string): string => s.replace(/\$\{(\w+)\}/g, (_, k: string) => args.get(k) ?? `\${${k}}`);
  const fromIdx = lines.flatMap((l, i) => (/^FROM\s/i.test(l) ? [i] : []));
  assert(fromIdx.length >= 2, 'expected a multi-stage build (two or more FROM lines)');
  const firstFrom = expand(lines[fromIdx[0] ?? 0] ?? '');
  const node = MIN_NODE_MAJOR; // the supported Node LTS (operator/runtime/node-version.ts)
  assert(new RegExp(`^FROM\\s+node:${node}[\\w.@:-]*\\s+AS\\s+build$`, 'i').test(firstFrom), `first stage must be node:${node} AS build, got: ${firstFrom}`);
  const finalStart = fromIdx[fromIdx.length - 1] ?? 0;
  const finalStage = lines.slice(finalStart);
  const finalFrom = expand(finalStage[0] ?? '');
  assert(new RegExp(`^FROM\\s+gcr\\.io/distroless/nodejs${node}-debian\\d+:nonroot\\b`, 'i').test(finalFrom), `runtime must be distroless nodejs${node} nonroot, got: ${finalFrom}`);
  const user = finalStage.filter((l) => /^USER\s/i.test(l)).pop();
  assert(user && /^USER\s+65532(:65532)?$/.test(user), `final stage must run as USER 65532, got: ${String(user)}`);
  const entry = finalStage.filter((l) => /^ENTRYPOINT\s/i.test(l)).pop();
  assert(entry, 'final stage has no ENTRYPOINT');
  const argv: unknown = JSON.parse(entry.replace(/^ENTRYPOINT\s+/i, ''));
  assert(
    Array.isArray(argv) && argv[0] === '/nodejs/bin/node' && argv.at(-1) === 'dist/operator/main.js'
      && argv.slice(1, -1).every((a) => typeof a === 'string' && a.startsWith('--')),
    `ENTRYPOINT must be the exec form ["/nodejs/bin/node", ...node flags, "dist/operator/main.js"], got ${entry}`,
  );
  assert(finalStage.some((l) => /^COPY\s+--from=build\b.*\bdist\b/.test(l)), 'final stage does not copy dist/ from the build stage');
  assert(finalStage.some((l) => /^COPY\s+--from=build\b.*\bpackage\.json\b/.test(l)), 'final stage must copy package.json ("type": "module")');
  assert(!finalStage.some((l) => /^RUN\s/i.test(l)), 'distroless has no shell: the final stage cannot RUN');
  assert(existsSync(join(root, 'operator/main.ts')), 'ENTRYPOINT runs dist/operator/main.js but operator/main.ts does not exist');
  checkImageLabels(finalStage);
});

// The Dockerfile's OCI labels: the same keys as `make image` (e2e/images/release.sh) writes, the
// build-specific ones from build args, the rest equal to package.json.
function checkImageLabels(finalStage: string[]): void {
  const labelText = finalStage.filter((l) => /^LABEL\s/i.test(l) || /^org\.opencontainers\./.test(l)).join(' ');
  const labels = new Map([...labelText.matchAll(/(org\.opencontainers\.image\.[\w.]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
  const release = readFileSync(join(root, 'e2e/images/release.sh'), 'utf8');
  const releaseKeys = [...new Set([...release.matchAll(/"(org\.opencontainers\.image\.[\w.]+)=/g)].map((m) => m[1]!))].sort();
  assert(releaseKeys.length >= 9, `e2e/images/release.sh names only ${releaseKeys.length} OCI labels`);
  assert(JSON.stringify([...labels.keys()].sort()) === JSON.stringify(releaseKeys), `Dockerfile LABEL keys ${[...labels.keys()].sort().join(', ')} differ from e2e/images/release.sh's ${releaseKeys.join(', ')}`);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { description: string; license: string };
  const want: Record<string, string> = {
    version: '${VERSION}', revision: '${REVISION}', created: '${CREATED}', 'base.name': '${RUNTIME_IMAGE}',
    description: pkg.description, licenses: pkg.license,
  };
  for (const [key, value] of Object.entries(want)) {
    const got = labels.get(`org.opencontainers.image.${key}`);
    assert(got === value, `Dockerfile label org.opencontainers.image.${key} must be ${value}, got ${String(got)}`);
  }
}

check('.dockerignore', () => {
  const entries = readFileSync(join(root, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  assert(entries[0] === '*', '.dockerignore must start with "*" (allow-list), so node_modules, dist and .git stay out');
  for (const needed of ['!package.json', '!package-lock.json', '!tsconfig.json', '!tsconfig.build.json', '!operator/']) {
    assert(entries.includes(needed), `.dockerignore does not allow ${needed.slice(1)}, which the build needs`);
  }
});

for (const f of failures) console.error(`FAIL ${f}`);
console.log(`lint-kind: ${passed} passed, ${failures.length} failed`);
process.exit(failures.length === 0 ? 0 : 1);
