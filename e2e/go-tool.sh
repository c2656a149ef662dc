#!/usr/bin/env bash
# Builds (or reuses) one of the e2e Go tools — a small module under e2e/ (e2e/helm, e2e/promrules) —
# and prints the binary's path. Cached outside the clone under a hash of the module's sources and
# the Go version, so an unchanged tool is not rebuilt: CI keeps ~/.cache/lockstep between runs, a
# fresh machine builds once. Suites that build the same tool at once each link to their own
# temporary file and rename it into place.
#   e2e/go-tool.sh e2e/promrules
set -euo pipefail

dir=$(cd "${1:?usage: go-tool.sh DIR}" && pwd)
name=$(basename "$dir")
cache=${LOCKSTEP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lockstep}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

hash=$(
  cd "$dir"
  for f in go.mod go.sum *.go; do printf '%s\n' "$f"; sha256sum <"$f"; done
  go version
)
hash=$(sha256sum <<<"$hash" | cut -c1-16)
bin="$cache/$name/$name-$hash"
if [[ ! -x "$bin" ]]; then
  mkdir -p "$cache/$name"
  (cd "$dir" && go build -ldflags=-s -o "$bin.tmp.$$" .)
  mv -f "$bin.tmp.$$" "$bin"
fi
echo "$bin"
