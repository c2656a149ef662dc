#!/usr/bin/env bash
# The cold path of build.sh (nothing cached yet), run for real with a stand-in `go` that takes
# longer than the progress ticker. A fresh machine is the only place that path runs otherwise, and
# it once ended the script right after the first compile (the ticker's `wait` returned 143 under
# `set -e`): this fails in seconds instead.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/cache"
cat > "$tmp/bin/go" <<'GO'
#!/usr/bin/env bash
# Stand-in for go: `go env GOVERSION` and `go build ... -o OUT PKG` (slowly).
case $1 in
  env) echo go1.26.8 ;;
  build)
    out=; while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
    sleep 2.5
    printf '#!/bin/sh\necho stand-in\n' > "$out"; chmod +x "$out" ;;
  *) echo "stand-in go: unexpected $*" >&2; exit 2 ;;
esac
GO
chmod +x "$tmp/bin/go"

fail() { echo "FAIL: $*" >&2; exit 1; }
run() { PATH="$tmp/bin:$PATH" LOCKSTEP_CACHE="$tmp/cache" LOCKSTEP_BUILD_TICK=1 bash "$here/build.sh" "$@"; }

rc=0; out=$(run etcd kube-apiserver 2> "$tmp/err") || rc=$?
[ $rc -eq 0 ] || { cat "$tmp/err" >&2; fail "cold build exited $rc"; }
grep -q 'still building etcd' "$tmp/err" || fail "the progress ticker never fired (the test must outlast it)"
# shellcheck source=versions.env
. "$here/versions.env"
[ -x "$tmp/cache/etcd-$ETCD_VERSION/etcd" ] || fail "etcd was not moved into the cache"
[ -x "$tmp/cache/kube-$KUBE_VERSION/kube-apiserver" ] || fail "the second binary was not built"
[ ! -e "$tmp/cache/etcd-$ETCD_VERSION/etcd.tmp" ] || fail "a .tmp binary was left behind"
grep -qx "etcd=$tmp/cache/etcd-$ETCD_VERSION" <<< "$out" || fail "build.sh did not print the bin directory: $out"

# Warm path: nothing rebuilt.
run etcd > /dev/null 2> "$tmp/err2"
! grep -q building "$tmp/err2" || fail "a cached binary was rebuilt"

# A failing compile fails the script with the compiler's exit code, and leaves nothing in the cache.
# shellcheck disable=SC2016 # the stand-in's own $1
printf '#!/usr/bin/env bash\n[ "$1" = env ] && { echo go1.26.8; exit 0; }\nexit 7\n' > "$tmp/bin/go"
rc=0; run cert-manager >/dev/null 2>&1 || rc=$?
[ $rc -eq 7 ] || fail "a failed compile returned $rc, want 7"
[ ! -e "$tmp/cache/cert-manager-$CERT_MANAGER_VERSION/cert-manager-controller" ] || fail "a failed build left a binary"
echo "build.sh cold path: ok"
