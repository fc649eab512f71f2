#!/usr/bin/env bash
# Capture against `cp -al`, side by side in one run (issue 17): for each
# size, N files of 1 KiB in N/100 dirs plus a bank of 50 accounts whose
# writer (examples/bankwriter, following the flock write gate) renames
# files all the time. Each of RUNS rounds, page cache dropped before each
# command: `cp -al` of the N files, a first create (no earlier snapshot:
# every file hashed) and a re-create of the unchanged tree (CAPTURE_CACHE=warm:
# the cache is not dropped, after one unmeasured cp -al). Reported: the
# medians of the whole commands and of the write pause (lockHeldMs), and
# their ratios to cp -al. Bars: pause <= 0.1 x cp -al at 200k files and
# <= 0.2 x at 10k; re-create <= 1.3 x; first create <= 2 x.
# Every size runs on a fresh ext4 loop image (root; see bench-scale.sh).
#
#   bash scripts/bench-capture.sh
#   CAPTURE_SIZES=10000 CAPTURE_RUNS=5 bash scripts/bench-capture.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${CAPTURE_SIZES:-10000 200000}"
RUNS="${CAPTURE_RUNS:-3}"
CACHE_MODE="${CAPTURE_CACHE:-cold}"
[ "$(id -u)" = 0 ] || { echo "bench-capture: needs root (a loop mount, drop_caches)" >&2; exit 1; }
go build -o bin/hotsnap ./cmd/hotsnap
go build -o bin/gendata ./scripts/gendata
go build -o bin/bankwriter ./examples/bankwriter
HS="$PWD/bin/hotsnap"
WORK=$(mktemp -d "${CAPTURE_WORK:-/tmp}/hotsnap-capture.XXXXXX")
MNT=; WRITER=
cleanup() {
  [ -n "$WRITER" ] && kill "$WRITER" 2>/dev/null && wait "$WRITER" 2>/dev/null || true
  [ -n "$MNT" ] && { umount "$MNT" 2>/dev/null || umount -l "$MNT"; }
  rm -rf "$WORK"
}
trap cleanup EXIT
cold() { sync; [ "$CACHE_MODE" = warm ] || echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s%N; }
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }
field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])[sys.argv[1]])' "$1"; }

echo "# $(date -u +%FT%TZ), $(nproc) cores, $(go version | cut -d' ' -f3), $(uname -r), $RUNS rounds, $CACHE_MODE cache"
for N in $SIZES; do
  MNT="$WORK/mnt"; mkdir -p "$MNT"
  truncate -s 6G "$WORK/fs.img"; mkfs.ext4 -F -q -i 4096 -E lazy_itable_init=0,lazy_journal_init=0 "$WORK/fs.img"; mount -o loop "$WORK/fs.img" "$MNT"
  D="$MNT/data"
  bin/gendata -dir "$D/files" -files "$N" -dirs $(( N / 100 )) -filesize 1KiB >/dev/null
  bin/bankwriter run --data-dir "$D" --accounts 50 --init --writers 1 >/dev/null 2>&1 & sleep 0.3; kill $!; wait $! 2>/dev/null || true
  bin/bankwriter run --data-dir "$D" --accounts 50 --writers 1 >/dev/null 2>&1 & WRITER=$!
  sleep 0.3
  # cp -al copies the N files (not the bank, whose writer renames files
  # under it: cp fails on a name that went away).
  [ "$CACHE_MODE" = warm ] && { cp -al "$D/files" "$MNT/cpal"; rm -rf "$MNT/cpal"; }
  CP=(); FIRST=(); FIRSTP=(); RE=(); REP=(); RESC=()
  for _ in $(seq "$RUNS"); do
    cold; t0=$(now); cp -al "$D/files" "$MNT/cpal"; t1=$(now); CP+=("$(( (t1 - t0) / 1000000 ))")
    rm -rf "$MNT/cpal"
    # No earlier snapshot: the first create hashes every file.
    "$HS" list -d "$D" --json | python3 -c 'import json,sys; [print(s["id"]) for s in json.load(sys.stdin)["snapshots"]]' | xargs -r -n1 "$HS" delete -d "$D" --id >/dev/null
    cold; t0=$(now); out=$("$HS" create -d "$D" --quiesce flock --json); t1=$(now)
    FIRST+=("$(( (t1 - t0) / 1000000 ))"); FIRSTP+=("$(echo "$out" | field lockHeldMs)")
    cold; t0=$(now); out=$("$HS" create -d "$D" --quiesce flock --json); t1=$(now)
    RE+=("$(( (t1 - t0) / 1000000 ))"); REP+=("$(echo "$out" | field lockHeldMs)"); RESC+=("$(echo "$out" | field rescannedDirs)")
  done
  kill "$WRITER"; wait "$WRITER" 2>/dev/null || true; WRITER=
  cp_=$(med "${CP[@]}")
  echo "## $N files in $(( N / 100 )) dirs + a bank of 50 accounts with a renaming writer"
  printf '%-34s %10s %10s\n' measure "median ms" "x cp -al"
  printf '%-34s %10s %10s\n' "cp -al" "$cp_" 1.00
  for row in "first create:FIRST" "first create, writes paused:FIRSTP" "re-create:RE" "re-create, writes paused:REP"; do
    name=${row%%:*}; arr="${row#*:}[@]"; m=$(med "${!arr}")
    printf '%-34s %10s %10s\n' "$name" "$m" "$(python3 -c "print(f'{$m / $cp_:.3f}')")"
  done
  echo "# dirs listed again under the lock (re-creates): ${RESC[*]}"
  umount "$MNT"; rm -f "$WORK/fs.img"; MNT=
done
