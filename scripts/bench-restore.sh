#!/usr/bin/env bash
# Restore at the floor (issue 30): N files of 1 KiB in N/100 dirs on a
# fresh ext4 loop image, the page cache dropped before every command, side
# by side in one run. The floors: `cp -al` of the tree (what a restore
# that only links costs) and a parallel read of every file (4 readers of
# cat: what a restore that re-hashes every byte must read). Measured: a
# first create, a re-create of the unchanged tree, a restore with
# --fast-verify and one with the full re-hash (the previous tree kept as
# a failsafe, a rename, and dropped after the timing; of the
# newest snapshot over the unchanged data dir); each as a median of RUNS
# and as a ratio to its floor. The bars of issue 30: first create <= 1.15 x
# the read floor, re-create <= 1.2 x cp -al, restore --fast-verify <= 1.3 x
# cp -al, full restore <= 1.2 x the read floor.
#
# With RESTORE_ARCHIVE=1 it also measures the archive's bars, each on a
# fresh ext4 loop image (scripts/bench-archive.sh, restic beside it):
# download + restore <= 1.1 x the write floor (a tar pipe + sync) on the
# mixed set at 512 MiB and 2 GiB and on 200,000 files of 1 KiB, and
# <= 0.6 x restic's restore on 200,000 files. With RESTORE_SCALE=1, the
# million-file bars (scripts/bench-scale.sh, 500k and 1M files): 1M at
# most 2.2 x 500k for create, upload, download, restore and gc, and
# download + restore <= 0.6 x restic's restore at both sizes (the two
# commands back to back from one cold start, restic's restore too, each
# ending with sync; the sum of the two each run cold is shown beside it,
# with no bar). It ends with every ratio beside its bar.
#
#   bash scripts/bench-restore.sh
#   RESTORE_SIZES=50000 RESTORE_RUNS=1 bash scripts/bench-restore.sh
#   RESTORE_BASELINE=/path/to/older/hotsnap bash scripts/bench-restore.sh
#     (also times that binary's restores, in the same rounds)
#   RESTORE_ARCHIVE=1 RESTORE_SCALE=1 bash scripts/bench-restore.sh
#     (every bar of issue 30; the scale part alone takes about 25 minutes)
#   RESTORE_LAYOUT=bydir bash scripts/bench-restore.sh
#     (each dir's files made one after the other, as a loop over the dirs
#     would make them; by default round-robin over the dirs, gendata's own)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${RESTORE_SIZES-200000}"   # RESTORE_SIZES= (empty): the archive parts alone
RUNS="${RESTORE_RUNS:-3}"
case "${RESTORE_LAYOUT:-rr}" in rr) LAYOUT= ;; bydir) LAYOUT=-bydir ;; *) echo "bench-restore: RESTORE_LAYOUT is rr or bydir" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "bench-restore: needs root (a loop mount, drop_caches)" >&2; exit 1; }
go build -o bin/hotsnap ./cmd/hotsnap
go build -o bin/gendata ./scripts/gendata
HS="$PWD/bin/hotsnap"
WORK=$(mktemp -d "${RESTORE_WORK:-/tmp}/hotsnap-restore.XXXXXX")
MNT=
cleanup() {
  [ -n "$MNT" ] && { umount "$MNT" 2>/dev/null || umount -l "$MNT"; }
  rm -rf "$WORK"
}
trap cleanup EXIT
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
BARS=()   # "measure|ratio|bar" lines for the summary
bar() { BARS+=("$1|$2|$3"); }

echo "# $(date -u +%FT%TZ), $(nproc) cores, $(go version | cut -d' ' -f3), $(uname -r), $RUNS rounds, layout ${RESTORE_LAYOUT:-rr}, cold cache before every command"
for N in $SIZES; do
  MNT="$WORK/mnt"; mkdir -p "$MNT"
  truncate -s 8G "$WORK/fs.img"; mkfs.ext4 -F -q -i 4096 -E lazy_itable_init=0,lazy_journal_init=0 "$WORK/fs.img"; mount -o loop "$WORK/fs.img" "$MNT"
  D="$MNT/data"
  # The files live in $D/files: the floors copy and read them alone, never
  # the snapshots and failsafes hotsnap keeps beside them in $D.
  bin/gendata -dir "$D/files" -files "$N" -dirs $(( N / 100 )) -filesize 1KiB $LAYOUT >/dev/null
  CP=(); RD=(); FIRST=(); RE=(); FAST=(); FULL=(); BFAST=(); BFULL=()
  for _ in $(seq "$RUNS"); do
    cold; t0=$(now); cp -al "$D/files" "$MNT/cpal"; t1=$(now); CP+=("$(ms "$t0" "$t1")"); rm -rf "$MNT/cpal"
    cold; t0=$(now); find "$D/files" -type f -print0 | xargs -0 -P4 -n 2000 cat > /dev/null; t1=$(now); RD+=("$(ms "$t0" "$t1")")
    "$HS" list -d "$D" --json | python3 -c 'import json,sys; [print(s["id"]) for s in json.loads(sys.stdin.read().strip().splitlines()[-1])["snapshots"]]' \
      | xargs -r -n1 "$HS" delete -d "$D" --id >/dev/null
    cold; t0=$(now); "$HS" create -d "$D" --quiesce none --json >/dev/null; t1=$(now); FIRST+=("$(ms "$t0" "$t1")")
    cold; t0=$(now); out=$("$HS" create -d "$D" --quiesce none --json); t1=$(now); RE+=("$(ms "$t0" "$t1")")
    ID=$(echo "$out" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["id"])')
    cold; t0=$(now); "$HS" restore -d "$D" --id "$ID" --quiesce none --fast-verify --json >/dev/null; t1=$(now); "$HS" failsafe drop -d "$D" --all >/dev/null; FAST+=("$(ms "$t0" "$t1")")
    cold; t0=$(now); "$HS" restore -d "$D" --id "$ID" --quiesce none --json >/dev/null; t1=$(now); "$HS" failsafe drop -d "$D" --all >/dev/null; FULL+=("$(ms "$t0" "$t1")")
    if [ -n "${RESTORE_BASELINE:-}" ]; then
      cold; t0=$(now); "$RESTORE_BASELINE" restore -d "$D" --id "$ID" --quiesce none --fast-verify --json >/dev/null; t1=$(now); "$HS" failsafe drop -d "$D" --all >/dev/null; BFAST+=("$(ms "$t0" "$t1")")
      cold; t0=$(now); "$RESTORE_BASELINE" restore -d "$D" --id "$ID" --quiesce none --json >/dev/null; t1=$(now); "$HS" failsafe drop -d "$D" --all >/dev/null; BFULL+=("$(ms "$t0" "$t1")")
    fi
  done
  cp_=$(med "${CP[@]}"); rd=$(med "${RD[@]}")
  echo "## $N files of 1 KiB in $(( N / 100 )) dirs"
  # Each measure's rounds too, in the order they ran: a median of three
  # hides how far apart they were.
  row() { printf '%-32s %10s %12s   %s\n' "$@"; }
  row measure "median ms" "x its floor" "rounds, ms"
  row "floor: cp -al" "$cp_" "" "${CP[*]}"
  row "floor: read every file (4 cat)" "$rd" "" "${RD[*]}"
  row "first create" "$(med "${FIRST[@]}")" "$(ratio "$(med "${FIRST[@]}")" "$rd") x read" "${FIRST[*]}"
  row "re-create" "$(med "${RE[@]}")" "$(ratio "$(med "${RE[@]}")" "$cp_") x cp -al" "${RE[*]}"
  row "restore --fast-verify" "$(med "${FAST[@]}")" "$(ratio "$(med "${FAST[@]}")" "$cp_") x cp -al" "${FAST[*]}"
  row "restore (full re-hash)" "$(med "${FULL[@]}")" "$(ratio "$(med "${FULL[@]}")" "$rd") x read" "${FULL[*]}"
  bar "$N files: first create / read floor" "$(ratio "$(med "${FIRST[@]}")" "$rd")" 1.15
  bar "$N files: re-create / cp -al" "$(ratio "$(med "${RE[@]}")" "$cp_")" 1.2
  bar "$N files: restore --fast-verify / cp -al" "$(ratio "$(med "${FAST[@]}")" "$cp_")" 1.3
  bar "$N files: restore (full) / read floor" "$(ratio "$(med "${FULL[@]}")" "$rd")" 1.2
  if [ -n "${RESTORE_BASELINE:-}" ]; then
    row "baseline restore --fast-verify" "$(med "${BFAST[@]}")" "$(ratio "$(med "${BFAST[@]}")" "$cp_") x cp -al" "${BFAST[*]}"
    row "baseline restore (full)" "$(med "${BFULL[@]}")" "$(ratio "$(med "${BFULL[@]}")" "$rd") x read" "${BFULL[*]}"
  fi
  umount "$MNT"; rm -f "$WORK/fs.img"; MNT=
done

# The archive's bars: each data set on a fresh loop image, MinIO and restic
# beside hotsnap (bench-archive.sh writes its ratios to BENCH_SUMMARY).
sumval() { python3 -c "import sys; d=dict(kv.split('=',1) for kv in open(sys.argv[1]).read().split()); print(d[sys.argv[2]])" "$1" "$2"; }
if [ -n "${RESTORE_ARCHIVE:-}" ]; then
  for set in "mixed 512MiB" "mixed 2GiB" "small 200000"; do
    read -r kind size <<<"$set"
    MNT="$WORK/mnt"; mkdir -p "$MNT"
    truncate -s 24G "$WORK/fs.img"; mkfs.ext4 -F -q -i 4096 -E lazy_itable_init=0,lazy_journal_init=0 "$WORK/fs.img"; mount -o loop "$WORK/fs.img" "$MNT"
    S="$WORK/summary.$kind.$size"
    echo "## download + restore: $set (scripts/bench-archive.sh)"
    if [ "$kind" = small ]; then
      TMPDIR="$MNT" BENCH_SUMMARY="$S" BENCH_SET=small BENCH_FILES="$size" bash scripts/bench-archive.sh
    else
      TMPDIR="$MNT" BENCH_SUMMARY="$S" BENCH_SIZE="$size" bash scripts/bench-archive.sh
    fi
    umount "$MNT"; rm -f "$WORK/fs.img"; MNT=
    bar "$set: download + restore / write floor" "$(sumval "$S" dr_floor)" 1.1
    bar "$set: restore --from-archive / write floor" "$(sumval "$S" direct_floor)" 1.1
    rb=0.6; [ "$size" = 2GiB ] && rb=-   # issue 30 sets no restic bar at 2 GiB
    bar "$set: download + restore / restic restore" "$(sumval "$S" dr_restic)" "$rb"
    bar "$set: restore --from-archive / restic restore" "$(sumval "$S" direct_restic)" "$rb"
  done
fi
if [ -n "${RESTORE_SCALE:-}" ]; then
  S="$WORK/summary.scale"
  echo "## a million files (scripts/bench-scale.sh)"
  SCALE_WORK="$WORK" BENCH_SUMMARY="$S" bash scripts/bench-scale.sh
  # The floors have no bar: they say how much of a command's growth is
  # the filesystem's own (download's floor is the write, create's and
  # upload's the read, restore's the link tree).
  for c in write read link; do bar "1M / 500k: $c floor (the filesystem)" "$(sumval "$S" "grow_${c}floor")" -; done
  for c in create upload download restore gc; do bar "1M / 500k: $c" "$(sumval "$S" "grow_$c")" 2.2; done
  for n in 500000 1000000; do
    bar "$n files: download + restore / restic restore" "$(sumval "$S" "dr_restic_$n")" 0.6
    bar "$n files: the same, each command cold" "$(sumval "$S" "drcold_restic_$n")" -
    bar "$n files: restore --from-archive / restic restore" "$(sumval "$S" "direct_restic_$n")" 0.6
  done
fi
echo "## every ratio beside its bar"
printf '%-58s %8s %6s %s\n' measure ratio bar ""
for b in "${BARS[@]}"; do
  IFS='|' read -r m r lim <<<"$b"
  if [ "$lim" = - ]; then verdict="(no bar)"; else verdict=$(python3 -c "print('ok' if $r <= $lim else 'OVER')"); fi
  printf '%-58s %8s %6s %s\n' "$m" "$r" "$lim" "$verdict"
done
