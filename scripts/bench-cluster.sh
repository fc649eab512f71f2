#!/usr/bin/env bash
# Cluster create with real processes on loopback: etcd (scripts/etcd), three
# `hotsnap agent` processes with FILES (default 10,000) files of 4 KiB each
# in dirs of 100, and the
# coordinator run as `hotsnap cluster create` ROUNDS times. Reports the
# whole command's wall time and the longest write pause on any node (each
# agent measures its own, from the moment writes stopped to the moment they
# resumed). The first create (which hashes every file) is not counted.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-20}
FILES=${FILES:-10000}
go build -o bin/hotsnap ./cmd/hotsnap
go build -o bin/hotsnap-etcd ./scripts/etcd
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hotsnap-bench-cluster.XXXXXX")
source scripts/lib-cluster.sh
trap 'cluster_down; rm -rf "$WORK"' EXIT
for n in 1 2 3; do
  python3 - "$WORK/node$n" "$FILES" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(int(sys.argv[2]) // 100):
    os.makedirs(f"{root}/d{d:02d}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/d{d:02d}/f{f:03d}", "wb") as fh:
            fh.write(os.urandom(4096))
PY
done
cluster_up 3
bin/hotsnap cluster create --json > /dev/null
: > "$WORK/runs"
for i in $(seq "$ROUNDS"); do
  t0=$(date +%s%N)
  out=$(bin/hotsnap cluster create --json)
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000 )) $out" >> "$WORK/runs"
done
python3 - "$WORK/runs" "$FILES" <<'PY'
import json, statistics, sys
wall, pause, cmd = [], [], []
for line in open(sys.argv[1]):
    us, js = line.split(" ", 1)
    r = json.loads(js)
    wall.append(int(us) / 1000)
    cmd.append(r["durationMs"])
    pause += [p["lockHeldMs"] for p in r["pieces"]]
print(f"cluster create, 3 nodes x {sys.argv[2]} files, {len(wall)} runs (real processes on loopback)")
print(f"  whole command (process start to exit): median {statistics.median(wall):.1f} ms, max {max(wall):.1f} ms")
print(f"  coordinator's own duration:            median {statistics.median(cmd):.1f} ms, max {max(cmd):.1f} ms")
print(f"  writes paused per node:                median {statistics.median(pause):.1f} ms, max {max(pause):.1f} ms")
PY
