// The install manifests (what `kubectl apply -k manifests/` sends) are accepted by the API
// server: rendered with kustomize, applied server-side as a dry run.
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';
import { clients } from './harness/cluster.js';
import { repoRoot } from './harness/manifests.js';

const c = clients();
const kubectl = (...args: string[]): string =>
  execFileSync('kubectl', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('manifests/', () => {
  const rendered = parseAllDocuments(kubectl('kustomize', 'manifests/'))
    .map((d) => d.toJS() as KubernetesObject)
    .filter(Boolean);

  it('renders the objects an installation needs', () => {
    const kinds = new Set(rendered.map((o) => o.kind));
    for (const kind of ['CustomResourceDefinition', 'Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Deployment', 'Service']) {
      expect(kinds).toContain(kind);
    }
  });

  it('is accepted by the API server (server-side apply, dry run)', async () => {
    // Namespaced objects need their namespace to exist even in a dry run.
    const ns = rendered.find((o) => o.kind === 'Namespace')?.metadata?.name ?? 'lockstep-system';
    const existed = await c.core.readNamespace({ name: ns }).then(() => true, () => false);
    if (!existed) await c.core.createNamespace({ body: { metadata: { name: ns } } });
    try {
      // --force-conflicts: on the shared e2e cluster other suites (the Helm install, restored
      // objects) own some of these fields; what this checks is that the API server accepts them,
      // and a dry run changes nothing.
      const out = kubectl('apply', '-k', 'manifests/', '--server-side', '--dry-run=server', '--force-conflicts', '--field-manager=lockstep-e2e');
      const applied = out.trim().split('\n');
      expect(applied).toHaveLength(rendered.length);
      for (const line of applied) expect(line).toMatch(/(serverside-applied|unchanged|configured) \(server dry run\)$/);
    } finally {
      if (!existed) await c.core.deleteNamespace({ name: ns });
    }
  });
});
