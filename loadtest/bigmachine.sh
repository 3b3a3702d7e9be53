#!/usr/bin/env bash
# The headline runs on a bigger machine (issue 3, part 7): the servers pinned
# to cores 0-3, the generator on the rest, 1,000,000 instances, each run
# beside its no-op twin. Usage: loadtest/bigmachine.sh [RESULTS_DIR]
# Needs bin/artemis (make build) and at least 8 cores. Issue 14's checks run
# too when their programs were built beside it: bin/core.test
# (go test -c -o bin/core.test ./core) and bin/heartbeat-vs-noop with wrk
# installed (make heartbeat-vs-noop builds it).
set -u
out=${1:-results}
bin=${BIN:-./bin/artemis}
n=$(nproc)
gen="4-$((n - 1))"
mkdir -p "$out"
echo "nproc=$n; $(grep -m1 'model name' /proc/cpuinfo)"
ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || true
common=(-server-cpus 0-3 -instances 1000000 -services 10000 -results "$out"
  -label "big machine: servers on cores 0-3, generator on $gen; commit ${COMMIT:-unknown}")
taskset -c "$gen" "$bin" loadtest "${common[@]}" -seed-only
# Interleaved with the no-op in 6 segments, as make loadtest does.
taskset -c "$gen" "$bin" loadtest "${common[@]}" -scenario mixed -rate 20000 -duration 60s -rounds 6
# 10-s steps, each rate run on the registry and on the no-op in turn and
# failed only by two tries in a row: one stall must not decide a search. Each
# step reports the server's GC cycles and the generator's own scheduling
# latency and GC pauses, to tell whose stall a failed step measured.
taskset -c "$gen" "$bin" loadtest "${common[@]}" -scenario heartbeat -rate 20000 -find-max -step 10s
taskset -c "$gen" "$bin" loadtest -server-cpus 0-3 -scenario push -subscribers 1000 -rate 100 -duration 20s -results "$out" \
  -label "big machine: 1,000 subscribers, server on cores 0-3; commit ${COMMIT:-unknown}"
taskset -c "$gen" "$bin" loadtest -server-cpus 0-3 -scenario push -subscribers 1000 -rate 100 -duration 20s -results "$out" \
  -ws-library gorilla -label "big machine: 1,000 subscribers, server on cores 0-3, the gorilla alternative; commit ${COMMIT:-unknown}"
taskset -c "$gen" "$bin" loadtest -server-cpus 0-3 -scenario idle-ws -idle-conns 10000 -results "$out" \
  -label "big machine: server on cores 0-3; commit ${COMMIT:-unknown}"
# Issue 14: one forced collection with 1,000,000 instances at GOMAXPROCS 1,
# 2, 4 and 8, and the heap per instance.
if [ -x "${CORE_TEST:-bin/core.test}" ]; then
  (cd core && "../${CORE_TEST:-bin/core.test}" -test.run '^$' -test.bench 'GCWithInstances/n=1000000$' \
    -test.benchtime 5x -test.count 3 -test.cpu 1,2,4,8) | tee "$out/gc-$(date -u +%Y%m%dT%H%M%SZ).txt"
fi
# Issue 14: heartbeat throughput against the Hertz no-op twin under wrk
# (servers on cores 0-3, wrk on the rest with as many threads).
if command -v wrk >/dev/null && [ -x bin/heartbeat-vs-noop ]; then
  bin/heartbeat-vs-noop -bin "$bin" -instances 100000 -conns 256 -threads $((n - 4)) -pairs 3 \
    -server-cpus 0-3 -gen-cpus "$gen" -results "$out/heartbeat-vs-noop" -rev "${COMMIT:-unknown}"
fi
