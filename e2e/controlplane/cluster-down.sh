#!/usr/bin/env bash
# Stops exactly the processes cluster-up.sh started (by recorded pid) and removes the state.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${CLUSTER_DIR:-$root/e2e/.cluster}
case $dir in /*) ;; *) dir=$root/$dir ;; esac
[ -d "$dir" ] || { echo "[cluster-down] no cluster state in $dir"; exit 0; }
# The node first (it deletes its Node object while the API server is still there).
CLUSTER_DIR=$dir "$here/../node/node-down.sh"
# Reverse start order: clients first, etcd last.
for name in cert-manager kube-controller-manager kube-apiserver etcd; do
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
rm -rf "$dir"
echo "[cluster-down] removed $dir"
