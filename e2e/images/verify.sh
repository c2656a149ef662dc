#!/usr/bin/env bash
# Proves the images from build.sh run on the node's runtime (Debian's containerd 1.6 + runc):
# starts a private containerd under a temp dir (CRI plugin off), imports the three tarballs and
# runs them with `ctr run --rm --read-only`. Network: loopback only (tlsapp on --net-host bound to
# 127.0.0.1; the operator in a fresh network namespace that has nothing but lo).
# Needs root. Everything it starts is stopped, and its mounts removed, on exit.
#   e2e/images/verify.sh [--release DIR]
# --release DIR (what `make image` wrote): also imports the linux/amd64 release tarball and runs
# Node and the CLI from it, and runs the linux/arm64 image's Node and CLI under qemu-user-static
# from Debian (user mode, no binfmt needed; `file` checks every ELF in it is aarch64).
set -euo pipefail
release=
if [ "${1:-}" = --release ]; then release=$(cd "$2" && pwd); fi

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/lockstep-images-verify.XXXXXX)
sock=$tmp/containerd.sock
ctd_pid=
server_id=
failures=0

ctr_() { ctr --address "$sock" -n k8s.io "$@"; }
log() { echo "verify: $*" >&2; }
indent() { # indent <label> <text>: show captured output on stderr
  local line
  while IFS= read -r line; do printf '  %s| %s\n' "$1" "$line" >&2; done <<<"$2"
}
pass() { echo "PASS $*"; }
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

cleanup() {
  if [ -n "$ctd_pid" ]; then
    if [ -n "$server_id" ]; then
      ctr_ tasks kill -s SIGKILL "$server_id" >/dev/null 2>&1 || true
      sleep 0.5
      ctr_ tasks delete "$server_id" >/dev/null 2>&1 || true
      ctr_ containers delete "$server_id" >/dev/null 2>&1 || true
    fi
    kill "$ctd_pid" 2>/dev/null || true
    wait "$ctd_pid" 2>/dev/null || true
  fi
  local m
  awk -v t="$tmp" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

# 1. Build (or reuse) the tarballs.
declare -A tarball
while IFS='=' read -r ref path; do
  tarball[$ref]=$path
done < <("$here/build.sh" pause tlsapp operator)

# 2. A private containerd.
cat >"$tmp/config.toml" <<EOF
version = 2
root = "$tmp/root"
state = "$tmp/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$tmp/opt"
EOF
containerd --config "$tmp/config.toml" >"$tmp/containerd.log" 2>&1 &
ctd_pid=$!
for _ in $(seq 50); do
  ctr_ version >/dev/null 2>&1 && break
  sleep 0.2
done
ctr_ version >/dev/null || {
  cat "$tmp/containerd.log" >&2
  exit 1
}

for ref in lockstep.local/pause:dev lockstep.local/tlsapp:dev lockstep.local/operator:dev; do
  ctr_ images import "${tarball[$ref]}" >/dev/null
  # grep without -q reads all of ctr's output: -q may exit first, and pipefail then sees SIGPIPE.
  if ctr_ images ls -q | grep -x "$ref" >/dev/null; then
    pass "import names $ref ($(du -h "${tarball[$ref]}" | cut -f1) tarball)"
  else
    fail "import of ${tarball[$ref]} did not create $ref"
  fi
done

# 3. pause: runs, and exits 0 on SIGTERM.
ctr_ run --rm --read-only lockstep.local/pause:dev verify-pause >"$tmp/pause.out" 2>&1 &
run_pid=$!
for _ in $(seq 50); do
  ctr_ tasks ls | grep -q '^verify-pause .*RUNNING' && break
  sleep 0.1
done
sleep 0.5 # RUNNING is reported at exec; give the program time to install its handlers
ctr_ tasks kill -s SIGTERM verify-pause
rc=0
wait "$run_pid" || rc=$?
if [ "$rc" -eq 0 ]; then pass "pause stops with exit 0 on SIGTERM"; else fail "pause exited $rc: $(cat "$tmp/pause.out")"; fi

# 4. operator: Node starts from the image, and main.js loads every module.
out=$(ctr_ run --rm --read-only lockstep.local/operator:dev verify-node /nodejs/bin/node --version 2>&1) || true
if [[ $out == v24.* ]]; then pass "operator image: node --version = $out"; else fail "node --version: $out"; fi
out=$(ctr_ run --rm --read-only lockstep.local/operator:dev verify-node-id /nodejs/bin/node \
  -e 'console.log(process.getuid()+":"+process.getgid(), process.cwd(), process.env.NODE_ENV)' 2>&1) || true
if [ "$out" = "65532:65532 /app production" ]; then pass "operator image: user, workdir, env = $out"; else fail "user/workdir/env: $out"; fi
rc=0
# Node as PID 1 ignores a SIGTERM that arrives before the operator installs its handler (module
# loading takes >10 s on a loaded machine): -k ends ctr, and the task is killed below.
timeout -k 5 20 ctr --address "$sock" -n k8s.io run --rm --read-only --mount "type=tmpfs,src=tmpfs,dst=/tmp,options=rw" \
  lockstep.local/operator:dev verify-operator >"$tmp/operator.out" 2>&1 || rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  ctr_ tasks kill -s SIGKILL verify-operator >/dev/null 2>&1 || true
  sleep 0.5
  ctr_ tasks delete verify-operator >/dev/null 2>&1 || true
  ctr_ containers delete verify-operator >/dev/null 2>&1 || true
fi
indent operator "$(head -c 3000 "$tmp/operator.out")"
if grep -qiE "cannot find module|ERR_MODULE_NOT_FOUND|error while loading shared libraries|SyntaxError" "$tmp/operator.out"; then
  fail "operator main.js did not load (exit $rc)"
elif ! grep -q '"msg":"starting"' "$tmp/operator.out"; then
  fail "operator main.js never logged \"starting\" (exit $rc)"
else
  pass "operator main.js loads and fails only for lack of a cluster (exit $rc; 124/137 = still retrying after 20s)"
fi

# 5. tlsapp: serve and probe talk over loopback with mutual TLS.
pki=$tmp/pki
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=verify-ca \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
issue() { # issue <name> <subject> <extensions>
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
    -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$pki/$1.ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 1 -extfile "$pki/$1.ext" -out "$pki/$1.crt" 2>/dev/null
}
issue server /CN=tlsapp.test 'subjectAltName=DNS:tlsapp.test,IP:127.0.0.1'
issue client /CN=verify-client 'subjectAltName=URI:spiffe://verify/client
extendedKeyUsage=clientAuth'
chmod 0755 "$pki"
chmod 0644 "$pki"/*
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
plain_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mount=(--mount "type=bind,src=$pki,dst=/pki,options=rbind:ro")
server_id=verify-tlsapp-serve
ctr_ run -d --log-uri "file://$tmp/server.log" --net-host --read-only "${mount[@]}" lockstep.local/tlsapp:dev "$server_id" /tlsapp serve \
  --listen "127.0.0.1:$port" --plaintext-listen "127.0.0.1:$plain_port" --cert /pki/server.crt \
  --key /pki/server.key --ca /pki/ca.crt --client-auth require --min-tls 1.3 >/dev/null
probe() { # probe <id> <probe args...>
  local id=$1
  shift
  ctr_ run --rm --net-host --read-only "${mount[@]}" lockstep.local/tlsapp:dev "$id" /tlsapp probe "$@"
}
sleep 1
if out=$(probe verify-probe-ok --url "https://127.0.0.1:$port/" --ca /pki/ca.crt --cert /pki/client.crt \
  --key /pki/client.key --server-name tlsapp.test --count 3 --interval 200ms); then
  pass "tlsapp probe with a client certificate: 3/3 OK"
else
  fail "tlsapp probe with a client certificate"
fi
indent probe "$out"
if out=$(probe verify-probe-nocert --url "https://127.0.0.1:$port/" --ca /pki/ca.crt --server-name tlsapp.test \
  --count 2 --interval 100ms --expect-fail); then
  pass "tlsapp probe without a client certificate is refused (TLS 1.3): 2/2 failed as expected"
else
  fail "tlsapp probe without a client certificate was accepted"
fi
indent probe "$out"
if probe verify-probe-plain --url "http://127.0.0.1:$plain_port/healthz" --plaintext >/dev/null; then
  pass "tlsapp plaintext listener answers /healthz"
else
  fail "tlsapp plaintext /healthz"
fi
ctr_ tasks kill -s SIGTERM "$server_id"
for _ in $(seq 50); do
  ctr_ tasks ls | grep -q "^$server_id " || break
  if ctr_ tasks ls | grep -q "^$server_id .*STOPPED"; then break; fi
  sleep 0.1
done
ctr_ tasks delete "$server_id" >/dev/null 2>&1 || true
ctr_ containers delete "$server_id" >/dev/null 2>&1 || true
server_id=
indent serve "$(cat "$tmp/server.log")"
if grep -q '"event":"started"' "$tmp/server.log" && grep -q '"event":"handshake_error"' "$tmp/server.log"; then
  pass "tlsapp serve logged started and the refused handshakes"
else
  fail "tlsapp serve log lacks started/handshake_error"
fi

# 6. The release images (make image).
# layer_root <docker-archive> <dir>: unpacks the image's single layer into dir.
layer_root() {
  local layer
  layer=$(tar -tf "$1" | grep '\.tar\.gz$')
  mkdir -p "$2" && tar -xOf "$1" "$layer" | tar -xzf - -C "$2"
}
if [ -n "$release" ]; then
  amd64=$(echo "$release"/lockstep-operator-*-linux-amd64.tar)
  arm64=$(echo "$release"/lockstep-operator-*-linux-arm64.tar)
  ref=$(tar -xOf "$amd64" manifest.json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["RepoTags"][0])')
  version=${ref##*:}
  # The index: both platforms, the OCI annotations, the version package.json has (also in each config).
  if out=$(python3 - "$release/oci" "$here/../../package.json" <<'PY'
import json, sys
oci, pkg = sys.argv[1], json.load(open(sys.argv[2]))
blob = lambda d: json.load(open(f"{oci}/blobs/{d.replace(':', '/')}"))
top = json.load(open(f"{oci}/index.json"))["manifests"]
assert len(top) == 1, f"index.json lists {len(top)} entries"
index = blob(top[0]["digest"])
want = {"version", "revision", "created", "source", "title", "description", "licenses", "vendor", "base.name"}
notes = index.get("annotations", {})
missing = sorted(k for k in want if not notes.get(f"org.opencontainers.image.{k}"))
assert not missing, f"index lacks annotations {missing}"
assert notes["org.opencontainers.image.version"] == pkg["version"], "index version differs from package.json"
platforms = []
for m in index["manifests"]:
    p = m["platform"]
    platforms.append("/".join(filter(None, [p["os"], p["architecture"], p.get("variant")])))
    labels = blob(blob(m["digest"])["config"]["digest"])["config"]["Labels"]
    assert labels == notes, f"{platforms[-1]}: config labels differ from the index annotations"
assert sorted(platforms) == ["linux/amd64", "linux/arm64/v8"], f"platforms {platforms}"
print(f"{top[0]['digest']}: {', '.join(platforms)}, version {pkg['version']}, {len(notes)} annotations = config labels")
PY
  ); then pass "release index $out"; else fail "release index: $out"; fi
  ctr_ images import "$amd64" >/dev/null
  if ctr_ images ls -q | grep -x "$ref" >/dev/null; then pass "release linux/amd64: import names $ref"; else fail "release import did not create $ref"; fi
  out=$(ctr_ run --rm --read-only "$ref" verify-release-node /nodejs/bin/node --version 2>&1) || true
  if [[ $out == v24.* ]]; then pass "release linux/amd64: node --version = $out"; else fail "release node --version: $out"; fi
  out=$(ctr_ run --rm --read-only "$ref" verify-release-cli /nodejs/bin/node dist/operator/cli/main.js version 2>&1) || true
  indent amd64 "$out"
  if grep -qx "Client Version: $version" <<<"$out"; then pass "release linux/amd64: lockstep version says $version"; else fail "release lockstep version"; fi

  layer_root "$arm64" "$tmp/arm64"
  elves=$(find "$tmp/arm64" -path "$tmp/arm64/app" -prune -o -type f -exec file {} + | grep ELF)
  indent arm64 "$(sed "s|$tmp/arm64||; s|BuildID[^,]*, ||" <<<"$elves")"
  if [ -n "$elves" ] && ! grep -v 'ARM aarch64' <<<"$elves" >/dev/null; then
    pass "release linux/arm64: all $(wc -l <<<"$elves") ELF files are aarch64"
  else
    fail "release linux/arm64: an ELF file is not aarch64"
  fi
  (cd "$tmp" && apt-get -q download qemu-user-static >/dev/null 2>&1 && dpkg-deb -x qemu-user-static_*.deb "$tmp/qemu") || true
  qemu=$tmp/qemu/usr/bin/qemu-aarch64-static
  if [ -x "$qemu" ]; then
    out=$("$qemu" -L "$tmp/arm64" "$tmp/arm64/nodejs/bin/node" --version 2>&1) || true
    if [[ $out == v24.* ]]; then pass "release linux/arm64 (qemu-user): node --version = $out"; else fail "arm64 node --version: $out"; fi
    out=$(cd "$tmp/arm64/app" && "$qemu" -L "$tmp/arm64" ../nodejs/bin/node dist/operator/cli/main.js version 2>&1) || true
    if grep -qx "Client Version: $version" <<<"$out"; then pass "release linux/arm64 (qemu-user): lockstep version says $version"; else fail "arm64 lockstep version: $out"; fi
  else
    echo "SKIP release linux/arm64 under qemu: qemu-user-static could not be downloaded"
  fi
fi

echo "verify: $failures failure(s)"
[ "$failures" -eq 0 ]
