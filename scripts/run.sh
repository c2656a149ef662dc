#!/usr/bin/env bash
# The README's main command (`make run`): runs the operator against the cluster KUBECONFIG
# (or ~/.kube/config) points at; when no cluster is configured, starts the local control plane
# first (building its binaries once, with progress) and runs against it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/node_modules/.bin:$PATH" # the project's Node 24 (README, "Node.js")

if [ -z "${KUBECONFIG:-}" ] && [ ! -f "$HOME/.kube/config" ]; then
  echo "[run] no cluster configured: starting the local control plane and node (make cluster-up)"
  if [ "${NODES:-1}" != 0 ] && [ "$(id -u)" = 0 ]; then bash e2e/node/install-deps.sh; fi
  eval "$(bash e2e/controlplane/cluster-up.sh)"
  echo "[run] cluster is up; stop it later with: make cluster-down"
fi
export KUBECONFIG=${KUBECONFIG:-$HOME/.kube/config}
echo "[run] installing CRDs into $(kubectl config current-context)"
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for condition=Established --timeout 60s -f crds/ >/dev/null
# The operator keeps its rotation claims (Leases) in its own namespace.
kubectl create namespace "${LOCKSTEP_NAMESPACE:-lockstep-system}" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
: "${LOCKSTEP_DEFAULT_ISSUER:=ClusterIssuer/lockstep-ca}"
export LOCKSTEP_DEFAULT_ISSUER
echo "[run] starting the operator (Ctrl-C stops it; the cluster stays up)"
exec npx tsx operator/main.ts
