#!/usr/bin/env bash
# Adds one real node to the local control plane (cluster-up.sh calls this when NODES=1, the
# default): containerd + runc (Debian), CNI bridge + host-local + loopback (Debian), kubelet and
# kube-scheduler (built from the same Kubernetes module as the API server), the NetworkPolicy
# enforcer kube-network-policies (built from its module with one kernel fix, see enforcer/), and
# images built locally without Docker (e2e/images/). Everything it creates on the host is
# recorded in $CLUSTER_DIR/node so that node-down.sh removes exactly that.
#
# Nothing may leave the machine: there is no kube-proxy, so ClusterIPs are blackholed; pods'
# DNS goes to the bridge address, where nothing answers; and a FORWARD rule drops pod traffic
# for anything outside the pod network (the bridge plugin turns IP forwarding on).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${CLUSTER_DIR:-$root/e2e/.cluster}
case $dir in /*) ;; *) dir=$root/$dir ;; esac
node_dir=$dir/node
kubeconfig=$dir/kubeconfig
pki=$dir/pki
# shellcheck source=node.env
. "$here/node.env"

log() { printf '[node-up] %s\n' "$*" >&2; }
kc() { kubectl --kubeconfig "$kubeconfig" "$@"; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "a node needs root (network namespaces, mounts, cgroups); NODES=0 runs the control plane alone"
"$here/install-deps.sh" --check || die "missing node packages: run e2e/node/install-deps.sh (Debian: containerd runc containernetworking-plugins iptables nftables socat)"
[ -f "$kubeconfig" ] || die "no control plane in $dir (run cluster-up.sh)"
if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
  if pgrep -f -- "kubelet .*--node-ip ${POD_CIDR%.*}.1" >/dev/null; then
    die "bridge $NODE_BRIDGE is in use by a running node (make cluster-down in its clone), or set NODE_BRIDGE/POD_CIDR"
  fi
  # Left by a node whose processes are gone (a killed session, a deleted clone): its host
  # network state would break this node, and nobody else owns it.
  log "removing the host network state of a node that no longer runs (bridge $NODE_BRIDGE, guards)"
  for port in $(ip -o link show master "$NODE_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do ip link del "$port" 2>/dev/null || true; done
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
  ip route del blackhole "$SERVICE_CIDR" 2>/dev/null || true
  while iptables -w -D FORWARD -i "$NODE_BRIDGE" ! -d "$POD_CIDR" -m comment --comment "$GUARD_COMMENT" -j DROP 2>/dev/null; do :; done
  if ! pgrep -f 'kube-network-policies --hostname-override' >/dev/null; then nft delete table inet kube-network-policies 2>/dev/null || true; fi
fi

log "binaries and images (built once per machine, cached under ~/.cache/lockstep)"
bins=$("$root/e2e/controlplane/build.sh" kubelet kube-scheduler kube-network-policies)
bin() { printf '%s\n' "$bins" | awk -F= -v c="$1" '$1 == c {print $2 "/" $1}'; }
images=$("$root/e2e/images/build.sh" pause tlsapp)

mkdir -p "$node_dir"/{pids,logs,run,cni/net.d,cni/ipam,containerd,kubelet,kubelet-pki,enforcer-token}
record() { echo "$1" >> "$node_dir/created"; } # what node-down.sh must undo, one line each
state=$node_dir
# shellcheck source=../controlplane/processes.sh
. "$root/e2e/controlplane/processes.sh"
trap dump_on_failure ERR

# --- Host network: bridge, guards. Original sysctls are kept for node-down.sh.
gw=${POD_CIDR%.*}.1
cat /proc/sys/net/ipv4/ip_forward > "$node_dir/ip_forward.orig"
nft list tables 2>/dev/null > "$node_dir/nft-tables.before" || true
ls /var/run/netns 2>/dev/null > "$node_dir/netns.before" || true
ip link add "$NODE_BRIDGE" type bridge && record "link $NODE_BRIDGE"
ip addr add "$gw/${POD_CIDR#*/}" dev "$NODE_BRIDGE"
ip link set "$NODE_BRIDGE" up
# Bridged pod-to-pod packets must pass the netfilter hooks, or the enforcer never sees them.
if [ -f /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
  cat /proc/sys/net/bridge/bridge-nf-call-iptables > "$node_dir/bridge-nf.orig"
  echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables
else
  die "br_netfilter is not available: bridged pod traffic would bypass NetworkPolicy enforcement"
fi
ip route add blackhole "$SERVICE_CIDR" && record "route blackhole $SERVICE_CIDR"
iptables -w -I FORWARD 1 -i "$NODE_BRIDGE" ! -d "$POD_CIDR" -m comment --comment "$GUARD_COMMENT" -j DROP \
  && record "forward-guard"
printf 'nameserver %s\noptions ndots:5\n' "$gw" > "$node_dir/resolv.conf"

# --- CNI: one bridge network, addresses from host-local (state under the node dir).
cat > "$node_dir/cni/net.d/10-lockstep.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "lockstep",
  "plugins": [
    {"type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "isDefaultGateway": true,
     "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$node_dir/cni/ipam",
              "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$gw"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

# --- containerd (config version 2: Debian ships 1.6). No CAP_SYS_RESOURCE in these VMs, so
# runc must not raise oom_score_adj (restrict_oom_score_adj), or every sandbox fails to start.
sock=$node_dir/run/containerd.sock
cat > "$node_dir/containerd.toml" <<EOF
version = 2
root = "$node_dir/containerd/root"
state = "$node_dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$node_dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "lockstep.local/pause:dev"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$node_dir/cni/net.d"
EOF
start containerd containerd --config "$node_dir/containerd.toml"
wait_for containerd 30 ctr --address "$sock" version
while IFS='=' read -r ref tarball; do
  [ -n "$ref" ] || continue
  ctr --address "$sock" -n k8s.io images import "$tarball" >/dev/null
  ctr --address "$sock" -n k8s.io images label "$ref" io.cri-containerd.pinned=pinned >/dev/null 2>&1 || true
  log "imported $ref"
done <<< "$images"

# --- Node identity: a client certificate from the cluster CA (O=system:nodes), and the
# system:node role for that group (this control plane has no Node authorizer).
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=system:nodes/CN=system:node:$NODE_NAME" \
  -keyout "$pki/node.key" -out "$pki/node.csr" >/dev/null 2>&1
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' > "$pki/node.ext"
openssl x509 -req -in "$pki/node.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 30 \
  -extfile "$pki/node.ext" -out "$pki/node.crt" >/dev/null 2>&1
server=$(kc config view -o jsonpath='{.clusters[0].cluster.server}')
cat > "$node_dir/kubelet.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$server", certificate-authority: "$pki/ca.crt"}
users:
- name: node
  user: {client-certificate: "$pki/node.crt", client-key: "$pki/node.key"}
contexts:
- name: node
  context: {cluster: local, user: node}
current-context: node
EOF
kc apply --server-side -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: lockstep-local-nodes}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:nodes}]
EOF

# --- kubelet. cgroup v1 controllers here (cgroup2 only at /sys/fs/cgroup/unified): Kubernetes
# >= 1.35 refuses v1 unless failCgroupV1 is false. Image GC is off: nothing here can pull an
# image back. syncFrequency decides how soon a changed Secret reaches a pod's files.
cat > "$node_dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$sock
address: $gw
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: AlwaysAllow}
clusterDNS: ["$gw"]
clusterDomain: cluster.local
resolvConf: "$node_dir/resolv.conf"
syncFrequency: $KUBELET_SYNC_FREQUENCY
configMapAndSecretChangeDetectionStrategy: Watch
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
serializeImagePulls: false
staticPodPath: ""
rotateCertificates: false
maxPods: 110
EOF
for ipt in iptables ip6tables; do for table in mangle nat filter; do
  "$ipt" -w -t "$table" -S 2>/dev/null | awk -v p="$ipt $table" '$1 == "-N" && $2 ~ /^KUBE-/ {print p " " $2}'
done; done > "$node_dir/chains.before"
cgroup_before=$(find /sys/fs/cgroup/*/ -maxdepth 1 -name kubepods -type d 2>/dev/null | wc -l)
[ "$cgroup_before" -eq 0 ] || log "warning: kubepods cgroups exist already (left by another kubelet?)"
record "cgroups kubepods"
kubelet_started=$SECONDS
start kubelet "$(bin kubelet)" --config "$node_dir/kubelet.yaml" --kubeconfig "$node_dir/kubelet.kubeconfig" \
  --root-dir "$node_dir/kubelet" --cert-dir "$node_dir/kubelet-pki" \
  --hostname-override "$NODE_NAME" --node-ip "$gw" --v=1
start kube-scheduler "$(bin kube-scheduler)" --kubeconfig "$kubeconfig" \
  --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
  --leader-elect=false --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT"

# --- Pods reach the API server through the bridge address (no ClusterIP without kube-proxy):
# the API server's certificate names it; workloads set KUBERNETES_SERVICE_HOST to it.
start apiserver-proxy socat "TCP-LISTEN:$APISERVER_PROXY_PORT,bind=$gw,fork,reuseaddr" \
  "TCP:127.0.0.1:${server##*:}"

# --- NetworkPolicy enforcer: in-cluster config only, so it gets a token mounted at the
# service-account path inside a private mount namespace; SIGINT makes it remove its table.
kc apply --server-side -f "$here/enforcer-rbac.yaml" >/dev/null
kc -n kube-system create token kube-network-policies --duration 48h > "$node_dir/enforcer-token/token"
cp "$pki/ca.crt" "$node_dir/enforcer-token/ca.crt"
echo kube-system > "$node_dir/enforcer-token/namespace"
sa_path=/var/run/secrets/kubernetes.io/serviceaccount
if [ ! -d "$sa_path" ]; then
  top=$sa_path; while [ ! -d "$(dirname "$top")" ]; do top=$(dirname "$top"); done
  mkdir -p "$sa_path" && record "dir $top"
fi
start kube-network-policies env KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="${server##*:}" \
  unshare --mount --propagation private sh -c \
  "mount --bind '$node_dir/enforcer-token' '$sa_path' && exec '$(bin kube-network-policies)' \
    --hostname-override '$NODE_NAME' --disable-nri --nfqueue-id '$ENFORCER_QUEUE' \
    --metrics-bind-address '127.0.0.1:$ENFORCER_METRICS_PORT' --v=1"

wait_for "node $NODE_NAME Ready" 120 kc wait --for condition=Ready --timeout 2s "node/$NODE_NAME"
ready_s=$((SECONDS - kubelet_started))
wait_for "enforcer table" 60 nft list table inet kube-network-policies
# The not-ready taint goes once the node-lifecycle controller has seen the node Ready.
wait_for "taints removed" 60 sh -c "[ -z \"\$(kubectl --kubeconfig '$kubeconfig' get node '$NODE_NAME' -o jsonpath='{.spec.taints}')\" ]"
echo "$ready_s" > "$node_dir/ready-seconds"
trap - ERR
log "node $NODE_NAME Ready ${ready_s}s after the kubelet started (pods on $POD_CIDR, bridge $NODE_BRIDGE)"
