#!/usr/bin/env bash
# Fails when the committed manifests/, docs/rbac.md or charts/lockstep/templates/{crds,rbac,admission}.yaml differ from what manifests-app renders from
# the current crds/ and manifests-app/ — i.e. someone changed a CRD or the app and forgot
# `npm run manifests`. Also checks that `kubectl apply -k manifests/` would get a valid kustomization.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

node_modules/.bin/tsx manifests-app/main.ts --root "$tmp" >/dev/null

status=0
if ! diff -ru manifests "$tmp/manifests" >"$tmp/manifests.diff"; then
  status=1
fi
if ! diff -u docs/rbac.md "$tmp/docs/rbac.md" >"$tmp/docs.diff"; then
  status=1
fi
# The chart's copy of the monitoring pack (templates/monitoring/ read it with .Files.Get).
if ! diff -ru charts/lockstep/files "$tmp/charts/lockstep/files" >>"$tmp/docs.diff"; then
  status=1
fi
# The chart's generated templates (the rest of charts/lockstep/ is written by hand).
for name in crds rbac admission; do
  if ! diff -u "charts/lockstep/templates/$name.yaml" "$tmp/charts/lockstep/templates/$name.yaml" >>"$tmp/docs.diff"; then
    status=1
  fi
done
if [[ $status -ne 0 ]]; then
  cat "$tmp/manifests.diff" "$tmp/docs.diff" | head -n 80 >&2
  echo >&2
  echo "manifests/, docs/rbac.md or the chart's generated templates are stale: run 'npm run manifests' and commit the result." >&2
  exit 1
fi

if command -v kubectl >/dev/null 2>&1; then
  if ! kubectl kustomize manifests/ >"$tmp/kustomized.yaml" 2>"$tmp/kustomize.err"; then
    cat "$tmp/kustomize.err" >&2
    echo "manifests/ does not build with 'kubectl kustomize'." >&2
    exit 1
  fi
  # The monitoring Component, as a user adds it to an install (kustomize wants relative paths).
  overlay="$(mktemp -d -p "$root" .monitoring-check.XXXXXX)"
  printf 'resources: [../manifests]\ncomponents: [../manifests/monitoring]\n' >"$overlay/kustomization.yaml"
  if ! kubectl kustomize "$overlay" 2>"$tmp/kustomize.err" | grep -q '^kind: PrometheusRule$'; then
    rm -rf "$overlay"
    cat "$tmp/kustomize.err" >&2
    echo "manifests/monitoring does not build as a kustomize Component over manifests/." >&2
    exit 1
  fi
  rm -rf "$overlay"
else
  echo "kubectl not found: skipped the kustomize build of manifests/" >&2
fi

echo "manifests/, docs/rbac.md and the chart's generated templates are up to date"
