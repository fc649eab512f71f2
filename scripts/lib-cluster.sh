# Helpers for scripts that run a loopback cluster: source it, then call
# cluster_up N (needs $WORK, bin/hotsnap and bin/hotsnap-etcd). Every
# process started is recorded in PIDS and stopped by pid in cluster_down.
PIDS=()
DIRS=()
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cluster_down() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}

# cluster_up N [agent flags...]: etcd + N agents (nodes n1..nN, data dirs
# $WORK/node1..N, which must exist or are created).
cluster_up() {
  local n=$1; shift
  local eport pport
  eport=$(freeport); pport=$(freeport)
  bin/hotsnap-etcd --data-dir "$WORK/etcd" --client-port "$eport" --peer-port "$pport" > "$WORK/etcd.out" &
  PIDS+=($!)
  for _ in $(seq 200); do grep -q http "$WORK/etcd.out" 2>/dev/null && break; sleep 0.1; done
  export HOTSNAP_ETCD="http://127.0.0.1:$eport" HOTSNAP_CLUSTER=${HOTSNAP_CLUSTER:-demo} HOTSNAP_TOKEN_FILE="$WORK/token"
  head -c 24 /dev/urandom | base64 > "$HOTSNAP_TOKEN_FILE"; chmod 600 "$HOTSNAP_TOKEN_FILE"
  DIRS=()
  for i in $(seq "$n"); do
    local d="$WORK/node$i"; mkdir -p "$d"; DIRS+=("$d")
    bin/hotsnap agent --data-dir "$d" --node-id "n$i" --listen 127.0.0.1:0 --json "$@" > "$WORK/agent$i.out" 2> "$WORK/agent$i.log" &
    PIDS+=($!)
  done
  for i in $(seq "$n"); do
    for _ in $(seq 200); do grep -q ready "$WORK/agent$i.out" 2>/dev/null && break; sleep 0.1; done
    grep -q ready "$WORK/agent$i.out" || { echo "agent n$i did not start:"; cat "$WORK/agent$i.log"; return 1; }
  done
}
