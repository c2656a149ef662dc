#!/usr/bin/env bash
# The project's whole test run (`make test`, `npm test`, and what CI runs):
#   type-check, unit tests, manifest drift, kind-path lint, e2e on a real control plane.
# With KUBECONFIG unset, a local control plane is started for the e2e suite and always stopped
# afterwards; with KUBECONFIG set, the e2e suite runs against that cluster.
# Ends with one plain line: "N passed, N failed" (jest tests plus the gates, one each).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
export PATH="$root/node_modules/.bin:$PATH" # the project's Node 24 (README, "Node.js"), also when run directly
echo "==> node $(node --version) ($(command -v node))"
out=$(mktemp -d)
passed=0 failed=0
failures=()

gate() { # gate <name> <command...>: a check that counts as one test
  local name=$1; shift
  echo "==> $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
}
jest_run() { # jest_run <name> <json file> <npm script> [args]: counts each jest test
  local name=$1 json=$2; shift 2
  echo "==> $name"
  npm run --silent "$@" -- --json --outputFile="$json"
  local rc=$?
  if [ -s "$json" ]; then
    read -r p f < <(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(r.numPassedTests, r.numFailedTests + r.numRuntimeErrorTestSuites)' "$json")
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" -eq 0 ] && [ $rc -ne 0 ] && { failed=$((failed + 1)); failures+=("$name (exit $rc)"); }
    [ "$f" -gt 0 ] && failures+=("$name")
  else
    failed=$((failed + 1)); failures+=("$name (no results)")
  fi
}

gate "type-check (tsc --noEmit)" npx tsc --noEmit
jest_run "unit tests" "$out/unit.json" test:unit
gate "manifests are up to date" bash scripts/check-manifests.sh
gate "imports are up to date" bash scripts/gen-imports.sh --check
gate "kind path lint" bash scripts/lint-kind.sh
gate "control-plane build, cold path (stand-in go)" bash e2e/controlplane/build.test.sh
gate "e2e images (go vet/test, image refs)" bash scripts/test-images.sh

started_cluster=
if [ -z "${KUBECONFIG:-}" ] && [ "${SKIP_E2E:-}" != 1 ]; then
  echo "==> local control plane and node (make cluster-up)"
  bash e2e/node/host-state.sh > "$out/host-before"
  started_cluster=1 # cluster-down also clears what a failed cluster-up left
  if up=$(bash e2e/controlplane/cluster-up.sh); then
    eval "$up"
  else
    failed=$((failed + 1)); failures+=("cluster-up")
  fi
fi
stop_cluster() { [ -n "$started_cluster" ] && bash e2e/controlplane/cluster-down.sh >/dev/null; started_cluster=; }
trap stop_cluster EXIT

if [ -n "${KUBECONFIG:-}" ] && [ "${SKIP_E2E:-}" != 1 ]; then
  jest_run "e2e tests (KUBECONFIG=$KUBECONFIG)" "$out/e2e.json" test:e2e
fi
if [ -n "$started_cluster" ]; then
  stop_cluster
  host_restored() { # cluster-down removed every link, mount, rule, route and process it made
    bash e2e/node/host-state.sh > "$out/host-after"
    diff -u "$out/host-before" "$out/host-after"
  }
  gate "cluster-down leaves the host as it was (links, mounts, rules, routes, sysctls)" host_restored
fi

rm -rf "$out"
if [ ${#failures[@]} -gt 0 ]; then printf 'failed: %s\n' "${failures[@]}"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
