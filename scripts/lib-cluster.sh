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
  # etcd secured as in production: TLS with client certificates, auth on
  # (user root); its credentials land in $WORK/etcd-tls.
  bin/hotsnap-etcd --data-dir "$WORK/etcd" --client-port "$eport" --peer-port "$pport" --tls-dir "$WORK/etcd-tls" > "$WORK/etcd.out" &
  PIDS+=($!)
  for _ in $(seq 300); do grep -q https "$WORK/etcd.out" 2>/dev/null && break; sleep 0.1; done
  export HOTSNAP_ETCD="https://127.0.0.1:$eport" HOTSNAP_CLUSTER=${HOTSNAP_CLUSTER:-demo}
  export HOTSNAP_ETCD_CACERT="$WORK/etcd-tls/ca.pem" HOTSNAP_ETCD_CERT="$WORK/etcd-tls/client.pem" HOTSNAP_ETCD_KEY="$WORK/etcd-tls/client-key.pem"
  export HOTSNAP_ETCD_USER=root HOTSNAP_ETCD_PASSWORD_FILE="$WORK/etcd-tls/root.password"
  # The cluster's CA: every agent proves its node id with a certificate of
  # it, every coordinator its role (here: an operator's certificate).
  bin/hotsnap cluster ca init --ca-dir "$WORK/ca" > /dev/null
  bin/hotsnap cluster ca issue --ca-dir "$WORK/ca" --operator ops --output "$WORK/ca/ops" > /dev/null
  export HOTSNAP_TLS_CA="$WORK/ca/ca.pem" HOTSNAP_TLS_CERT="$WORK/ca/ops.pem" HOTSNAP_TLS_KEY="$WORK/ca/ops-key.pem"
  DIRS=()
  for i in $(seq "$n"); do
    local d="$WORK/node$i"; mkdir -p "$d"; DIRS+=("$d")
    bin/hotsnap cluster ca issue --ca-dir "$WORK/ca" --node "n$i" --host 127.0.0.1 --output "$WORK/ca/n$i" > /dev/null
    bin/hotsnap agent --data-dir "$d" --node-id "n$i" --listen 127.0.0.1:0 --json \
      --tls-cert "$WORK/ca/n$i.pem" --tls-key "$WORK/ca/n$i-key.pem" "$@" > "$WORK/agent$i.out" 2> "$WORK/agent$i.log" &
    PIDS+=($!)
  done
  for i in $(seq "$n"); do
    for _ in $(seq 200); do grep -q ready "$WORK/agent$i.out" 2>/dev/null && break; sleep 0.1; done
    grep -q ready "$WORK/agent$i.out" || { echo "agent n$i did not start:"; cat "$WORK/agent$i.log"; return 1; }
  done
}
