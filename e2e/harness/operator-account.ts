// The operator as manifests/ installs it: its ServiceAccount, RBAC and admission policies, and a
// KubeConfig that authenticates with that account's token instead of the admin certificate.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { repoRoot } from './manifests.js';

export const OPERATOR_NAMESPACE = 'lockstep-system';
export const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NAMESPACE}:lockstep-operator`;

const kubectl = (...args: string[]): string =>
  execFileSync('kubectl', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Applies namespace, ServiceAccount, ClusterRole(Binding), Role(Binding) and admission policies. */
export function installOperatorAccount(): void {
  kubectl('apply', '--server-side', '--force-conflicts', '--field-manager=lockstep-e2e',
    '-f', 'manifests/namespace.yaml', '-f', 'manifests/rbac.yaml', '-f', 'manifests/admission.yaml');
  admissionPoliciesConfigured();
}

/**
 * Waits until the API server can evaluate the admission policies whose parameters are KeyPolicies.
 * Right after the CRDs are (re)installed it answers every Secret write with "failed to configure
 * binding: paramKind ... not known" (failurePolicy Fail: denied) until it has the kind: a server
 * dry-run write tells when that is over.
 */
function admissionPoliciesConfigured(): void {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      kubectl('create', 'secret', 'generic', 'lockstep-e2e-admission-probe', '-n', 'default', '--from-literal=probe=1', '--dry-run=server');
      return;
    } catch (err) {
      const message = String((err as { stderr?: unknown }).stderr ?? err);
      if (!message.includes('failed to configure binding') || Date.now() > deadline) return;
      execFileSync('sleep', ['0.5']);
    }
  }
}

/**
 * A KubeConfig for `base`'s cluster that authenticates as the operator's ServiceAccount (or as
 * `account`, a ServiceAccount a test granted other permissions).
 */
export function operatorAccountConfig(base: k8s.KubeConfig, account = { namespace: OPERATOR_NAMESPACE, name: 'lockstep-operator' }): k8s.KubeConfig {
  const token = kubectl('create', 'token', account.name, '-n', account.namespace, '--duration=1h').trim();
  const cluster = base.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster');
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: account.name, token }],
    contexts: [{ name: 'sa', cluster: cluster.name, user: account.name }],
    currentContext: 'sa',
  });
  return kc;
}

/**
 * Writes `operatorAccountConfig(base)` as a kubeconfig file (owner-only) for an operator child
 * process. The file holds a token: keep it in a private temporary directory and delete it after.
 */
export function writeOperatorKubeconfig(base: k8s.KubeConfig, path: string): void {
  writeFileSync(path, operatorAccountConfig(base).exportConfig(), { mode: 0o600 });
}
