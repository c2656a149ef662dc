#!/usr/bin/env bash
# Removes the local node node-up.sh made, and only that: its processes (kubelet, scheduler,
# enforcer, API proxy, containerd and every container it ran), mounts under the node directory
# and the pods' network namespaces, the bridge and the pods' veths, the guards (FORWARD rule,
# blackhole route), the kubelet's iptables chains, the enforcer's nftables table, kubepods
# cgroups, and the sysctls it changed. Safe to run twice, and after a failed node-up.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${CLUSTER_DIR:-$root/e2e/.cluster}
case $dir in /*) ;; *) dir=$root/$dir ;; esac
node_dir=$dir/node
# shellcheck source=node.env
. "$here/node.env"
[ -d "$node_dir" ] || exit 0
log() { printf '[node-down] %s\n' "$*" >&2; }
created() { grep -qx "$1" "$node_dir/created" 2>/dev/null; }

stop() { # stop <name> [signal]: by recorded pid, then KILL after 10 s
  local f=$node_dir/pids/$1 sig=${2:-TERM} pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$sig" "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    log "stopped $1 (pid $pid)"
  fi
  rm -f "$f"
}

# The enforcer fails closed: stop it with SIGINT, which makes it delete its own table.
stop kube-network-policies INT
stop kube-scheduler
stop kubelet
stop apiserver-proxy

# Containers outlive containerd (their shims are separate processes): kill what runs in the
# kubelet's cgroups, then the shims of this containerd, then containerd itself.
for procs in /sys/fs/cgroup/*/kubepods/cgroup.procs; do
  [ -f "$procs" ] || continue
  # shellcheck disable=SC2038 # cgroup.procs holds pids, one a line
  find "$(dirname "$procs")" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  break
done
sock=$node_dir/run/containerd.sock
for p in /proc/[0-9]*; do
  tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -q -- "containerd-shim.*$sock" && kill -KILL "${p#/proc/}" 2>/dev/null
done
stop containerd

# Mounts: everything under the node directory (the kubelet bind-mounts its own root; overlay
# snapshots, shm, volumes), and the network namespaces the runtime pinned for pods.
findmnt -rn -o TARGET | grep -F "$node_dir" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
if [ -f "$node_dir/netns.before" ]; then
  for ns in /var/run/netns/cni-*; do
    [ -e "$ns" ] || continue
    grep -qx "$(basename "$ns")" "$node_dir/netns.before" && continue
    umount -l "$ns" 2>/dev/null; rm -f "$ns"
  done
fi

# Network: veths left on the bridge (their pods are gone), the bridge, guards, sysctls.
if ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && created "link $NODE_BRIDGE"; then
  for port in $(ip -o link show master "$NODE_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$port" 2>/dev/null
  done
  ip link del "$NODE_BRIDGE" && log "removed bridge $NODE_BRIDGE"
fi
created "route blackhole $SERVICE_CIDR" && ip route del blackhole "$SERVICE_CIDR" 2>/dev/null
if created forward-guard; then
  while iptables -w -D FORWARD -i "$NODE_BRIDGE" ! -d "$POD_CIDR" -m comment --comment "$GUARD_COMMENT" -j DROP 2>/dev/null; do :; done
fi
# The kubelet's chains (KUBE-FIREWALL, canary and hint chains in mangle, nat and filter, v4 and
# v6): first the rules that jump to them, then the chains.
for ipt in iptables ip6tables; do
  for table in mangle nat filter; do
    for chain in $("$ipt" -w -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
      grep -qx "$ipt $table $chain" "$node_dir/chains.before" 2>/dev/null && continue
      "$ipt" -w -t "$table" -S 2>/dev/null | awk -v c="$chain" '$1 == "-A" && $2 != c && / -j / { for (i = 1; i < NF; i++) if ($i == "-j" && $(i + 1) == c) { print; break } }' \
        | while read -r rule; do
            # shellcheck disable=SC2086 # the rule's own words, as iptables -S printed them
            eval "$ipt -w -t $table ${rule/#-A/-D}" 2>/dev/null
          done
      "$ipt" -w -t "$table" -F "$chain" 2>/dev/null; "$ipt" -w -t "$table" -X "$chain" 2>/dev/null
    done
  done
done
# iptables-nft leaves the tables it made for those chains; drop the ones that did not exist
# before the node and now hold no rule.
if [ -f "$node_dir/nft-tables.before" ]; then
  nft list tables 2>/dev/null | while read -r _ family name; do
    grep -qx "table $family $name" "$node_dir/nft-tables.before" && continue
    case $family in ip|ip6) ;; *) continue ;; esac
    case $name in filter|mangle|nat) ;; *) continue ;; esac
    # A rule is a line with a handle that is not a table or chain header.
    nft -a list table "$family" "$name" 2>/dev/null | grep -E '# handle [0-9]+$' | grep -qvE '^\s*(table|chain) ' && continue
    nft delete table "$family" "$name" 2>/dev/null
  done
fi
nft list table inet kube-network-policies >/dev/null 2>&1 && nft delete table inet kube-network-policies
[ -f "$node_dir/ip_forward.orig" ] && cat "$node_dir/ip_forward.orig" > /proc/sys/net/ipv4/ip_forward
[ -f "$node_dir/bridge-nf.orig" ] && cat "$node_dir/bridge-nf.orig" > /proc/sys/net/bridge/bridge-nf-call-iptables

# cgroups the kubelet made (children first; a cgroup directory is removed with rmdir).
if created "cgroups kubepods"; then
  for top in /sys/fs/cgroup/*/kubepods; do
    [ -d "$top" ] && find "$top" -depth -type d -exec rmdir {} + 2>/dev/null
  done
fi
while read -r line; do
  case $line in "dir "*) rm -rf "${line#dir }" ;; esac
done < <(grep '^dir ' "$node_dir/created" 2>/dev/null)

if [ -f "$dir/kubeconfig" ]; then
  kubectl --kubeconfig "$dir/kubeconfig" delete node "$NODE_NAME" --ignore-not-found --wait=false --request-timeout 5s >/dev/null 2>&1
fi
# Keep the records of what to undo while anything is left, so a second run can finish the job.
left=()
findmnt -rn -o TARGET | grep -qF "$node_dir" && left+=("mounts under $node_dir")
created "link $NODE_BRIDGE" && ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && left+=("bridge $NODE_BRIDGE")
if [ ${#left[@]} -gt 0 ]; then
  log "could not remove: ${left[*]}; records kept in $node_dir"
  exit 1
fi
rm -rf "$node_dir"
log "removed the node"
