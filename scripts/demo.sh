#!/usr/bin/env bash
# make demo: hot snapshots of a live data dir on one node, no servers.
# A real writer process (examples/bankwriter) moves money between account
# files under the write-gate protocol while hotsnap snapshots the data dir;
# every snapshot must hold the opening total.
set -euo pipefail
cd "$(dirname "$0")/.."
HS=bin/hotsnap
BW=bin/bankwriter
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hotsnap-demo.XXXXXX")
DATA="$WORK/data"
WRITER_PID=
cleanup() {
  [ -n "$WRITER_PID" ] && kill "$WRITER_PID" 2>/dev/null && wait "$WRITER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }

say "a data dir with 50 accounts of 1000 each, and a live writer moving money"
mkdir -p "$DATA/db"
head -c 8M /dev/urandom > "$DATA/db/000001.sst"
printf 'MANIFEST-000001\n' > "$DATA/db/CURRENT"
$BW run --data-dir "$DATA" --accounts 50 --init --writers 4 &
WRITER_PID=$!
sleep 0.5
echo "writer pid $WRITER_PID; data dir $DATA"

say "three snapshots while the writer runs (flock write gate, default)"
for label in first second third; do
  $HS create --data-dir "$DATA" --label "$label" --copy CURRENT --app-version 1.2.3
  sleep 0.3
done

say "list"
$HS list --data-dir "$DATA"

say "every snapshot verifies and holds the opening total (50 x 1000 = 50000)"
for id in $($HS list --data-dir "$DATA" --json | python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.load(sys.stdin)))'); do
  $HS verify --data-dir "$DATA" --id "$id"
  printf '  %s: ' "$id"; $BW sum "$DATA/backups/$id/data"
done
printf '  live data, read without the lock (mid-transfer, so it may differ): '; $BW sum "$DATA"

say "the same as JSON, for scripts"
$HS create --data-dir "$DATA" --label json-demo --json

say "delete one"
FIRST=$($HS list --data-dir "$DATA" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
$HS delete --data-dir "$DATA" --id "$FIRST"
$HS list --data-dir "$DATA"

kill "$WRITER_PID"; wait "$WRITER_PID" || true; WRITER_PID=
say "done: the demo dir $WORK is removed on exit"
