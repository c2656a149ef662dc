#!/usr/bin/env bash
# Prints cert-manager's CRDs (cert-manager.io and acme.cert-manager.io) as one
# multi-document YAML stream, read from the upstream module this directory's
# go.mod pins. The files under deploy/crds are plain YAML, the same schemas the
# Helm chart templates wrap, so nothing needs rendering.
# Two CRDs are ~330 KB, over the client-side apply annotation limit: feed the
# output to `kubectl create -f -` or `kubectl apply --server-side -f -`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../versions.env
. "$here/../versions.env"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod LC_ALL=C  # LC_ALL: stable glob order

module=github.com/cert-manager/cert-manager
pinned=$(cd "$here" && go list -m -f '{{.Version}}' "$module")
if [ "$pinned" != "$CERT_MANAGER_VERSION" ]; then
  echo "crds.sh: go.mod pins $module $pinned but versions.env says $CERT_MANAGER_VERSION" >&2
  exit 1
fi
# Downloads the module if this machine has not yet; prints where it lives.
dir=$(cd "$here" && go mod download -json "$module@$pinned" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$dir" ] || [ ! -d "$dir/deploy/crds" ]; then
  echo "crds.sh: no deploy/crds in $module@$pinned" >&2
  exit 1
fi

shopt -s nullglob
files=("$dir"/deploy/crds/*.yaml)
if [ ${#files[@]} -eq 0 ]; then
  echo "crds.sh: no CRD files in $dir/deploy/crds" >&2
  exit 1
fi
for f in "${files[@]}"; do
  # Helm syntax here would mean upstream changed the layout; refuse rather
  # than emit something kubectl half-understands.
  if grep -q '{{' "$f"; then
    echo "crds.sh: $f contains template syntax" >&2
    exit 1
  fi
  # Each file may or may not open with a document marker; emit exactly one.
  echo '---'
  sed '1{/^---[[:space:]]*$/d}' "$f"
done
