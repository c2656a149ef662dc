#!/usr/bin/env bash
# Stops exactly the processes cluster-up.sh started (by recorded pid) and removes the state.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${CLUSTER_DIR:-$root/e2e/.cluster}
case $dir in /*) ;; *) dir=$root/$dir ;; esac
[ -d "$dir" ] || { echo "[cluster-down] no cluster state in $dir"; exit 0; }
# The node first (it deletes its Node object while the API server is still there). Its records
# of what to undo live in $dir/node: if it cannot finish, keep them for the next attempt.
if ! CLUSTER_DIR=$dir bash "$here/../node/node-down.sh"; then
  echo "[cluster-down] the node was not fully removed; state kept in $dir/node (run make cluster-down again)" >&2
  node_failed=1
fi
# Reverse start order: clients first, etcd last (kms-plugin: ENCRYPTION=lockstep, after its API server).
for name in cert-manager kube-controller-manager kube-apiserver kms-plugin etcd; do
  f=$dir/pids/$name
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    echo "[cluster-down] stopped $name (pid $pid)"
  fi
done
if [ -n "${node_failed:-}" ]; then
  find "$dir" -mindepth 1 -maxdepth 1 ! -name node -exec rm -rf {} +
  exit 1
fi
rm -rf "$dir"
echo "[cluster-down] removed $dir"
