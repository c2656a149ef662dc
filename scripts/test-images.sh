#!/usr/bin/env bash
# Cheap regression gate for the e2e images (no cluster, no containerd, no root needed):
# vets and unit-tests the Go module in e2e/images (including the release path: two platforms
# joined into one OCI index with labels, same inputs → same index digest), then builds the pause
# and tlsapp images and checks each tarball's manifest names the ref `ctr images import` will tag
# it with. `make image` itself (both platforms, ~5 min cold) is checked by verify.sh --release.
# The operator image and a real containerd run are e2e/images/verify.sh's job (root, ~1.5 min).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export GOTOOLCHAIN=local CGO_ENABLED=0

echo "==> go vet + go test (e2e/images)"
(cd "$root/e2e/images" && go vet ./... && go test ./...)

if command -v shellcheck >/dev/null; then
  echo "==> shellcheck"
  shellcheck -x "$root/e2e/images/build.sh" "$root/e2e/images/lib.sh" "$root/e2e/images/release.sh" \
    "$root/e2e/images/verify.sh" "$root/scripts/test-images.sh"
fi

echo "==> build.sh pause tlsapp"
lines=$("$root/e2e/images/build.sh" pause tlsapp)
echo "$lines"
want=(lockstep.local/pause:dev lockstep.local/tlsapp:dev)
[ "$(wc -l <<<"$lines")" -eq ${#want[@]} ] || {
  echo "expected ${#want[@]} image lines" >&2
  exit 1
}
for ref in "${want[@]}"; do
  tarball=$(sed -n "s|^$ref=||p" <<<"$lines")
  [ -s "$tarball" ] || {
    echo "$ref: no tarball" >&2
    exit 1
  }
  # manifest.json (docker-archive) is what containerd 1.6 reads the image name from.
  tags=$(tar -xOf "$tarball" manifest.json | node -e '
    const m = JSON.parse(require("fs").readFileSync(0, "utf8"));
    console.log(m.length === 1 ? m[0].RepoTags.join(" ") : "")')
  if [ "$tags" != "$ref" ]; then
    echo "$tarball: manifest.json tags '$tags', want '$ref'" >&2
    exit 1
  fi
  echo "ok $ref $(du -h "$tarball" | cut -f1)"
done
