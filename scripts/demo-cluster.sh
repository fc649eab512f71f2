#!/usr/bin/env bash
# make demo-cluster: a three-node cluster on loopback. A real etcd (built
# from the Go module proxy: scripts/etcd), three `hotsnap agent` processes
# each with its own data dir, and a writer moving money between accounts on
# different nodes. Cluster snapshots are taken under that load; every one
# sums to the opening total over the three nodes. Then upload to a file://
# archive, delete, download and restore on every node.
set -euo pipefail
cd "$(dirname "$0")/.."
HS=bin/hotsnap
BW=bin/bankwriter
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hotsnap-cluster-demo.XXXXXX")
source scripts/lib-cluster.sh
WRITER_PID=
cleanup() {
  [ -n "$WRITER_PID" ] && kill "$WRITER_PID" 2>/dev/null && wait "$WRITER_PID" 2>/dev/null || true
  cluster_down
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }
ids() { python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.loads(sys.stdin.read().strip().splitlines()[-1])["snapshots"]))'; }

say "etcd on loopback (single member, its own temp dir), and three nodes with an agent each"
for n in 1 2 3; do mkdir -p "$WORK/node$n/db"; head -c 4M /dev/urandom > "$WORK/node$n/db/000001.sst"; done
cluster_up 3 --app-version 1.2.3
echo "etcd at $HOTSNAP_ETCD (TLS, client certificates, auth on); cluster $HOTSNAP_CLUSTER; CA $HOTSNAP_TLS_CA; pids ${PIDS[*]}"
$HS cluster plan

say "a writer moving money between accounts on different nodes (20 accounts of 1000 on each)"
$BW cluster-run --data-dirs "$(IFS=,; echo "${DIRS[*]}")" --accounts 20 --init --writers 4 &
WRITER_PID=$!
sleep 0.5

say "three cluster snapshots while money moves between nodes"
for label in first second third; do
  $HS cluster create --label "$label"
  sleep 0.3
done

say "cluster list: available = every node of the plan holds its piece"
$HS cluster list

say "every cluster snapshot sums to the opening total over the three nodes (3 x 20 x 1000 = 60000)"
for id in $($HS cluster list --json | ids); do
  printf '  %s: ' "$id"; $BW sum "${DIRS[0]}/backups/$id/data" "${DIRS[1]}/backups/$id/data" "${DIRS[2]}/backups/$id/data"
done

say "upload the last one to a file:// archive (per-node progress on stderr)"
LAST=$($HS cluster list --json | ids | tr ' ' '\n' | grep _third)
$HS cluster upload --id "$LAST" --remote "file://$WORK/archive"
$HS archive ls --remote "file://$WORK/archive"

say "stop the writer; delete the snapshot everywhere, download it back, verify"
kill "$WRITER_PID"; wait "$WRITER_PID" || true; WRITER_PID=
$HS cluster delete --id "$LAST"
$HS cluster download --id "$LAST" --remote "file://$WORK/archive"
$HS cluster verify --id "$LAST"

say "break the live data on every node, then restore $LAST on all three"
for D in "${DIRS[@]}"; do rm "$D"/accounts/acct-00[0-4].bal "$D/db/000001.sst"; done
printf '  live data now: '; $BW sum "${DIRS[@]}"
$HS cluster restore --id "$LAST" --dry-run
$HS cluster restore --id "$LAST"
printf '  live data after the restore: '; $BW sum "${DIRS[@]}"

say "the agents' metrics (node n1)"
URL=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["url"])' "$WORK/agent1.out")
curl -sf --cacert "$HOTSNAP_TLS_CA" --cert "$HOTSNAP_TLS_CERT" --key "$HOTSNAP_TLS_KEY" "$URL/metrics" | grep -v '^#' | head -20
printf '  without a client certificate: '; curl -s --cacert "$HOTSNAP_TLS_CA" "$URL/metrics" >/dev/null && echo "served (wrong)" || echo "refused"

say "done: cluster demo passed"
