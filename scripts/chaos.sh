#!/usr/bin/env bash
# Chaos run: ROUNDS rounds (default 200) of real commands (create and
# upload, forget, gc) against a real MinIO with faults injected into every
# remote call (errors, stalls, short reads, truncated writes; a seed per
# round) and kill -9 at random moments; then, over a clean connection,
# archive check --read-data and a download of every snapshot whose upload
# exited 0. Prints: rounds, faults injected, commands killed, uploads
# acknowledged, snapshots lost (must be 0), commands that hung past their
# bound (must be 0), panics (must be 0). `make test` runs 10 rounds.
# HOTSNAP_CHAOS_SEED=N replays a run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-200}"
bash scripts/install-test-deps.sh >/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
HOTSNAP_CHAOS_ROUNDS="$ROUNDS" go test -count=1 -timeout 90m -run '^TestChaos$' -v ./cmd/hotsnap >"$log" 2>&1 || status=$?
grep -E 'chaos( seed|:)|acknowledged snapshot|panicked|FAIL|^ok' "$log" || true
[ "$status" = 0 ] || { tail -40 "$log"; exit "$status"; }
