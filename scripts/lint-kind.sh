#!/usr/bin/env bash
# What CI can check of the kind path, the image and the GitOps examples without Docker or kind:
# shell syntax (bash -n) and shellcheck of the scripts, then scripts/lint-kind.ts (YAML parse of
# e2e/kind and examples/gitops, the kind config's fields, the overlay's image, the Dockerfile's
# stages / USER / ENTRYPOINT, .dockerignore).
# Uses shellcheck when it is installed (Debian: apt-get install -y shellcheck); with
# LINT_REQUIRE_SHELLCHECK=1 a missing shellcheck fails the lint instead of being skipped.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts=(scripts/e2e-kind.sh scripts/lint-kind.sh scripts/gen-imports.sh scripts/check-manifests.sh
  scripts/test.sh scripts/run.sh e2e/controlplane/*.sh e2e/node/*.sh e2e/go-tool.sh e2e/helm/build.sh)
status=0

for s in "${scripts[@]}"; do
  if ! bash -n "$s"; then
    echo "FAIL bash -n $s" >&2
    status=1
  fi
done

if command -v shellcheck >/dev/null 2>&1; then
  # -x follows `source`d files (versions.env) relative to each script.
  if ! shellcheck -x -P SCRIPTDIR "${scripts[@]}"; then
    echo "FAIL shellcheck" >&2
    status=1
  fi
elif [[ "${LINT_REQUIRE_SHELLCHECK:-}" == 1 ]]; then
  echo "FAIL shellcheck is not installed (apt-get install -y shellcheck)" >&2
  status=1
else
  echo "shellcheck is not installed: skipped (apt-get install -y shellcheck)" >&2
fi

if ! node_modules/.bin/tsx scripts/lint-kind.ts; then
  status=1
fi
exit "$status"
