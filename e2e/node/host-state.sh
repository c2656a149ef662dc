#!/usr/bin/env bash
# Prints what a local node changes on the host, normalised so two snapshots can be diffed:
# links, addresses, routes, mounts, network namespaces, iptables and nftables rules (without
# counters), ipsets, the sysctls the node touches, kubepods cgroups and the node's processes.
# scripts/test.sh compares a snapshot taken before cluster-up with one after cluster-down.
set -uo pipefail
section() { printf '### %s\n' "$1"; }
section links; ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort
section addresses; ip -o addr show | awk '{print $2, $3, $4}' | sort
section routes; ip route show table all 2>/dev/null | grep -v '^local\|^broadcast\|^multicast\|^fe80\|^ff00' | sort
section mounts; findmnt -rn -o TARGET,FSTYPE | sort
section netns; find /var/run/netns -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort
for ipt in iptables ip6tables; do
  section "$ipt"
  command -v "$ipt-save" >/dev/null && "$ipt-save" 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//' | sort
done
section nftables; command -v nft >/dev/null && nft list ruleset 2>/dev/null | grep -v 'counter packets' | sed 's/ counter packets [0-9]* bytes [0-9]*//'
section ipsets; command -v ipset >/dev/null && ipset list -n 2>/dev/null | sort
section sysctls
for s in net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables; do
  [ -f "/proc/sys/$s" ] && echo "$s=$(cat "/proc/sys/$s")"
done
section cgroups; ls -d /sys/fs/cgroup/*/kubepods 2>/dev/null
section processes
# shellcheck disable=SC2009 # a count per command name, not pids
ps -eo comm= | grep -E '^(kubelet|containerd|containerd-shim|kube-scheduler|kube-network-p|socat|runc|pause|tlsapp)' | sort | uniq -c
exit 0
