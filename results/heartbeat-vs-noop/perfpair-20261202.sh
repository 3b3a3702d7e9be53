#!/bin/bash
# One-off used for issue 14 (third pass): one registry/no-op pair of
# bin/heartbeat-vs-noop with `perf record -e cpu-clock -C 0` (the servers'
# core) over both runs, then each symbol's samples per 1M answers for the
# registry and the no-op twin (leaf frames; perf's default 4 kHz, so one
# sample is 250 µs of CPU). Needs perf, wrk and `make build` first; run from
# the repository root as root.
# usage: perfpair-20261202.sh INSTANCES SERVICES OUTDIR [bin]
set -e
N=$1; S=$2; OUT=$3; BIN=${4:-bin/artemis}
mkdir -p $OUT
cd "$(git rev-parse --show-toplevel)"
./bin/heartbeat-vs-noop -bin $BIN -noop-bin bin/artemis -instances $N -services $S -pairs 1 -warmup -1s -min-ratio 0 -server-cpus 0 -gen-cpus 1 -results $OUT > $OUT/log 2>&1 &
for i in $(seq 1 120); do grep -q "seeded" $OUT/log && break; sleep 1; done
perf record -e cpu-clock -C 0 -g -o $OUT/perf.data -- sleep 21 > /dev/null 2>&1
wait
grep "pid\|pair" $OUT/log
RP=$(grep -o "registry on [^ ]* (pid [0-9]*" $OUT/log | grep -o "[0-9]*$")
NP=$(grep -o "no-op twin on [^ ]* (pid [0-9]*" $OUT/log | grep -o "[0-9]*$")
RR=$(grep "pair 1   registry  " $OUT/log | awk '{print $4}')
NR=$(grep "pair 1   noop  " $OUT/log | awk '{print $4}')
perf script -i $OUT/perf.data -F pid,ip,sym 2>/dev/null | awk -v rp=$RP -v np=$NP -v rr=$RR -v nr=$NR '
/^ *[0-9]+ *$/ {pid=$1; first=1; next}
first==1 && NF>=2 {sym=$2; for(i=3;i<=NF;i++) sym=sym" "$i; if(pid==rp) r[sym]++; else if (pid==np) n[sym]++; first=0}
END{ for(k in r) all[k]=1; for(k in n) all[k]=1;
  # samples per 1000 requests (1 sample = 1 ms? cpu-clock default 4000Hz -> 250us)
  for(k in all){ a=r[k]/(rr*10)*1e6; b=n[k]/(nr*10)*1e6; printf "%10.1f %10.1f %10.1f %s\n", a-b, a, b, k }
  tr=0; tn=0; for(k in r) tr+=r[k]; for(k in n) tn+=n[k];
  printf "TOTAL per 1M req: reg %.0f noop %.0f (samples)\n", tr/(rr*10)*1e6, tn/(nr*10)*1e6 > "/dev/stderr"
}' | sort -rn > $OUT/diff.txt
head -50 $OUT/diff.txt
