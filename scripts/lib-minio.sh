# Sourced by the archive benchmarks: starts MinIO from the test-deps cache
# on a free loopback port with its data in $WORK/minio, stopped by pid at
# exit (with $WORK removed), and points hotsnap and the AWS-style peers at
# it. Needs WORK set and MINIO the server binary.
# same_tree DATA TREE WHAT: a restored TREE must equal DATA (hotsnap's
# own dirs aside), or the run stops: a figure of a wrong restore is no
# figure.
same_tree() {
  if diff -r -q -x .hotsnap -x backups "$1" "$2" >"$WORK/diff" 2>&1; then
    echo "# $3 equals the data"
  else
    echo "$(basename "$0"): $3 differs from the data:" >&2; head -5 "$WORK/diff" >&2; exit 1
  fi
}
MINIO_PID=
cleanup() { [ -n "$MINIO_PID" ] && kill "$MINIO_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=bench-user AWS_SECRET_ACCESS_KEY=bench-secret-key
MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_BROWSER=off \
  "$MINIO" server --quiet --address "127.0.0.1:$PORT" --console-address "127.0.0.1:0" "$WORK/minio" >"$WORK/minio.log" 2>&1 &
MINIO_PID=$!
export HOTSNAP_S3_ENDPOINT="127.0.0.1:$PORT" HOTSNAP_S3_INSECURE=1
for i in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/minio/health/ready" >/dev/null && break; sleep 0.3; done
