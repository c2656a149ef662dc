#!/usr/bin/env bash
# Builds (or reuses) e2e/helm — Helm's template/lint/install/uninstall from its Go packages — and
# prints the binary's path (e2e/go-tool.sh: cached under a hash of its sources and the Go version).
# Measured 2026-11-30 on the 2-core machine at load average ~25 (five builds beside it), empty
# GOMODCACHE and GOCACHE: 31 min wall, 7.5 min CPU (modules 410 MB, build cache 251 MB), binary
# 57 MB; with a warm Go build cache a changed main.go relinks in ~30 s. On an idle machine expect
# roughly the CPU time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../go-tool.sh" "$here"
