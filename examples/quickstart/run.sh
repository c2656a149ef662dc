#!/usr/bin/env bash
# `make quickstart`: Lockstep on the local cluster with its real node, from nothing to a green
# `kubectl lockstep status -n demo`, printing every step as the command you would type (`$ …`):
# images built here and loaded into the node, the operator installed from manifests/ as pods,
# issuers, a KeyPolicy, a value sealed with `kubectl lockstep seal`, three services whose pods
# talk mutual TLS, then status. Without KUBECONFIG it starts the cluster first (`make cluster-up`).
# Settings: NAMESPACE (demo), GREETING (the value sealed), QUICKSTART_DIR (work files).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export PATH="$root/node_modules/.bin:$PATH" # the project's Node 24 (README, "Node.js")
ns=${NAMESPACE:-demo}
greeting=${GREETING:-hello from a sealed secret}
work=${QUICKSTART_DIR:-${TMPDIR:-/tmp}/lockstep-quickstart-$ns}
started_cluster=false

say() { printf '\n# %s\n' "$*"; }
# run 'command line': prints it as typed, then runs it (through eval, so pipes and $(…) work).
run() { printf '$ %s\n' "$1"; eval "$1"; }
q() { printf '%q' "$1"; }
fail() { printf '\n[quickstart] %s\n' "$*" >&2; exit 1; }

if [ -z "${KUBECONFIG:-}" ]; then
  say "No KUBECONFIG: start the local cluster (control plane + one real node; builds its binaries once)"
  [ "$(id -u)" = 0 ] || fail "the local node needs root (run as root, or point KUBECONFIG at a cluster started with make cluster-up)"
  run 'bash e2e/node/install-deps.sh'
  printf '$ make cluster-up\n'
  eval "$(bash e2e/controlplane/cluster-up.sh)"
  printf '$ export KUBECONFIG=%s\n' "$KUBECONFIG"
  started_cluster=true
fi
socket=$(dirname "$KUBECONFIG")/node/run/containerd.sock
[ -S "$socket" ] || fail "no local node beside $KUBECONFIG ($socket): this quickstart loads its images into the node that make cluster-up starts (unset KUBECONFIG to start one)"
t0=$SECONDS

say "Build the CLI and put the kubectl plugin on PATH (or: npm link)"
cli=dist/operator/cli/main.js
if [ -f "$cli" ] && [ -z "$(find operator imports package.json tsconfig.json tsconfig.build.json -newer "$cli" -print -quit)" ]; then
  printf '$ npm run build   # skipped: dist/ is newer than every source\n'
else
  run 'npm run build --silent'
fi
run "mkdir -p $(q "$work/bin") && ln -sf \"\$PWD/scripts/lockstep\" $(q "$work/bin/kubectl-lockstep")"
run "export PATH=$(q "$work/bin"):\$PATH"

say "Build the images without Docker and load them into the node's containerd (pods use imagePullPolicy: Never)"
printf '$ e2e/images/build.sh operator tlsapp\n'
images=$(bash e2e/images/build.sh operator tlsapp)
while IFS='=' read -r _ tarball; do
  [ -n "$tarball" ] && run "ctr --address $(q "$socket") -n k8s.io images import $(q "$tarball") >/dev/null"
done <<< "$images"

say "Install the operator from manifests/ (CRDs, RBAC, two replicas), with the local image"
t_install=$SECONDS
run 'kubectl apply --server-side --force-conflicts -k e2e/node/operator-overlay >/dev/null'
run 'kubectl -n lockstep-system rollout status deployment/lockstep-operator --timeout 3m'

say "Issuers: a self-signed root CA and the CA ClusterIssuer lockstep-ca (make cluster-up installs them too)"
run 'kubectl apply --server-side -f e2e/controlplane/issuers.yaml'
run 'kubectl wait --for condition=Ready --timeout 2m clusterissuer/lockstep-ca'

say "A namespace (its pods held to Pod Security \"restricted\") and its KeyPolicy"
kubectl get namespace "$ns" >/dev/null 2>&1 || run "kubectl create namespace $ns"
run "kubectl label namespace $ns pod-security.kubernetes.io/enforce=restricted --overwrite"
run "kubectl apply -n $ns -f examples/quickstart/keypolicy.yaml"
run "kubectl wait -n $ns --for condition=Ready --timeout 2m keypolicy/demo"

say "Seal a value for GitOps: fetch the policy's public key, check its fingerprint, seal offline into the service file"
run "cp examples/quickstart/services.yaml $(q "$work/services.yaml")"
run "kubectl lockstep fetch-key -n $ns --policy demo --out $(q "$work/demo-key.json")"
run "FINGERPRINT=\$(kubectl get keypolicy demo -n $ns -o jsonpath='{.status.sealingKeyThumbprint}')"
run "kubectl create secret generic api-greeting -n $ns --from-literal=message=$(q "$greeting") --dry-run=client -o yaml \\
  | kubectl lockstep seal --jwks $(q "$work/demo-key.json") --fingerprint \"\$FINGERPRINT\" --service api --merge-into $(q "$work/services.yaml")"
run "grep -A4 'sealed:' $(q "$work/services.yaml") | cut -c1-100"

say "Three services, encrypted end to end: frontend -> api -> store"
t_apply=$SECONDS
run "kubectl apply -n $ns -f $(q "$work/services.yaml") -f examples/quickstart/workloads.yaml"
run "kubectl wait -n $ns --for condition=Ready --timeout 3m encryptedservice --all"
run "kubectl wait -n $ns --for condition=Available --timeout 3m deployment --all"
ready_s=$((SECONDS - t_apply))

say "Mutual TLS between the pods: frontend calls api with its certificate; api answers its sealed greeting"
pod_ip() { printf "\$(kubectl get pod -n %s -l app.kubernetes.io/name=%s --field-selector status.phase=Running -o jsonpath='{.items[0].status.podIP}')" "$ns" "$1"; }
run "API=$(pod_ip api) STORE=$(pod_ip store)"
tls='--ca /trust/ca.crt --cert /tls/tls.crt --key /tls/tls.key'
run "kubectl exec -n $ns deploy/frontend -- /tlsapp probe --url https://\$API:8443/ --server-name api.$ns.svc $tls"
say "api may call store; frontend may not (NetworkPolicy: store admits only api)"
run "kubectl exec -n $ns deploy/api -- /tlsapp probe --url https://\$STORE:8443/ --server-name store.$ns.svc $tls"
run "kubectl exec -n $ns deploy/frontend -- /tlsapp probe --url https://\$STORE:8443/ --server-name store.$ns.svc $tls --timeout 2s --expect-fail"

say "Encryption health of the namespace (exit 0: everything Ready)"
run "kubectl lockstep status -n $ns"

printf '\n[quickstart] green in %ss: services applied -> all Ready and available in %ss; operator install -> green status in %ss\n' \
  "$((SECONDS - t0))" "$ready_s" "$((SECONDS - t_install))"
if $started_cluster; then printf '\n# Look around (kubectl get lockstep -n %s, kubectl lockstep status -n %s -o wide)\nexport KUBECONFIG=%s PATH=%s:%s\n' "$ns" "$ns" "$KUBECONFIG" "$work/bin" "\$PATH"; fi
cat <<EOF

# Clean up
kubectl delete namespace $ns
kubectl -n lockstep-system delete deployment lockstep-operator   # the operator; CRDs and KeyPolicy keys stay (docs/install.md)
rm -rf $(q "$work")
EOF
if $started_cluster; then echo "make cluster-down   # the local cluster this quickstart started"; fi
