#!/usr/bin/env bash
# The Debian packages a local node needs; `--check` only reports whether they are there.
# Also (not part of --check, which node-up.sh uses) what the unit tests and `npm ci` need: SoftHSM2
# for the PKCS#11 key backend's tests, and a C++ toolchain for pkcs11js's node-gyp build.
set -euo pipefail
# shellcheck source=node.env
. "$(cd "$(dirname "$0")" && pwd)/node.env"
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have containerd || need+=(containerd)
have runc || need+=(runc)
[ -x "$CNI_BIN_DIR/bridge" ] && [ -x "$CNI_BIN_DIR/host-local" ] && [ -x "$CNI_BIN_DIR/loopback" ] \
  && [ -x "$CNI_BIN_DIR/portmap" ] || need+=(containernetworking-plugins)
have iptables || need+=(iptables)
have nft || need+=(nftables)
have socat || need+=(socat)
have unshare || need+=(util-linux)
if [ "${1:-}" = --check ]; then
  [ ${#need[@]} -eq 0 ] || { echo "missing: ${need[*]}" >&2; exit 1; }
  exit 0
fi
have softhsm2-util || need+=(softhsm2)
have g++ || need+=(g++)
have make || need+=(make)
have python3 || need+=(python3)
[ ${#need[@]} -eq 0 ] && exit 0
echo "[install-deps] apt-get install ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
