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
for id in $($HS list --data-dir "$DATA" --json | python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.load(sys.stdin)["snapshots"]))'); do
  $HS verify --data-dir "$DATA" --id "$id"
  printf '  %s: ' "$id"; $BW sum "$DATA/backups/$id/data"
done
printf '  live data, read without the lock (mid-transfer, so it may differ): '; $BW sum "$DATA"

say "the same as JSON, for scripts"
$HS create --data-dir "$DATA" --label json-demo --json

say "delete one"
FIRST=$($HS list --data-dir "$DATA" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][0]["id"])')
$HS delete --data-dir "$DATA" --id "$FIRST"
$HS list --data-dir "$DATA"

say "stop the writer, then break the live data: delete accounts, replace one, delete the big file"
kill "$WRITER_PID"; wait "$WRITER_PID" || true; WRITER_PID=
LAST=$($HS list --data-dir "$DATA" --json | python3 -c 'import json,sys; print([s["id"] for s in json.load(sys.stdin)["snapshots"] if s["id"].endswith("_third")][0])')
rm "$DATA"/accounts/acct-00[0-4].bal "$DATA/db/000001.sst"
echo 999999 > "$DATA/accounts/new.tmp" && mv "$DATA/accounts/new.tmp" "$DATA/accounts/acct-010.bal"
printf '  live data now: '; $BW sum "$DATA"

say "what a restore of $LAST would change (dry run: nothing changes)"
$HS restore --data-dir "$DATA" --id "$LAST" --app-version 1.2.3 --dry-run

say "a restore that the version rules refuse (exit 5): 1.1.0 is older than the snapshot's 1.2.3"
$HS restore --data-dir "$DATA" --id "$LAST" --app-version 1.1.0 || echo "  (exit $?)"

say "restore: every file of the snapshot re-hashed first, then a journaled swap"
$HS restore --data-dir "$DATA" --id "$LAST" --app-version 1.2.9
printf '  live data after restore: '; $BW sum "$DATA"
ls -l "$DATA/db/000001.sst"
$HS verify --data-dir "$DATA" --id "$LAST"

REPO="file://$WORK/archive"
say "off-site: upload every snapshot to a file:// archive (deduplicated: later ones send only what changed)"
for id in $($HS list --data-dir "$DATA" --json | python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.load(sys.stdin)["snapshots"]))'); do
  $HS upload --data-dir "$DATA" --id "$id" --remote "$REPO"
done
$HS archive ls --remote "$REPO"
$HS archive check --remote "$REPO" --read-data

say "lose the local snapshot, then download it back (every chunk and file verified) and restore it"
$HS delete --data-dir "$DATA" --id "$LAST"
rm "$DATA"/accounts/acct-01*.bal
$HS download --data-dir "$DATA" --id "$LAST" --remote "$REPO"
$HS restore --data-dir "$DATA" --id "$LAST" --app-version 1.2.9 --no-failsafe
printf '  live data after the downloaded restore: '; $BW sum "$DATA"
say "done: the demo dir $WORK is removed on exit"
