#!/usr/bin/env bash
# Installs what the test suite needs, cached outside the checkout so a fresh
# clone (and CI on a reused machine) reuses it:
#   - MinIO server, built from the Go module proxy at a pinned version (about
#     4 minutes the first time), for the S3 store and archive tests;
#   - /dev/shm (a tmpfs), for the "backups on another filesystem" test;
#   - xfsprogs (Debian), for the reflink tests on a loop-mounted XFS image.
set -euo pipefail
CACHE="${HOTSNAP_CACHE:-$HOME/.cache/hotsnap}"
BIN="$CACHE/bin"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
mkdir -p "$BIN"
command -v go >/dev/null || { echo "install-test-deps: Go is not on PATH" >&2; exit 1; }
if [ ! -d /dev/shm ] || [ ! -w /dev/shm ]; then
  echo "install-test-deps: /dev/shm (tmpfs) is needed by the same-filesystem test" >&2
  exit 1
fi
go mod download

# mkfs.xfs for the reflink tests (they mount an XFS image on a loop device).
if ! command -v mkfs.xfs >/dev/null && [ ! -x /usr/sbin/mkfs.xfs ] && [ ! -x /sbin/mkfs.xfs ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install-test-deps: installing xfsprogs (Debian) for the reflink tests"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q xfsprogs >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q xfsprogs >/dev/null; }
  else
    echo "install-test-deps: mkfs.xfs is missing: install xfsprogs (the reflink tests need it)" >&2
    [ -n "${CI:-}" ] && exit 1
  fi
fi

# MinIO: rebuilt only when the pinned version changes.
if [ ! -x "$BIN/minio" ] || [ "$(cat "$BIN/minio.version" 2>/dev/null)" != "$MINIO_VERSION" ]; then
  echo "install-test-deps: building MinIO $MINIO_VERSION into $BIN (takes a few minutes, once)"
  GOBIN="$BIN" GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION"
  echo "$MINIO_VERSION" > "$BIN/minio.version"
fi
echo "install-test-deps: ok (minio: $BIN/minio)"
