#!/usr/bin/env bash
# Kills one process of the local cluster with SIGKILL (a crash: no shutdown, no cleanup), keeps it
# down for DOWN_SECONDS, then starts it again with exactly the command line cluster-up.sh (or
# node-up.sh) gave it, and waits until the API server answers /readyz again. For the fault suite
# (e2e/faults/) and for trying a crash by hand:
#   CLUSTER_DIR=e2e/.cluster DOWN_SECONDS=20 e2e/controlplane/restart.sh kube-apiserver
# Components: etcd, kube-apiserver, kube-controller-manager, cert-manager, kms-plugin (with
# ENCRYPTION=lockstep), and kubelet (the node's, when cluster-up.sh started one). Prints one line: `<killed-at-ms> <started-at-ms> <ready-at-ms>`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${CLUSTER_DIR:-$root/e2e/.cluster}
case $dir in /*) ;; *) dir=$root/$dir ;; esac
name=${1:?usage: restart.sh etcd|kube-apiserver|kube-controller-manager|cert-manager|kms-plugin|kubelet}
down=${DOWN_SECONDS:-0}
case $name in
  etcd|kube-apiserver|kube-controller-manager|cert-manager|kms-plugin) state=$dir ;;
  kubelet) state=$dir/node ;;
  *) echo "[restart] unknown component $name" >&2; exit 2 ;;
esac
log() { printf '[restart] %s\n' "$*" >&2; }
# shellcheck source=processes.sh
. "$here/processes.sh"
now_ms() { date +%s%3N; }

pid=$(cat "$state/pids/$name" 2>/dev/null || true)
if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then log "$name is not running (no live pid in $state/pids/$name)"; exit 1; fi
# The recorded command line; a cluster started before processes.sh recorded it: read it from /proc.
if [ ! -s "$state/argv/$name" ]; then
  mkdir -p "$state/argv"
  cp "/proc/$pid/cmdline" "$state/argv/$name"
fi
mapfile -d '' argv < "$state/argv/$name"

kill -KILL "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
killed=$(now_ms)
log "killed $name (pid $pid) with SIGKILL; down for ${down}s"
sleep "$down"
start "$name" "${argv[@]}"
started=$(now_ms)
kc() { kubectl --kubeconfig "$dir/kubeconfig" "$@"; }
# What the rest of the cluster needs of it: the API server (and etcd behind it) serving again;
# the controllers only need to be running (they list and watch as soon as they can).
wait_for "the API server ready after $name restarted" 120 kc get --raw /readyz
sleep 0.2
kill -0 "$(cat "$state/pids/$name")" 2>/dev/null || { log "$name exited right after its restart:"; tail -n 20 "$state/logs/$name.log" >&2; exit 1; }
echo "$killed $started $(now_ms)"
