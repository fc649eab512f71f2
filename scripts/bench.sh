#!/usr/bin/env bash
# Whole-suite benchmarks; figures for the README and closing notes come from
# one run of this script (ratios between lines of the same run).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${BENCH_COUNT:-5x}"
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(go version)"
go test -run '^$' -bench 'BenchmarkPause|BenchmarkCreate1GiB|BenchmarkRestore' -benchtime "$COUNT" ./snapshot
go test -run '^$' -bench 'BenchmarkUpload|BenchmarkDownload' -benchtime "$COUNT" ./archive
go test -run '^$' -bench 'BenchmarkGC' -benchtime 1x ./archive
echo "# side by side with restic and kopia on MinIO: bash scripts/bench-archive.sh"
go test -run '^$' -bench 'BenchmarkClusterCreate' -benchtime 20x ./cluster
bash scripts/bench-cluster.sh
# Capture against cp -al at 10k and 200k files (fresh ext4 images; root).
if [ "$(id -u)" = 0 ]; then bash scripts/bench-capture.sh; CAPTURE_CACHE=warm bash scripts/bench-capture.sh; else echo "# bench-capture.sh skipped: needs root"; fi
