#!/usr/bin/env bash
# `make e2e-kind`: the e2e suite against a kind cluster running the real operator image.
#   1. create the kind cluster (e2e/kind/config.yaml), or reuse it when KEEP_CLUSTER=1
#   2. install cert-manager (CERT_MANAGER_VERSION from e2e/controlplane/versions.env) and the
#      default issuer chain (e2e/controlplane/issuers.yaml: SelfSigned -> CA -> lockstep-ca)
#   3. build the operator image, load it into the nodes, install manifests/ through
#      e2e/kind/overlay (same manifests, local image)
#   4. scale the in-cluster operator to 0 and run `npm run test:e2e` with KUBECONFIG pointing at
#      the cluster (the suite starts its own operator instances, as on the local control plane)
# The cluster is deleted on exit unless KEEP_CLUSTER=1.
#
# Needs: docker (running), kind >= v0.33.0 (the node image digest is one built for that release),
# kubectl, and network access to the image registries and to cert-manager's GitHub release.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# shellcheck source=../e2e/controlplane/versions.env
. e2e/controlplane/versions.env
: "${CERT_MANAGER_VERSION:?CERT_MANAGER_VERSION missing from e2e/controlplane/versions.env}"

cluster="${KIND_CLUSTER_NAME:-lockstep-e2e}"
# Must match e2e/kind/overlay/kustomization.yaml (images: newName/newTag).
image="lockstep-operator:e2e"
kind_min_version="0.33.0"
state_dir="$root/e2e/.cluster-kind"
kubeconfig="$state_dir/kubeconfig"
cert_manager_url="https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"

log() { printf '[e2e-kind] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
kc() { kubectl --kubeconfig "$kubeconfig" "$@"; }

for tool in docker kind kubectl npm; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH"
done
docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable (docker info failed)"
kind_version="$(kind version | sed -n 's/^kind v\([0-9][0-9.]*\).*/\1/p')"
if [[ -z "$kind_version" ]] || [[ "$(printf '%s\n%s\n' "$kind_min_version" "$kind_version" | sort -V | head -n1)" != "$kind_min_version" ]]; then
  die "kind >= v$kind_min_version is required (found: $(kind version)); e2e/kind/config.yaml pins its node image"
fi

diagnose() {
  log "diagnostics:"
  kc get nodes -o wide >&2 || true
  kc -n cert-manager get pods -o wide >&2 || true
  kc get clusterissuers,certificates -A >&2 || true
  kc -n lockstep-system get deploy,pods -o wide >&2 || true
  kc -n lockstep-system logs deploy/lockstep-operator --all-containers --tail=100 >&2 || true
}

cleanup() {
  local status=$?
  if [[ $status -ne 0 ]] && [[ -f "$kubeconfig" ]]; then diagnose; fi
  if [[ "${KEEP_CLUSTER:-}" == 1 ]]; then
    log "KEEP_CLUSTER=1: cluster '$cluster' kept; export KUBECONFIG=$kubeconfig"
  else
    log "deleting cluster '$cluster'"
    kind delete cluster --name "$cluster" --kubeconfig "$kubeconfig" >/dev/null 2>&1 || true
    rm -rf "$state_dir"
  fi
  exit "$status"
}
trap cleanup EXIT

# Retries a command until it succeeds or `attempts` run out (webhooks take a moment to serve).
retry() {
  local attempts=$1 delay=$2
  shift 2
  local i
  for ((i = 1; i <= attempts; i++)); do
    if "$@"; then return 0; fi
    log "attempt $i/$attempts failed: $*"
    sleep "$delay"
  done
  return 1
}

mkdir -p "$state_dir"
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  [[ "${KEEP_CLUSTER:-}" == 1 ]] || die "cluster '$cluster' already exists: delete it (kind delete cluster --name $cluster) or set KEEP_CLUSTER=1 to reuse it"
  log "reusing cluster '$cluster'"
  kind export kubeconfig --name "$cluster" --kubeconfig "$kubeconfig"
else
  log "creating cluster '$cluster'"
  # A kubeconfig of its own: the user's ~/.kube/config and current context stay untouched.
  kind create cluster --name "$cluster" --config e2e/kind/config.yaml --kubeconfig "$kubeconfig" --wait 180s
fi

log "installing cert-manager $CERT_MANAGER_VERSION"
# Server-side: two of cert-manager's CRDs exceed the client-side last-applied annotation limit.
retry 3 10 kc apply --server-side --force-conflicts -f "$cert_manager_url" >/dev/null
kc -n cert-manager wait --for=condition=Available deployment --all --timeout=300s
kc -n cert-manager rollout status deployment/cert-manager-webhook --timeout=120s

log "creating the default issuer chain (ClusterIssuer lockstep-ca)"
# The webhook Deployment is Available before its serving certificate reaches the API server's
# caBundle (cainjector); until then creating cert-manager resources is rejected.
retry 30 5 kc apply --server-side -f e2e/controlplane/issuers.yaml >/dev/null
kc -n cert-manager wait --for=condition=Ready certificate/lockstep-root-ca --timeout=120s
kc wait --for=condition=Ready clusterissuer/lockstep-ca --timeout=120s

log "turning cert-manager's built-in approver off (Lockstep's approver decides, as on the local control plane)"
# After the root CA above was approved by it: from here on a request claiming a Lockstep identity
# is approved only when it matches a declared EncryptedService.
kc -n cert-manager patch deployment cert-manager --type json \
  -p '[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--controllers=*,-certificaterequests-approver"}]' >/dev/null
kc -n cert-manager rollout status deployment/cert-manager --timeout=120s

log "building $image"
docker build --tag "$image" .
kind load docker-image "$image" --name "$cluster"

log "installing the operator (manifests/ with the local image)"
kc apply --server-side -k e2e/kind/overlay
kc wait --for=condition=Established crd/encryptedservices.lockstep.dev crd/keypolicies.lockstep.dev \
  crd/rotationschedules.lockstep.dev --timeout=60s
kc -n lockstep-system rollout status deployment/lockstep-operator --timeout=300s

# The image, the manifests, RBAC, probes and leader election are proven by the rollout above.
# The suite then runs its own operator instances (in-process and child processes, as on the
# local control plane) so it can restart, kill and inspect them, and so TLS verification can
# reach the test workloads, which run as local processes: the in-cluster replicas step aside.
log "scaling the in-cluster operator to 0 for the suite"
kc -n lockstep-system scale deployment/lockstep-operator --replicas=0
kc -n lockstep-system wait --for=delete pod -l app.kubernetes.io/name=lockstep-operator --timeout=120s || true

log "running the e2e suite"
KUBECONFIG="$kubeconfig" npm run test:e2e
