// The CRDs of the GitOps tools our examples are written for (Argo CD's Application, Flux's
// Kustomization and GitRepository), taken from the tools' own Go modules through the module proxy
// (no release download site is reachable here), so the API server validates the examples against
// the real schemas. Only the CRDs: no Argo CD or Flux controller runs.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './cluster.js';

/** The newest versions whose go.mod the machine's Go (1.26) accepts. */
const MODULES = {
  argocd: { module: 'github.com/argoproj/argo-cd/v3', version: 'v3.5.7', crds: ['manifests/crds/application-crd.yaml'] },
  kustomize: { module: 'github.com/fluxcd/kustomize-controller', version: 'v1.9.6', crds: ['config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml'] },
  source: { module: 'github.com/fluxcd/source-controller', version: 'v1.9.6', crds: ['config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml'] },
};

/** Downloads the modules (cached in the Go module cache) and returns the CRD files they hold. */
export function gitOpsCrdFiles(): string[] {
  const scratch = mkdtempSync(join(tmpdir(), 'lockstep-gitops-crds-'));
  try {
    const wanted = Object.values(MODULES);
    const out = execFileSync('go', ['mod', 'download', '-json', ...wanted.map((m) => `${m.module}@${m.version}`)], {
      cwd: scratch, encoding: 'utf8', env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod' }, maxBuffer: 16 << 20,
    });
    // `go mod download -json` prints one JSON object per module, concatenated.
    const dirs = new Map<string, string>();
    for (const chunk of out.split(/\n}\n?/).filter((s) => s.trim())) {
      const info = JSON.parse(`${chunk}\n}`) as { Path: string; Dir?: string; Error?: string };
      if (info.Error || !info.Dir) throw new Error(`go mod download ${info.Path}: ${info.Error ?? 'no directory'}`);
      dirs.set(info.Path, info.Dir);
    }
    return wanted.flatMap((m) => m.crds.map((file) => join(dirs.get(m.module) ?? '', file)));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Installs the GitOps tools' CRDs (server-side: Argo CD's Application CRD is too large for client-side apply). */
export async function installGitOpsCrds(): Promise<void> {
  const files = gitOpsCrdFiles().flatMap((f) => ['-f', f]);
  const kubectl = (...args: string[]) => execFileSync('kubectl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  kubectl('apply', '--server-side', '--force-conflicts', '--field-manager=lockstep-e2e', ...files);
  // `kubectl wait` fails outright on a CRD whose status has no conditions yet (just created).
  await eventually('the GitOps CRDs Established', async () => {
    try {
      kubectl('wait', '--for', 'condition=Established', '--timeout', '5s', ...files);
      return true;
    } catch {
      return undefined;
    }
  }, 60_000, 500);
}
