#!/usr/bin/env bash
# Starts a local, real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver,
# kube-controller-manager and cert-manager's controller, built from Go modules (build.sh); then,
# as root and unless NODES=0, one real node (e2e/node/node-up.sh).
# State, logs and the admin kubeconfig live in $CLUSTER_DIR (git-ignored).
#
# Ports come from variables so a second control plane can run beside the first (one node per
# machine: the second runs without):
#   NODES=0 CLUSTER_DIR=e2e/.cluster-2 ETCD_PORT=12379 APISERVER_PORT=16443 KCM_PORT=20257 CM_PORT=19402 make cluster-up
#
# ENCRYPTION=lockstep: Secrets are encrypted in etcd by Lockstep's KMS v2 plugin (lockstep
# kms-plugin, operator/kms/), started here with a key file in $CLUSTER_DIR (docs/kms.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${CLUSTER_DIR:-$root/e2e/.cluster}
case $dir in /*) ;; *) dir=$root/$dir ;; esac
etcd_port=${ETCD_PORT:-2379}
etcd_peer_port=${ETCD_PEER_PORT:-$((etcd_port + 1))}
apiserver_port=${APISERVER_PORT:-6443}
kcm_port=${KCM_PORT:-10257}
cm_port=${CM_PORT:-9402}
service_cidr=${SERVICE_CIDR:-10.96.0.0/16}
# One real node by default (e2e/node/; it needs root); NODES=0 runs the control plane alone.
if [ -n "${NODES:-}" ]; then nodes=$NODES
elif [ "$(id -u)" = 0 ]; then nodes=1
else nodes=0; echo "[cluster-up] not root: control plane only (a node needs root)" >&2; fi
case $nodes in 0|1) ;; *) echo "[cluster-up] NODES=$nodes: only 0 or 1 node is supported" >&2; exit 2 ;; esac
# shellcheck source=../node/node.env
. "$here/../node/node.env"
node_gw=${POD_CIDR%.*}.1

log() { printf '[cluster-up] %s\n' "$*" >&2; }
kubeconfig=$dir/kubeconfig
kc() { kubectl --kubeconfig "$kubeconfig" "$@"; }

alive() { [ -f "$dir/pids/$1" ] && kill -0 "$(cat "$dir/pids/$1")" 2>/dev/null; }

node_alive() { [ "$nodes" = 0 ] || { [ -f "$dir/node/ready-seconds" ] && [ -f "$dir/node/pids/kubelet" ] && kill -0 "$(cat "$dir/node/pids/kubelet")" 2>/dev/null; }; }
encryption=${ENCRYPTION:-}
case $encryption in '' | lockstep) ;; *) echo "[cluster-up] ENCRYPTION=$encryption: only ENCRYPTION=lockstep is supported" >&2; exit 2 ;; esac
kms_alive() { [ -z "$encryption" ] || alive kms-plugin; }
if [ -f "$kubeconfig" ] && alive etcd && alive kube-apiserver && alive kube-controller-manager && alive cert-manager \
  && kms_alive && node_alive && kc get --raw /readyz >/dev/null 2>&1; then
  log "cluster already up ($dir)"
  echo "export KUBECONFIG=$kubeconfig"
  exit 0
fi
if [ -d "$dir/pids" ]; then
  log "stale state in $dir: stopping what is left of it first"
  CLUSTER_DIR=$dir "$here/cluster-down.sh"
fi

log "binaries (built once per machine, cached under ~/.cache/lockstep)"
bins=$("$here/build.sh")
bin() { printf '%s\n' "$bins" | awk -F= -v c="$1" '$1 == c {print $2 "/" ($1 == "cert-manager" ? "cert-manager-controller" : $1)}'; }

mkdir -p "$dir"/{pki,pids,logs,etcd}
pki=$dir/pki

# --- PKI: one CA for serving and client certs, plus the service-account signing key.
ossl() { openssl "$@" >/dev/null 2>&1; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=lockstep-local-ca" -keyout "$pki/ca.key" -out "$pki/ca.crt"
issue() { # issue <name> <subject> [subjectAltName]
  local name=$1 subj=$2 san=${3:-}
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$subj" \
    -keyout "$pki/$name.key" -out "$pki/$name.csr"
  local ext=$pki/$name.ext
  { echo "basicConstraints=CA:FALSE"; echo "keyUsage=digitalSignature,keyEncipherment"
    if [ -n "$san" ]; then echo "extendedKeyUsage=serverAuth"; echo "subjectAltName=$san"
    else echo "extendedKeyUsage=clientAuth"; fi; } > "$ext"
  ossl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 30 -extfile "$ext" -out "$pki/$name.crt"
}
issue apiserver "/CN=kube-apiserver" \
  "IP:127.0.0.1,IP:${service_cidr%.*}.1,IP:$node_gw,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
issue admin "/O=system:masters/CN=lockstep-admin"
ossl genrsa -out "$pki/sa.key" 2048
ossl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

b64() { base64 -w0 < "$1"; }
cat > "$kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: lockstep-local
  cluster:
    server: https://127.0.0.1:$apiserver_port
    certificate-authority-data: $(b64 "$pki/ca.crt")
users:
- name: lockstep-admin
  user:
    client-certificate-data: $(b64 "$pki/admin.crt")
    client-key-data: $(b64 "$pki/admin.key")
contexts:
- name: lockstep-local
  context: {cluster: lockstep-local, user: lockstep-admin}
current-context: lockstep-local
EOF
chmod 600 "$kubeconfig"

# Audit every request at Metadata level: the e2e suite counts mutating requests from it.
cat > "$dir/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
EOF

state=$dir
# shellcheck source=processes.sh
. "$here/processes.sh"
trap dump_on_failure ERR

start etcd "$(bin etcd)" --name lockstep --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "lockstep=http://127.0.0.1:$etcd_peer_port" --listen-metrics-urls "" \
  --unsafe-no-fsync --quota-backend-bytes 4294967296
wait_for etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health"

# With a node, pods get ServiceAccount tokens (admission plugin on) and the API server reaches the
# kubelet (logs, exec) as the admin identity by the node's InternalIP.
node_apiserver_flags=()
if [ "$nodes" -gt 0 ]; then
  # shellcheck disable=SC2054 # the commas are inside one flag value
  node_apiserver_flags=(--enable-admission-plugins ServiceAccount
    --kubelet-client-certificate "$pki/admin.crt" --kubelet-client-key "$pki/admin.key"
    --kubelet-preferred-address-types InternalIP,Hostname)
else
  node_apiserver_flags=(--disable-admission-plugins ServiceAccount)
fi
# The plugin's root keys sit in a file beside the API server, never in a Secret: Secrets are what
# it encrypts, so a key kept in one could not be read at API server start.
encryption_flags=()
if [ "$encryption" = lockstep ]; then
  node=$root/node_modules/.bin/node tsx=$root/node_modules/tsx/dist/loader.mjs
  if [ ! -x "$node" ] || [ ! -f "$tsx" ]; then log "ENCRYPTION=lockstep runs the plugin from the clone: npm ci first"; exit 1; fi
  lockstep=("$node" --import "$tsx" "$root/operator/cli/main.ts")
  "${lockstep[@]}" kms-plugin init --keys "$dir/kms-keys.json" >&2
  start kms-plugin "${lockstep[@]}" kms-plugin --socket "$dir/kms.sock" --keys "$dir/kms-keys.json"
  wait_for kms-plugin 60 "${lockstep[@]}" kms-plugin status --socket "$dir/kms.sock"
  "$here/encryption-config.sh" "$dir/kms.sock" > "$dir/encryption-config.yaml"
  encryption_flags=(--encryption-provider-config "$dir/encryption-config.yaml")
fi
start kube-apiserver "$(bin kube-apiserver)" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$apiserver_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --authorization-mode RBAC --allow-privileged=true \
  --service-cluster-ip-range "$service_cidr" \
  "${node_apiserver_flags[@]}" "${encryption_flags[@]}" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/logs/audit.log" \
  --audit-log-maxsize 200 --audit-log-maxbackup 1
wait_for kube-apiserver 120 kc get --raw /readyz

controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,persistentvolumeclaim-protection-controller,persistentvolume-protection-controller
# The built-in admin/edit/view roles get their rules by aggregation: tenants in the tenancy tests are
# bound to `edit`, as on a real cluster.
controllers+=,clusterrole-aggregation-controller
# Quota admission refuses every object a ResourceQuota covers until this controller has filled the
# quota's status ("status unknown for quota"): the fault suite's quota case needs it, as a real cluster has it.
# It counts a custom resource (count/certificates.cert-manager.io) only once discovery found the CRD,
# about 30 s after it starts, and a quota made before then waits for the full resync: every 15 s
# here instead of the default 5 minutes, so a test run right after cluster-up sees it counted.
controllers+=,resourcequota-controller
if [ "$nodes" -gt 0 ]; then
  # What Deployments, StatefulSets, Services and a node's lifecycle need.
  controllers+=,deployment-controller,replicaset-controller,statefulset-controller,daemonset-controller
  controllers+=,endpointslice-controller,pod-garbage-collector-controller,node-lifecycle-controller
  controllers+=,serviceaccount-token-controller,root-ca-certificate-publisher-controller
fi
start kube-controller-manager "$(bin kube-controller-manager)" \
  --kubeconfig "$kubeconfig" --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$kcm_port" --leader-elect=false \
  --controllers "$controllers" \
  --resource-quota-sync-period 15s \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key"

log "installing cert-manager CRDs"
"$here/certmanager/crds.sh" | kc apply --server-side --force-conflicts -f - >/dev/null
# Retried: `kubectl wait` fails at once ("accessor error") on a CRD whose status is not written yet.
wait_for "cert-manager CRDs established" 60 kc wait --for condition=Established --timeout 5s \
  crd/certificates.cert-manager.io crd/certificaterequests.cert-manager.io \
  crd/issuers.cert-manager.io crd/clusterissuers.cert-manager.io
kc create namespace cert-manager --dry-run=client -o yaml | kc apply -f - >/dev/null
# The operator's own namespace (manifests/ creates it on a real install): its rotation claims live there.
kc create namespace lockstep-system --dry-run=client -o yaml | kc apply -f - >/dev/null

# cert-manager's built-in approver (certificaterequests-approver) approves every request at once;
# it is left out, as `--controllers=*,-certificaterequests-approver` does upstream, so Lockstep's
# approver decides: a request claiming a Lockstep identity is approved only when it matches a
# declared EncryptedService. Every issuance on this cluster then waits for a running operator.
cm_controllers=issuers,clusterissuers,certificaterequests-issuer-ca,certificaterequests-issuer-selfsigned
cm_controllers+=,certificates-trigger,certificates-key-manager,certificates-request-manager,certificates-issuing
cm_controllers+=,certificates-readiness,certificates-revision-manager,certificates-metrics
start cert-manager "$(bin cert-manager)" --kubeconfig "$kubeconfig" \
  --cluster-resource-namespace cert-manager --leader-elect=false --controllers "$cm_controllers" \
  --metrics-listen-address "127.0.0.1:$cm_port"

log "creating the default CA ClusterIssuer (lockstep-ca)"
kc apply --server-side -f "$here/issuers.yaml" >/dev/null
# No operator runs yet to approve the root CA's request, so the administrator does, once, as
# `cmctl approve` would: only requests of the lockstep-root-ca Certificate, never anything else.
approve_root() {
  local name
  for name in $(kc -n cert-manager get certificaterequests -o \
    jsonpath='{range .items[?(@.metadata.annotations.cert-manager\.io/certificate-name=="lockstep-root-ca")]}{.metadata.name}{" "}{.status.conditions[*].type}{"\n"}{end}' \
    | awk '!/Approved|Denied/ {print $1}'); do
    kc -n cert-manager patch certificaterequest "$name" --subresource status --type merge -p \
      "{\"status\":{\"conditions\":[{\"type\":\"Approved\",\"status\":\"True\",\"reason\":\"cluster-up\",\"message\":\"root CA of the local cluster, approved by its administrator\",\"lastTransitionTime\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}]}}" >/dev/null
  done
  kc get certificate -n cert-manager lockstep-root-ca -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}
wait_for "root CA request approved and issued" 120 approve_root
wait_for "ClusterIssuer lockstep-ca Ready" 120 \
  kc wait --for condition=Ready --timeout 5s clusterissuer/lockstep-ca

trap - ERR
if [ "$nodes" -gt 0 ]; then
  CLUSTER_DIR=$dir "$root/e2e/node/node-up.sh"
fi
log "control plane ready: $(kc version -o yaml 2>/dev/null | awk '/serverVersion/{f=1} f && /gitVersion/{print $2; exit}')"
echo "export KUBECONFIG=$kubeconfig"
