#!/usr/bin/env bash
# Three Artemis nodes on 127.0.0.1:8080-8082, peers of each other; logs in
# LOGDIR (default ./cluster-logs). Ctrl-C stops them all.
set -euo pipefail
BIN=${BIN:-bin/artemis}
LOGDIR=${LOGDIR:-cluster-logs}
PORTS=(8080 8081 8082)
mkdir -p "$LOGDIR"
peers=$(printf 'http://127.0.0.1:%s,' "${PORTS[@]}"); peers=${peers%,}
pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; echo "cluster stopped"; }
trap stop EXIT INT TERM
for p in "${PORTS[@]}"; do
  "$BIN" server --addr "127.0.0.1:$p" --node-url "http://127.0.0.1:$p" --peers "$peers" "$@" >"$LOGDIR/node-$p.log" 2>&1 &
  pids+=($!)
  echo "node http://127.0.0.1:$p (log $LOGDIR/node-$p.log)"
done
echo "peers: $peers; Ctrl-C stops all"
wait -n "${pids[@]}" || true
echo "a node exited; see $LOGDIR"
