// Images for the local node, built without Docker (e2e/images/build.sh) and imported into the
// node's containerd, so pods run them with imagePullPolicy: Never.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { repoRoot } from './manifests.js';

/** Builds (or reuses) an image of e2e/images/ and imports it into the local node's runtime. */
export function loadImage(name: 'operator' | 'tlsapp' | 'pause'): string {
  const out = execFileSync('bash', ['e2e/images/build.sh', name], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const line = out.trim().split('\n').find((l) => l.includes('='));
  if (!line) throw new Error(`e2e/images/build.sh ${name} printed no image: ${out}`);
  const [ref, tarball] = line.split('=') as [string, string];
  const kubeconfig = process.env.KUBECONFIG;
  if (!kubeconfig) throw new Error('KUBECONFIG is not set');
  const socket = join(dirname(kubeconfig), 'node', 'run', 'containerd.sock');
  execFileSync('ctr', ['--address', socket, '-n', 'k8s.io', 'images', 'import', tarball], { stdio: ['ignore', 'pipe', 'pipe'] });
  return ref;
}
