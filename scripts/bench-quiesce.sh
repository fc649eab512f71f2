#!/usr/bin/env bash
# Quiescers that stop processes, and reflinks, measured side by side in one
# run (issue "Real applications"; figures for the README and notes):
#  1. the write pause of `create --quiesce freeze` on a 4-process tree in a
#     cgroup against the flock write-gate protocol, same data, same writers
#     (4 bankwriter processes, which also follow the gate);
#  2. on a loop-mounted XFS with reflinks: `create --link-mode reflink`
#     (its pause, and the whole command) against `cp -a --reflink=always`
#     of the same tree. Bar: pause <= cp's time.
# Needs root (cgroups, mount), mkfs.xfs. Takes a few minutes.
#
#   bash scripts/bench-quiesce.sh
#   QUIESCE_FILES=10000 QUIESCE_RUNS=20 bash scripts/bench-quiesce.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FILES="${QUIESCE_FILES:-10000}"
RUNS="${QUIESCE_RUNS:-20}"
[ "$(id -u)" = 0 ] || { echo "bench-quiesce: needs root (cgroups, a loop mount)" >&2; exit 1; }
go build -o bin/hotsnap ./cmd/hotsnap
go build -o bin/gendata ./scripts/gendata
go build -o bin/bankwriter ./examples/bankwriter
HS="$PWD/bin/hotsnap"
WORK=$(mktemp -d "${QUIESCE_WORK:-/tmp}/hotsnap-quiesce.XXXXXX")
CG=""; MNT=""; PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$CG" ]; then echo 0 > "$CG/cgroup.freeze" 2>/dev/null || true; rmdir "$CG" 2>/dev/null || true; fi
  if [ -n "$MNT" ]; then umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
CG2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
[ -n "$CG2" ] || { echo "bench-quiesce: no cgroup2 mount" >&2; exit 1; }

stats() { # prints "median max" of the numbers on stdin
  sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f %.2f\n", m, a[NR]}'
}
pauses() { # data-dir flags... : RUNS creates, prints the lockHeldMs of each
  local d=$1; shift
  for _ in $(seq "$RUNS"); do
    "$HS" create --data-dir "$d" --json "$@" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["lockHeldMs"])'
    "$HS" prune --data-dir "$d" --keep-last 1 >/dev/null
    sleep 0.05
  done
}

echo "# $(date -u +%FT%TZ), $(nproc) cores, $(go version | cut -d' ' -f3), $(uname -r)"
echo "## 1. write pause, $FILES files of 1 KiB + a bank, 4 writer processes, $RUNS creates each (ms)"
D="$WORK/data"
bin/gendata -dir "$D/files" -files "$FILES" -dirs 100 -filesize 1KiB >/dev/null
bin/bankwriter run --data-dir "$D" --accounts 50 --init --writers 1 & sleep 0.5; kill $! ; wait $! 2>/dev/null || true
CG="$CG2/hotsnap-bench-$$"; mkdir "$CG"
for i in 1 2 3 4; do
  sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG" bin/bankwriter run --data-dir "$D" --accounts 50 --writers 1 >/dev/null 2>&1 &
  PIDS+=($!)
done
sleep 0.5
printf '%-34s %10s %10s\n' quiescer median max
read -r m x < <(pauses "$D" --quiesce flock | stats); printf '%-34s %10s %10s\n' "flock (write-gate protocol)" "$m" "$x"; FLOCK=$m
read -r m x < <(pauses "$D" --quiesce freeze --cgroup "$CG" | stats); printf '%-34s %10s %10s\n' "freeze (cgroup v2, 4 processes)" "$m" "$x"; FREEZE=$m
read -r m x < <(pauses "$D" --quiesce none | stats); printf '%-34s %10s %10s\n' "none (the link tree alone)" "$m" "$x"
python3 -c "print('freeze / flock median: %.2f' % ($FREEZE / $FLOCK))"
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=()
rmdir "$CG"; CG=""

echo "## 2. reflink on XFS (loop image): create --link-mode reflink vs cp -a --reflink=always"
IMG="$WORK/xfs.img"; MNT="$WORK/mnt"; mkdir "$MNT"
truncate -s 6G "$IMG"; mkfs.xfs -q -m reflink=1 "$IMG"; mount -o loop "$IMG" "$MNT"
for set in "files:$FILES files of 1 KiB" "mixed:1 GiB mixed set"; do
  kind=${set%%:*}; X="$MNT/$kind"
  if [ "$kind" = files ]; then bin/gendata -dir "$X/d" -files "$FILES" -dirs 100 -filesize 1KiB >/dev/null
  else bin/gendata -dir "$X/d" -total 1GiB >/dev/null; fi
  sync
  s=$(date +%s.%N); cp -a --reflink=always "$X/d" "$X/cp"; sync -f "$X/cp"; e=$(date +%s.%N)
  CP=$(python3 -c "print('%.1f' % (($e - $s) * 1000))"); rm -rf "$X/cp"
  out=$("$HS" create --data-dir "$X" --link-mode reflink --quiesce none --json)
  read -r PAUSE DUR < <(echo "$out" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(r["lockHeldMs"], r["durationMs"])')
  printf '%-24s cp -a --reflink=always %8s ms | hotsnap pause %8s ms (%.2f x cp), whole create %8s ms\n' "${set#*:}" "$CP" "$PAUSE" "$(python3 -c "print($PAUSE / $CP)")" "$DUR"
done
