#!/usr/bin/env bash
# Builds the local control plane's binaries from Go modules into a cache outside the clone,
# keyed by component and version, so every clone on this machine reuses them.
# Usage: build.sh [component...]   (default: the control plane; prints the bin directory of each)
# Components: etcd kube-apiserver kube-controller-manager cert-manager (control plane),
#             kube-scheduler kubelet kube-network-policies (the node, e2e/node/),
#             etcdctl (the KMS e2e reads etcd with it; same etcd version, cached beside etcd)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${LOCKSTEP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lockstep}
# The modules need Go 1.26. A machine with an older go (Debian's golang-go) fetches the pinned
# toolchain through the Go module proxy; otherwise the local one is used as is.
GO_TOOLCHAIN=${GO_TOOLCHAIN:-go1.26.8}
have=$(go env GOVERSION 2>/dev/null || echo go0)
if [ "$(printf '%s\n%s\n' "${have#go}" "${GO_TOOLCHAIN#go}" | sort -V | head -n1)" = "${GO_TOOLCHAIN#go}" ]; then
  export GOTOOLCHAIN=local
else
  export GOTOOLCHAIN=$GO_TOOLCHAIN
fi
export CGO_ENABLED=0 GOFLAGS=-mod=mod

log() { printf '[build] %s\n' "$*" >&2; }

# build <component> <version> <module dir> <output name> <package> [ldflags]
build() {
  local component=$1 version=$2 dir=$3 out=$4 pkg=$5 ldflags=${6:-}
  local dest="$cache/$component-$version"
  if [ -x "$dest/$out" ]; then return 0; fi
  mkdir -p "$dest"
  log "building $out $version (first build on this machine takes several minutes)"
  local start=$SECONDS
  # go build is silent for minutes on a cold cache: show it is alive.
  (while sleep "${LOCKSTEP_BUILD_TICK:-30}"; do log "still building $out ($((SECONDS - start))s)"; done) &
  local ticker=$!
  local rc=0
  (cd "$here/$dir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$dest/$out.tmp" "$pkg") || rc=$?
  # A killed job's wait returns 143: under set -e that alone would end the script here.
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  [ $rc -eq 0 ] || { log "building $out failed (exit $rc)"; return $rc; }
  mv "$dest/$out.tmp" "$dest/$out"
  log "built $out in $((SECONDS - start))s"
}

# The NetworkPolicy enforcer is built from a private, patched copy of its module source (see
# e2e/node/enforcer/): the cache key includes a hash of the patch, so changing it rebuilds.
enforcer_key() { cat "$here/../node/enforcer/patch.py" "$here/../node/enforcer/nfqueue_target.go" | sha256sum | cut -c1-12; }
build_enforcer() {
  local version=$KUBE_NETWORK_POLICIES_VERSION
  local dest; dest="$cache/kube-network-policies-$version-$(enforcer_key)"
  [ -x "$dest/kube-network-policies" ] && return 0
  log "fetching sigs.k8s.io/kube-network-policies $version"
  local src
  src=$(cd "$here/../node/enforcer" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kube-network-policies@$version" \
    | awk -F'"' '$2 == "Dir" {print $4}')
  [ -d "$src" ] || { log "module download failed"; return 1; }
  local work; work=$(mktemp -d)
  cp -r "$src/." "$work/"; chmod -R u+w "$work"
  python3 "$here/../node/enforcer/patch.py" "$work" >&2
  cp "$here/../node/enforcer/nfqueue_target.go" "$work/pkg/networkpolicy/"
  mkdir -p "$dest"
  log "building kube-network-policies $version (patched)"
  local start=$SECONDS rc=0
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$dest/kube-network-policies.tmp" ./cmd) || rc=$?
  rm -rf "$work"
  [ $rc -eq 0 ] || { log "building kube-network-policies failed (exit $rc)"; return $rc; }
  mv "$dest/kube-network-policies.tmp" "$dest/kube-network-policies"
  log "built kube-network-policies in $((SECONDS - start))s"
}

kube_ldflags() {
  local v=${KUBE_VERSION#v} major minor
  major=${v%%.*}; minor=${v#*.}; minor=${minor%%.*}
  local x=k8s.io/component-base/version
  echo "-X $x.gitVersion=$KUBE_VERSION -X $x.gitMajor=$major -X $x.gitMinor=$minor -X $x.gitTreeState=clean"
}

component() {
  case $1 in
    etcd) build etcd "$ETCD_VERSION" etcd etcd go.etcd.io/etcd/server/v3 \
            "-X go.etcd.io/etcd/api/v3/version.GitSHA=lockstep" ;;
    etcdctl) build etcd "$ETCD_VERSION" etcdctl etcdctl go.etcd.io/etcd/etcdctl/v3 ;;
    kube-apiserver) build kube "$KUBE_VERSION" kube kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$(kube_ldflags)" ;;
    kube-controller-manager) build kube "$KUBE_VERSION" kube kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$(kube_ldflags)" ;;
    kube-scheduler) build kube "$KUBE_VERSION" kube kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$(kube_ldflags)" ;;
    kubelet) build kube "$KUBE_VERSION" kube kubelet k8s.io/kubernetes/cmd/kubelet "$(kube_ldflags)" ;;
    cert-manager) build cert-manager "$CERT_MANAGER_VERSION" certmanager cert-manager-controller . ;;
    kube-network-policies) build_enforcer ;;
    *) echo "unknown component: $1" >&2; exit 2 ;;
  esac
}

bindir() {
  case $1 in
    etcd|etcdctl) echo "$cache/etcd-$ETCD_VERSION" ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubelet) echo "$cache/kube-$KUBE_VERSION" ;;
    cert-manager) echo "$cache/cert-manager-$CERT_MANAGER_VERSION" ;;
    kube-network-policies) echo "$cache/kube-network-policies-$KUBE_NETWORK_POLICIES_VERSION-$(enforcer_key)" ;;
  esac
}

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(etcd kube-apiserver kube-controller-manager cert-manager)
for c in "${components[@]}"; do component "$c"; done
for c in "${components[@]}"; do echo "$c=$(bindir "$c")"; done
