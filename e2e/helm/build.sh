#!/usr/bin/env bash
# Builds (or reuses) e2e/helm — Helm's template/lint/install/uninstall from its Go packages — and
# prints the binary's path. Cached outside the clone under a hash of its sources and the Go version,
# so an unchanged tool is not rebuilt (a cold build, empty Go caches: see docs/install.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${LOCKSTEP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lockstep}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

hash=$(
  cd "$here"
  for f in go.mod go.sum build.sh *.go; do printf '%s\n' "$f"; sha256sum <"$f"; done
  go version
) 
hash=$(sha256sum <<<"$hash" | cut -c1-16)
bin="$cache/helm/helm-$hash"
if [[ ! -x "$bin" ]]; then
  mkdir -p "$cache/helm"
  (cd "$here" && go build -trimpath -ldflags=-s -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
fi
echo "$bin"
