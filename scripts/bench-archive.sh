#!/usr/bin/env bash
# Side-by-side archive benchmark: hotsnap against restic and kopia, same
# data (scripts/gendata: half random, half text-like, files from 4 KiB to
# 256 MiB), same local MinIO on loopback (one bucket each), one run each.
#
#   bash scripts/bench-archive.sh            # 2 GiB
#   BENCH_SIZE=8GiB bash scripts/bench-archive.sh
#   BENCH_SET=text bash scripts/bench-archive.sh   # all text, words of a 5,000-word vocabulary
#   BENCH_SET=small BENCH_FILES=200000 bash scripts/bench-archive.sh   # files of 1 KiB, 100 a dir
#   BENCH_RUNS=5 ...      # rounds of the restores and the floor (default 3): medians
#   BENCH_SUMMARY=FILE    # also write the ratios there as key=value (scripts/bench-restore.sh reads them)
#
# Needs: minio in ~/.cache/hotsnap/bin (make test-deps builds it) and
# restic; kopia is optional (its column says n/a without it). kopia: `go mod download -json github.com/kopia/kopia@v0.21.1`, then
# `go build -o ~/.cache/hotsnap/bin/kopia .` in its Dir), restic in the
# cache (v0.18.1 built the same way from ./cmd/restic) or on PATH (Debian). Peers encrypt (they cannot not); hotsnap
# does not. kopia gets zstd compression (its default is none); restic uses
# repository format 2 with its default (auto) compression.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE="${BENCH_SIZE:-2GiB}"
SET="${BENCH_SET:-mixed}"
RUNS="${BENCH_RUNS:-3}"
CACHE="${HOTSNAP_CACHE:-$HOME/.cache/hotsnap}/bin"
MINIO="$CACHE/minio"; KOPIA="$CACHE/kopia"
RESTIC="$CACHE/restic"; [ -x "$RESTIC" ] || RESTIC="$(command -v restic || echo "$CACHE/restic")"
for b in "$MINIO" "$RESTIC"; do [ -x "$b" ] || { echo "bench-archive: missing $b" >&2; exit 1; }; done
KO=1; [ -x "$KOPIA" ] || { KO=0; echo "# kopia not built ($KOPIA): its column is n/a" >&2; }
go build -o bin/hotsnap ./cmd/hotsnap
go build -o bin/gendata ./scripts/gendata
HS="$PWD/bin/hotsnap"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hotsnap-bench.XXXXXX")
source scripts/lib-minio.sh
for i in $(seq 1 100); do "$HS" archive init --remote s3://kopia/unused >/dev/null 2>&1 && break; sleep 0.3; done
"$HS" archive init --remote s3://hotsnap/repo >/dev/null

DATA="$WORK/data"; HSB="$WORK/hs-backups"
GENFLAGS=""; [ "$SET" = text ] && GENFLAGS="-text"
if [ "$SET" = small ]; then
  FILES="${BENCH_FILES:-200000}"
  bin/gendata -dir "$DATA" -files "$FILES" -dirs $(( FILES / 100 )) -filesize 1KiB >/dev/null
else
  bin/gendata -dir "$DATA" -total "$SIZE" $GENFLAGS
fi
BYTES=$(du -sb "$DATA" | cut -f1)
declare -A T R   # wall seconds, peak RSS KiB
timed() { # name cmd...: one run, wall time and peak RSS of the whole command
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$WORK/time.$name" "$@" >"$WORK/out.$name" 2>"$WORK/err.$name" || { cat "$WORK/err.$name" >&2; exit 1; }
  read -r T[$name] R[$name] < "$WORK/time.$name"
}
hsid() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readlines()[-1])["id"])' < "$WORK/out.$1"; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.readlines()[-1])[\"$2\"])" < "$WORK/out.$1"; }

export RESTIC_PASSWORD=bench RESTIC_REPOSITORY="s3:http://127.0.0.1:$PORT/restic"
export KOPIA_PASSWORD=bench KOPIA_CONFIG_PATH="$WORK/kopia.config" KOPIA_CACHE_DIRECTORY="$WORK/kopia-cache" KOPIA_CHECK_FOR_UPDATES=false
"$RESTIC" init --repository-version 2 >/dev/null
[ $KO = 1 ] && "$KOPIA" repository create s3 --bucket=kopia --prefix=repo/ --endpoint="127.0.0.1:$PORT" --disable-tls \
  --access-key="$AWS_ACCESS_KEY_ID" --secret-access-key="$AWS_SECRET_ACCESS_KEY" >/dev/null 2>&1
[ $KO = 1 ] && "$KOPIA" policy set --global --compression=zstd --add-ignore .hotsnap >/dev/null

echo "# $(date -u +%FT%TZ), $(nproc) cores; data: $SET set, $SIZE ($BYTES bytes) in $(find "$DATA" -type f | wc -l) files; MinIO on 127.0.0.1:$PORT"
echo "# restic $("$RESTIC" version | cut -d' ' -f2), kopia $([ $KO = 1 ] && "$KOPIA" --version 2>/dev/null | head -1 | cut -d' ' -f1 || echo n/a)"

# 1. First upload.
timed hs_create "$HS" create -d "$DATA" --backups-dir "$HSB" --quiesce none --json
timed hs_up1 "$HS" upload -d "$DATA" --backups-dir "$HSB" --id "$(hsid hs_create)" --remote s3://hotsnap/repo --json
timed restic_up1 "$RESTIC" backup -q --exclude "$DATA/.hotsnap" "$DATA"
if [ $KO = 1 ]; then timed kopia_up1 "$KOPIA" snapshot create "$DATA"; else T[kopia_up1]=0; R[kopia_up1]=0; fi

# 2. Change 1 % of the files, upload again.
bin/gendata -dir "$DATA" -change 1 -seed 7 $([ "$SET" = small ] && echo -filesize 1KiB) $GENFLAGS | tee "$WORK/change.txt"
timed hs_create2 "$HS" create -d "$DATA" --backups-dir "$HSB" --quiesce none --json
ID2=$(hsid hs_create2)
timed hs_up2 "$HS" upload -d "$DATA" --backups-dir "$HSB" --id "$ID2" --remote s3://hotsnap/repo --json
timed restic_up2 "$RESTIC" backup -q --exclude "$DATA/.hotsnap" "$DATA"
if [ $KO = 1 ]; then timed kopia_up2 "$KOPIA" snapshot create "$DATA"; else T[kopia_up2]=0; R[kopia_up2]=0; fi
HS_READ2=$(( $(field hs_create2 hashedBytes) + $(field hs_up2 bytesRead) ))

# 3. Download and restore the latest snapshot into an empty place; every
# contender ends with sync (hotsnap syncs before it publishes; the peers
# do not). The write floor: the same tree copied by a tar pipe from the
# page cache, then sync.
# Each contender starts with nothing dirty left by the one before (a sync
# outside the timing): a final sync or syncfs flushes the whole filesystem,
# MinIO's and the other contenders' writes too, and the first one timed
# after the uploads would otherwise pay for theirs.
# Each contender runs RUNS rounds, into a fresh place each round (the one
# before removed, outside the timing); the medians are compared: single
# timings of a second vary by a fifth here. The restore after a download
# runs as it would in use, right after it.
WITHSYNC=(sh -c '"$@" && sync' sh)
NEW="$WORK/restore-hs"; DIRECT="$WORK/restore-hs-direct"
declare -A ALL   # name -> the rounds' wall seconds
# Every contender starts from the same state: the page cache emptied (as
# root), then the sources warmed (the tree the floor copies, the packs
# MinIO serves). Without it whichever ran second wrote slower here (a
# 2 GiB download 4.3 s first, 6.5 s right after another 2 GiB write).
fresh() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; tar -C "$DATA" --exclude=./.hotsnap -cf - . >/dev/null; tar -C "$WORK/minio" -cf - . >/dev/null; }
for round in $(seq "$RUNS"); do
  rm -rf "$NEW" "$DIRECT" "$WORK/restore-restic" "$WORK/restore-kopia" "$WORK/floor"; mkdir -p "$NEW" "$DIRECT" "$WORK/floor"
  fresh; timed hs_down "$HS" download -d "$NEW" --id "$ID2" --remote s3://hotsnap/repo --json
  timed hs_restore "${WITHSYNC[@]}" "$HS" restore -d "$NEW" --id "$ID2" --json
  fresh; timed hs_direct "${WITHSYNC[@]}" "$HS" restore -d "$DIRECT" --id "$ID2" --from-archive --remote s3://hotsnap/repo --json
  fresh; timed restic_restore "${WITHSYNC[@]}" "$RESTIC" restore latest --target "$WORK/restore-restic"
  if [ $KO = 1 ]; then
    KOBJ=$("$KOPIA" snapshot list "$DATA" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["rootEntry"]["obj"])')
    fresh; timed kopia_restore "${WITHSYNC[@]}" "$KOPIA" restore "$KOBJ" "$WORK/restore-kopia"
  else T[kopia_restore]=0; R[kopia_restore]=0; fi
  fresh; timed floor sh -c 'tar -C "$1" --exclude=./.hotsnap -cf - . | tar -C "$2" -xf - && sync' sh "$DATA" "$WORK/floor"
  for k in hs_down hs_restore hs_direct restic_restore kopia_restore floor; do ALL[$k]="${ALL[$k]:-} ${T[$k]}"; done
done
med() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
for k in hs_down hs_restore hs_direct restic_restore kopia_restore floor; do T[$k]=$(med "${ALL[$k]}"); done
echo "# $RUNS rounds, medians below; every round (s):"
for k in hs_down hs_restore hs_direct restic_restore floor; do echo "#   $k:${ALL[$k]}"; done
same_tree "$DATA" "$NEW" "hotsnap's restored tree"
same_tree "$DATA" "$DIRECT" "hotsnap's tree restored --from-archive"

size() { du -sb "$WORK/minio/$1" | cut -f1; }
S_HS=$(size hotsnap); S_RE=$(size restic); S_KO=$([ $KO = 1 ] && size kopia || echo 0)
r() { python3 -c "print('n/a' if $2 == 0 else f'{$1/$2:.2f}')"; }
add() { python3 -c "print(f'{$1+$2:.2f}')"; }
HS_UP1=$(add ${T[hs_create]} ${T[hs_up1]}); HS_UP2=$(add ${T[hs_create2]} ${T[hs_up2]}); HS_DR=$(add ${T[hs_down]} ${T[hs_restore]})
printf '\n%-44s %10s %10s %10s %14s %14s\n' "measure" hotsnap restic kopia "hotsnap/restic" "hotsnap/kopia"
printf '%-44s %10s %10s %10s %14s %14s\n' "first upload, s (hotsnap: create+upload)" "$HS_UP1" "${T[restic_up1]}" "${T[kopia_up1]}" "$(r $HS_UP1 ${T[restic_up1]})" "$(r $HS_UP1 ${T[kopia_up1]})"
printf '%-44s %10s %10s %10s %14s %14s\n' "  of which hotsnap upload alone, s" "${T[hs_up1]}" "" "" "$(r ${T[hs_up1]} ${T[restic_up1]})" "$(r ${T[hs_up1]} ${T[kopia_up1]})"
printf '%-44s %10s %10s %10s %14s %14s\n' "upload after 1% changed, s (create+upload)" "$HS_UP2" "${T[restic_up2]}" "${T[kopia_up2]}" "$(r $HS_UP2 ${T[restic_up2]})" "$(r $HS_UP2 ${T[kopia_up2]})"
printf '%-44s %10s %10s %10s %14s %14s\n' "download + restore, s" "$HS_DR" "${T[restic_restore]}" "${T[kopia_restore]}" "$(r $HS_DR ${T[restic_restore]})" "$(r $HS_DR ${T[kopia_restore]})"
printf '%-44s %10s %10s %10s %14s %14s\n' "archive size, MiB (2 snapshots)" "$((S_HS>>20))" "$((S_RE>>20))" "$((S_KO>>20))" "$(r $S_HS $S_RE)" "$(r $S_HS $S_KO)"
printf '%-44s %10s\n' "  hotsnap download alone, restore alone, s" "${T[hs_down]} ${T[hs_restore]}"
printf '%-44s %10s %10s %10s %14s %14s\n' "restore --from-archive, s" "${T[hs_direct]}" "${T[restic_restore]}" "${T[kopia_restore]}" "$(r ${T[hs_direct]} ${T[restic_restore]})" "$(r ${T[hs_direct]} ${T[kopia_restore]})"
printf '%-44s %10s %10s %10s\n' "write floor (tar pipe + sync), s; /floor" "${T[floor]}" "$(r $HS_DR ${T[floor]}) (download + restore)" "$(r ${T[hs_direct]} ${T[floor]}) (--from-archive)"
printf '%-44s %10s %10s %10s\n' "peak RSS first upload, MiB" "$((R[hs_up1]>>10))" "$((R[restic_up1]>>10))" "$((R[kopia_up1]>>10))"
printf '%-44s %10s %10s %10s\n' "peak RSS download/restore, MiB" "$((R[hs_down]>>10))" "$((R[restic_restore]>>10))" "$((R[kopia_restore]>>10))"
printf '%-44s %10s\n' "peak RSS restore --from-archive, MiB" "$((R[hs_direct]>>10))"
echo "hotsnap bytes read for the 1% upload: $HS_READ2 of $BYTES ($(python3 -c "print(f'{100*$HS_READ2/$BYTES:.2f}')") %)"
if [ -n "${BENCH_SUMMARY:-}" ]; then
  echo "set=$SET bytes=$BYTES runs=$RUNS floor=${T[floor]} dr=$HS_DR direct=${T[hs_direct]} restic=${T[restic_restore]}" \
    "dr_floor=$(r $HS_DR ${T[floor]}) direct_floor=$(r ${T[hs_direct]} ${T[floor]})" \
    "dr_restic=$(r $HS_DR ${T[restic_restore]}) direct_restic=$(r ${T[hs_direct]} ${T[restic_restore]})" > "$BENCH_SUMMARY"
fi
