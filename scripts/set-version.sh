#!/usr/bin/env bash
# Sets the one version of Lockstep: package.json (and its lock file), the chart's version and
# appVersion, and everything rendered from it (manifests/' image tag). `make version VERSION=x.y.z`.
# manifests-app/version.test.ts fails when any of them disagree.
set -euo pipefail

version=${1:?usage: scripts/set-version.sh X.Y.Z}
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || { echo "set-version: not a semantic version: $version" >&2; exit 2; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

npm version --no-git-tag-version --allow-same-version "$version" >/dev/null
sed -i -E "s/^version: .*/version: $version/; s/^appVersion: .*/appVersion: \"$version\"/" charts/lockstep/Chart.yaml
node_modules/.bin/tsx manifests-app/main.ts >/dev/null
echo "version $version: package.json, package-lock.json, charts/lockstep/Chart.yaml, manifests/"
