#!/usr/bin/env bash
# Captures CPU, heap, allocs, mutex, block and goroutine profiles of a registry
# under load. Usage:
#   profiles/capture.sh BIN SCENARIO PREFIX [SECONDS] [INSTANCES] [RATE] [SERVER_CPUS]
# BIN is an artemis binary (server + loadtest), PREFIX the output path prefix:
# files are PREFIX-<kind>.pb.gz. The server is started on a free loopback port
# with --pprof, seeded by the load generator, and stopped afterwards.
set -euo pipefail
bin=$1 scenario=$2 prefix=$3 secs=${4:-20} instances=${5:-100000} rate=${6:-2000} cpus=${7:-}
pin=()
if [[ -n "$cpus" ]] && command -v taskset >/dev/null; then pin=(taskset -c "$cpus"); fi
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
tmp=$(mktemp -d)
"${pin[@]}" "$bin" server --addr "127.0.0.1:$port" --pprof 2>"$tmp/server.log" &
srv=$!
trap 'kill $srv 2>/dev/null; wait $srv 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done
# The attack runs secs+8 s; seeding 100k instances takes about a second.
"$bin" loadtest -target "$base" -scenario "$scenario" -instances "$instances" -rate "$rate" \
  -duration "$((secs + 8))s" -noop=false -record=false -results "$tmp" >"$tmp/loadtest.out" 2>"$tmp/loadtest.log" &
lt=$!
sleep 4
curl -sf "$base/debug/pprof/profile?seconds=$secs" -o "$prefix-cpu.pb.gz"
wait $lt || { cat "$tmp/loadtest.log"; exit 1; }
for kind in heap allocs mutex block goroutine; do
  curl -sf "$base/debug/pprof/$kind" -o "$prefix-$kind.pb.gz"
done
grep -E '^(registry)' "$tmp/loadtest.log" || true
echo "profiles: $prefix-{cpu,heap,allocs,mutex,block,goroutine}.pb.gz"
