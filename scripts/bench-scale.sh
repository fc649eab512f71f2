#!/usr/bin/env bash
# The archive at scale: N small files (1 KiB each, 1,000 a dir), every
# command timed with its peak RSS (/usr/bin/time), hotsnap against restic
# on the same data and the same MinIO, in one run. Two sizes show how time
# grows, each command after dropping the page cache, dentries and inodes
# (bars: peak RSS <= 512 MiB each, 1M files <= 2.2 x the time of 500k;
# three floors, the files' creation, a cold read of every file and a cp -al
# of the tree, show how the filesystem itself grows;
# download + restore <= 0.6 x restic's restore). Every step runs at both
# sizes before the next step, so each ratio compares two runs close in
# time. The last step times download + restore as a user runs them, the
# restore right after the download, from one cold start to a final sync,
# against restic's restore, which ends with a sync too (the protocol of
# scripts/bench-archive.sh; the bar-3 ratio).
#
#   bash scripts/bench-scale.sh                 # 500k and 1M files
#   SCALE_SIZES="250000" bash scripts/bench-scale.sh
#   SCALE_LAYOUT=bydir bash scripts/bench-scale.sh   # each dir's files made together
#   SCALE_LOOP_DIO=1      # the loop devices with direct I/O (below)
#   BENCH_SUMMARY=FILE    # also write the ratios there as key=value (scripts/bench-restore.sh reads them)
#
# Needs: minio in ~/.cache/hotsnap/bin (make test-deps), restic on PATH
# (Debian package) or in the cache. Takes long (file creation alone is
# about 2 minutes per million files here).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${SCALE_SIZES:-500000 1000000}"
# Files per directory, the same at every size (SCALE_FILES_PER_DIR): a
# directory of twice the files is slower to create and read in by itself
# (ext4's hashed directories), which is the filesystem's growth, not ours.
FPD="${SCALE_FILES_PER_DIR:-1000}"
# How gendata orders the making of the files (SCALE_LAYOUT): rr, round-robin
# over the dirs, so a dir's neighbours are N/1000 files apart on the disk
# (their distance doubles with N, and reading in name order with it); bydir,
# a dir's files one after the other, so the tree of 1M files is two trees
# of 500k side by side.
case "${SCALE_LAYOUT:-rr}" in rr) LAYOUT= ;; bydir) LAYOUT=-bydir ;; *) echo "bench-scale: SCALE_LAYOUT is rr or bydir" >&2; exit 2 ;; esac
# How the images are attached (SCALE_LOOP_DIO): by default `mount -o loop`,
# whose loop device writes through the page cache of the image file, so
# every page written is in memory twice, and what the kernel writes back
# is copied once more into the image's cache. On this VM memory not
# touched for a while is handed back to the host and costs a fault into
# it when touched again; at a million files a download fills about twice
# the memory a run at 500k does, and paid for that memory's first touch
# (docs/benchmarks.md, stop 37). SCALE_LOOP_DIO=1 attaches the images with
# direct I/O (losetup --direct-io=on): one copy in memory, as on a real
# disk, but no readahead of the image file either, so cold reads are
# slower at both sizes.
DIO="${SCALE_LOOP_DIO:-}"
CACHE="${HOTSNAP_CACHE:-$HOME/.cache/hotsnap}/bin"
MINIO="$CACHE/minio"
RESTIC="$CACHE/restic"; [ -x "$RESTIC" ] || RESTIC="$(command -v restic || echo "$CACHE/restic")"
for b in "$MINIO" "$RESTIC"; do [ -x "$b" ] || { echo "bench-scale: missing $b" >&2; exit 1; }; done
go build -o bin/hotsnap ./cmd/hotsnap
go build -o bin/gendata ./scripts/gendata
HS="$PWD/bin/hotsnap"
WORK=$(mktemp -d "${SCALE_WORK:-/tmp}/hotsnap-scale.XXXXXX")
source scripts/lib-minio.sh
export RESTIC_PASSWORD=bench

echo "# layout ${SCALE_LAYOUT:-rr}, $FPD files a dir${DIO:+, loop devices with direct I/O}"
echo "# $(date -u +%FT%TZ), $(nproc) cores, $(go version | cut -d' ' -f3), restic $("$RESTIC" version | cut -d' ' -f2); MinIO on 127.0.0.1:$PORT"
printf '%-10s %-26s %10s %10s\n' files command seconds "peak MiB"
declare -A T
timed() { # label cmd...
  local label=$1; shift
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || { echo "bench-scale: $label failed:" >&2; tail -5 "$WORK/err" >&2; exit 1; }
  read -r secs kib < "$WORK/time"
  T[$label]=$secs
  printf '%-10s %-26s %10s %10s\n' "$N" "${label#*:}" "$secs" "$((kib >> 10))"
}
# Each size runs on a fresh ext4 (a sparse loop image, its inode tables
# written at mkfs, not by a background thread during the run), so the second size
# does not pay for the first's cleanup: ext4 skips inodes deleted in the
# last minutes when it allocates new ones, and creating a million files
# right after deleting two million ran at a third of the speed here. Where
# a loop mount is not possible (not root), plain directories are used and
# the comparison of sizes is then less fair (said in the output).
# Every size gets an image of the same size (the largest size's), so the
# sizes differ in their number of files only, not in the filesystem's
# geometry (block groups, inode tables).
MAXN=0; for N in $SIZES; do [ "$N" -gt "$MAXN" ] && MAXN=$N; done
IMG_GB=$(( MAXN / 40000 + 4 ))
attach() { # image mountpoint
  if [ -z "$DIO" ]; then mount -o loop "$1" "$2" 2>/dev/null; return; fi
  local dev
  dev=$(losetup --direct-io=on -f --show "$1" 2>/dev/null) || return 1
  mount "$dev" "$2" 2>/dev/null || { losetup -d "$dev"; return 1; }
}
fresh_fs() { # N -> sets D and MNT
  MNT="$WORK/mnt$1"; mkdir -p "$MNT"
  if truncate -s "$IMG_GB"G "$WORK/fs$1.img" && mkfs.ext4 -F -q -i 4096 -E lazy_itable_init=0,lazy_journal_init=0 "$WORK/fs$1.img" 2>/dev/null \
      && attach "$WORK/fs$1.img" "$MNT"; then
    D="$MNT"
  else
    echo "# $1: no fresh filesystem (needs root and mkfs.ext4): running in $WORK, beside the other sizes"
    MNT=; D="$WORK/n$1"
  fi
}
MNTS=()
drop_fs() { # a device losetup attached stays until detached
  local m dev
  for m in "${MNTS[@]}"; do
    dev=$(findmnt -n -o SOURCE "$m" 2>/dev/null || true)
    umount "$m" 2>/dev/null || umount -l "$m"
    if [ -n "$DIO" ] && [ -n "$dev" ]; then losetup -d "$dev" 2>/dev/null || true; fi
  done
  MNTS=()
}
trap 'drop_fs 2>/dev/null || true; cleanup' EXIT
# Every size has its image from the start, and each step below runs at
# every size before the next step starts, the sizes' order swapped from
# step to step: a ratio of two sizes compares two runs a minute apart,
# not two runs a quarter of an hour apart (this machine's own speed drifts
# that much), and neither size always goes first.
declare -A DD SNAP
for N in $SIZES; do
  fresh_fs "$N"; DD[$N]=$D; [ -n "$MNT" ] && MNTS+=("$MNT")
  mkdir -p "$D/fresh"
done
STEP=0
step() { # fn: runs fn at every size, with N and D set
  local order n
  if (( STEP % 2 )); then order=$(printf '%s\n' $SIZES | sort -rn); else order=$(printf '%s\n' $SIZES | sort -n); fi
  STEP=$((STEP + 1))
  for n in $order; do N=$n; D=${DD[$n]}; "$1"; done
}
# The floors, each a measure of how the filesystem itself grows with the
# number of files: the write floor (gendata making the files, one writer,
# then sync: what a download must create), the read floor (every file
# read once, cold, by 4 readers of cat: what a first create, which hashes
# every byte, and an upload must read) and the link floor (cp -al of the
# tree, cold: what a create's or a restore's tree of links costs).
s_write() { timed "$N:write floor" sh -c '"$1" -dir "$2" -files "$3" -dirs "$4" -filesize 1KiB $5 >/dev/null && sync' sh "$PWD/bin/gendata" "$D/data" "$N" "$(( N / FPD ))" "$LAYOUT"; }
s_read() { timed "$N:read floor" sh -c 'find "$1" -type f -print0 | xargs -0 -P4 -n 2000 cat > /dev/null' sh "$D/data"; }
s_link() { timed "$N:link floor" cp -al "$D/data" "$D/links"; }
s_create() {
  timed "$N:create" "$HS" create -d "$D/data" --quiesce none --json
  SNAP[$N]=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["id"])' "$WORK/out")
}
s_verify() { timed "$N:verify" "$HS" verify -d "$D/data" --id "${SNAP[$N]}"; }
s_upload() { timed "$N:upload" "$HS" upload -d "$D/data" --id "${SNAP[$N]}" --remote "s3://hotsnap-$N/repo"; }
s_ls() { timed "$N:archive ls" "$HS" archive ls --remote "s3://hotsnap-$N/repo"; }
s_check() { timed "$N:archive check" "$HS" archive check --remote "s3://hotsnap-$N/repo"; }
s_download() { timed "$N:download" "$HS" download -d "$D/fresh" --id "${SNAP[$N]}" --remote "s3://hotsnap-$N/repo"; }
same() { same_tree "$D/data" "$1" "$N: $2"; }  # TREE WHAT
s_restore() {
  timed "$N:restore" "$HS" restore -d "$D/fresh" --id "${SNAP[$N]}"
  same "$D/fresh" "the restored tree"
}
# The contenders of bar 3 end with a sync, as in scripts/bench-archive.sh:
# hotsnap syncs what it made before it returns; restic does not, and
# without one its restore's writeback would be left to the steps after.
WITHSYNC=(sh -c '"$@" && sync' sh)
# The tree restored from the archive stays until the end: a million files
# deleted right before restic's restore could slow its creates.
s_direct() {
  mkdir -p "$D/direct"
  timed "$N:restore --from-archive" "${WITHSYNC[@]}" "$HS" restore -d "$D/direct" --id "${SNAP[$N]}" --from-archive --remote "s3://hotsnap-$N/repo"
  same "$D/direct" "the tree restored --from-archive"
}
s_gc() { timed "$N:archive gc" "$HS" archive gc --remote "s3://hotsnap-$N/repo"; }
s_rbackup() {
  export RESTIC_REPOSITORY="s3:http://127.0.0.1:$PORT/restic-$N"
  "$RESTIC" init --repository-version 2 >/dev/null
  timed "$N:restic backup" "$RESTIC" backup -q --exclude "$D/data/.hotsnap" --exclude "$D/data/backups" "$D/data"
}
s_rrestore() {
  export RESTIC_REPOSITORY="s3:http://127.0.0.1:$PORT/restic-$N"
  timed "$N:restic restore" "${WITHSYNC[@]}" "$RESTIC" restore latest --target "$D/restic-restore"
}
# download + restore as a user runs them: the restore right after the
# download (the tree it links from is still in the cache), the page
# cache dropped once, before the download; the steps above time each
# command cold, for the growth from 500k to 1M.
s_pair() {
  mkdir -p "$D/pair"
  timed "$N:download + restore" sh -c '"$1" download -d "$2" --id "$3" --remote "$4" && "$1" restore -d "$2" --id "$3" && sync' \
    sh "$HS" "$D/pair" "${SNAP[$N]}" "s3://hotsnap-$N/repo"
  same "$D/pair" "the tree downloaded and restored"
}
for s in s_write s_read s_link s_create s_verify s_upload s_ls s_check s_download s_restore s_direct s_gc s_rbackup s_rrestore s_pair; do
  step "$s"
done
drop_fs
set -- $SIZES
grow() { python3 -c "print(f'{${T[$2:$3]}/max(${T[$1:$3]},0.01):.2f}')"; }  # small large command
dr_restic() { python3 -c "print(f'{${T[$1:download + restore]}/${T[$1:restic restore]}:.2f}')"; }  # N
drcold_restic() { python3 -c "print(f'{(${T[$1:download]}+${T[$1:restore]})/${T[$1:restic restore]}:.2f}')"; }  # N
direct_restic() { python3 -c "print(f'{${T[$1:restore --from-archive]}/${T[$1:restic restore]}:.2f}')"; }  # N
if [ $# -ge 2 ]; then
  echo "# time of $2 files over $1 files (bar: <= 2.2 for 1M over 500k; the floors show how the filesystem grows):"
  for c in "write floor" "read floor" "link floor" create verify upload "archive ls" "archive check" download restore "restore --from-archive" "archive gc"; do
    printf '#   %-22s %s\n' "$c" "$(grow "$1" "$2" "$c")"
  done
fi
for N in $SIZES; do
  printf '# %s files over restic restore (bar <= 0.6): download + restore %s (each command cold: %s), restore --from-archive %s\n' "$N" "$(dr_restic "$N")" "$(drcold_restic "$N")" "$(direct_restic "$N")"
done
if [ -n "${BENCH_SUMMARY:-}" ] && [ $# -ge 2 ]; then
  {
    for c in create upload download restore "archive gc"; do
      printf 'grow_%s=%s ' "${c#archive }" "$(grow "$1" "$2" "$c")"
    done
    for c in write read link; do printf 'grow_%sfloor=%s ' "$c" "$(grow "$1" "$2" "$c floor")"; done
    for N in $SIZES; do
      printf 'dr_restic_%s=%s drcold_restic_%s=%s direct_restic_%s=%s ' "$N" "$(dr_restic "$N")" "$N" "$(drcold_restic "$N")" "$N" "$(direct_restic "$N")"
    done
    echo
  } > "$BENCH_SUMMARY"
fi
