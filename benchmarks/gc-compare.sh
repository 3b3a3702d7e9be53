#!/usr/bin/env bash
# gc-compare.sh OLD NEW COUNT OUT: runs two compiled core test binaries
# (go test -c ./core) alternately, COUNT times each, on what issue 14
# measures: one forced collection with 1e6 instances (-cpu 1 and 2), the
# heap per instance, and heartbeat, lookup and register at 1e6 (-cpu 1).
# Writes OUT-old.txt, OUT-new.txt and OUT-benchstat.txt (benchstat from
# BENCHSTAT, default benchstat on PATH). Every run is bounded by -benchtime.
set -euo pipefail
old=$1 new=$2 count=$3 out=$4
benchstat=${BENCHSTAT:-benchstat}
run() { # binary file
	(cd "$(dirname "$0")/../core" &&
		"$1" -test.run '^$' -test.bench 'GCWithInstances/n=1000000$' -test.benchtime 5x -test.count 1 -test.cpu 1,2 &&
		"$1" -test.run '^$' -test.bench 'MemoryPerInstance/n=1000000$' -test.benchtime 1x -test.count 1 -test.cpu 2 &&
		"$1" -test.run '^$' -test.bench '^Benchmark(Heartbeat|ServiceLookup|Register)$/^n=1000000$/^impl=sharded$' \
			-test.benchtime 1s -test.count 1 -test.cpu 1 -test.benchmem &&
		"$1" -test.run '^$' -test.bench '^BenchmarkCalibration$' -test.benchtime 1s -test.count 1 -test.cpu 1) >>"$2" 2>&1
}
{
	echo "nproc: $(nproc)"
	echo "cpu-model: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
	echo "go: $(go env GOVERSION)"
	echo "loadavg-before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out-old.txt" >"$out-new.txt"
for i in $(seq "$count"); do
	echo "round $i/$count: old"
	run "$old" "$out-old.txt"
	echo "round $i/$count: new"
	run "$new" "$out-new.txt"
done
echo "loadavg-after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out-old.txt" >>"$out-new.txt"
"$benchstat" "$out-old.txt" "$out-new.txt" | tee "$out-benchstat.txt"
