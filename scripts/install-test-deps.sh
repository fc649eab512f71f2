#!/usr/bin/env bash
# Installs what the test suite needs, cached outside the checkout so a fresh
# clone reuses it. Today the suite needs only Go and /dev/shm (a tmpfs, for
# the "backups on another filesystem" test); MinIO and etcd are added here
# with the archive and cluster packages.
set -euo pipefail
CACHE="${HOTSNAP_CACHE:-$HOME/.cache/hotsnap}"
mkdir -p "$CACHE/bin"
command -v go >/dev/null || { echo "install-test-deps: Go is not on PATH" >&2; exit 1; }
if [ ! -d /dev/shm ] || [ ! -w /dev/shm ]; then
  echo "install-test-deps: /dev/shm (tmpfs) is needed by the same-filesystem test" >&2
  exit 1
fi
go mod download
echo "install-test-deps: ok (cache: $CACHE)"
