#!/usr/bin/env bash
# The headline runs on a bigger machine (issue 3, part 7): the servers pinned
# to cores 0-3, the generator on the rest, 1,000,000 instances, each run
# beside its no-op twin. Usage: loadtest/bigmachine.sh [RESULTS_DIR]
# Needs bin/artemis (make build) and at least 8 cores.
set -u
out=${1:-results}
bin=${BIN:-./bin/artemis}
n=$(nproc)
gen="4-$((n - 1))"
mkdir -p "$out"
echo "nproc=$n; $(grep -m1 'model name' /proc/cpuinfo)"
ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || true
common=(-server-cpus 0-3 -instances 1000000 -services 10000 -results "$out"
  -label "big machine: servers on cores 0-3, generator on $gen")
taskset -c "$gen" "$bin" loadtest "${common[@]}" -seed-only
taskset -c "$gen" "$bin" loadtest "${common[@]}" -scenario mixed -rate 20000 -duration 30s
taskset -c "$gen" "$bin" loadtest "${common[@]}" -scenario heartbeat -rate 20000 -find-max -step 5s
