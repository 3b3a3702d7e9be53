package loadtest

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GeneratorStats is what the load generator's own runtime did during an
// attack. vegeta stamps a request before sending it, so a generator that
// cannot run its goroutines (its collector, a starved core) adds latency that
// is booked to the server. A step whose scheduling tail is near its P99 is
// measuring the generator, not the server.
type GeneratorStats struct {
	GCCycles     int           `json:"gcCycles"`
	GCPauseTotal time.Duration `json:"gcPauseTotalNs"`
	// GCPauseMax and the scheduling quantiles are upper bounds of the
	// runtime's histogram buckets (a few per cent wide).
	GCPauseMax time.Duration `json:"gcPauseMaxNs"`
	// SchedLatency is how long goroutines waited runnable before running.
	SchedLatencyP99 time.Duration `json:"schedLatencyP99Ns"`
	SchedLatencyMax time.Duration `json:"schedLatencyMaxNs"`
	// CPUPercent is the generator's CPU time over the attack, in per cent of
	// one core (-1 unknown); Cores is how many it may run on. Near
	// 100 × Cores, the generator is the limit.
	CPUPercent float64 `json:"cpuPercent"`
	Cores      int     `json:"cores"`
}

func (g *GeneratorStats) String() string {
	cpu := "?"
	if g.CPUPercent >= 0 {
		cpu = fmt.Sprintf("%.0f%%", g.CPUPercent)
	}
	return fmt.Sprintf("gen cpu %s of %d%%, sched p99 %v max %v, gc %d (pauses %v, max %v)", cpu, 100*g.Cores,
		g.SchedLatencyP99.Round(time.Microsecond),
		g.SchedLatencyMax.Round(time.Microsecond), g.GCCycles, g.GCPauseTotal.Round(time.Microsecond), g.GCPauseMax.Round(time.Microsecond))
}

var genMetrics = []string{"/gc/cycles/total:gc-cycles", "/sched/pauses/total/gc:seconds", "/sched/latencies:seconds"}

// genCounters accumulates the generator's runtime histograms over one or
// more attacks (the segments or tries of one server).
type genCounters struct {
	cycles  uint64
	pauses  hist
	sched   hist
	used    bool
	cpu     float64 // seconds
	wall    time.Duration
	cpuLost bool // a sample could not read the CPU time
}

// hist is a runtime histogram's counts and bucket boundaries.
type hist struct {
	counts  []uint64
	buckets []float64
}

func (h *hist) add(after, before *metrics.Float64Histogram) {
	if h.counts == nil {
		h.counts, h.buckets = make([]uint64, len(after.Counts)), after.Buckets
	}
	if len(h.counts) != len(after.Counts) || len(before.Counts) != len(after.Counts) {
		return // the runtime's buckets never change within a process
	}
	for i := range after.Counts {
		h.counts[i] += after.Counts[i] - before.Counts[i]
	}
}

// quantile returns the upper bound of the bucket holding the q-quantile (0
// when empty). The last bucket's bound is +Inf; its lower bound stands in.
func (h *hist) quantile(q float64) time.Duration {
	var total uint64
	for _, c := range h.counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= max(rank, 1) {
			hi := h.buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = h.buckets[i]
			}
			return time.Duration(hi * 1e9)
		}
	}
	return 0
}

// sum estimates the total from bucket midpoints.
func (h *hist) sum() time.Duration {
	var s float64
	for i, c := range h.counts {
		lo, hi := h.buckets[i], h.buckets[i+1]
		if math.IsInf(lo, -1) {
			lo = 0
		}
		if math.IsInf(hi, 1) {
			hi = lo
		}
		s += float64(c) * (lo + hi) / 2
	}
	return time.Duration(s * 1e9)
}

// genSample is the generator's runtime metrics and CPU time at one moment.
type genSample struct {
	m   []metrics.Sample
	cpu float64
	ok  bool // cpu was read
	at  time.Time
}

func sampleGenerator() genSample {
	s := genSample{m: make([]metrics.Sample, len(genMetrics))}
	for i, name := range genMetrics {
		s.m[i].Name = name
	}
	metrics.Read(s.m)
	s.cpu, s.ok = readCPU(os.Getpid())
	s.at = time.Now()
	return s
}

// add accumulates what happened between two samples.
func (g *genCounters) add(b, a genSample) {
	if b.ok && a.ok {
		g.cpu += a.cpu - b.cpu
		g.wall += a.at.Sub(b.at)
	} else {
		g.cpuLost = true
	}
	before, after := b.m, a.m
	if before[0].Value.Kind() != metrics.KindUint64 || before[1].Value.Kind() != metrics.KindFloat64Histogram ||
		before[2].Value.Kind() != metrics.KindFloat64Histogram {
		return // a runtime without these metrics
	}
	g.used = true
	g.cycles += after[0].Value.Uint64() - before[0].Value.Uint64()
	g.pauses.add(after[1].Value.Float64Histogram(), before[1].Value.Float64Histogram())
	g.sched.add(after[2].Value.Float64Histogram(), before[2].Value.Float64Histogram())
}

func (g *genCounters) stats() *GeneratorStats {
	if !g.used {
		return nil
	}
	st := &GeneratorStats{GCCycles: int(g.cycles), GCPauseTotal: g.pauses.sum(), GCPauseMax: g.pauses.quantile(1),
		SchedLatencyP99: g.sched.quantile(0.99), SchedLatencyMax: g.sched.quantile(1), Cores: runtime.NumCPU(), CPUPercent: -1}
	if g.wall > 0 && !g.cpuLost {
		st.CPUPercent = 100 * g.cpu / g.wall.Seconds()
	}
	return st
}

// genHeadroomMax caps the heap an attack may grow by before the generator
// collects anyway.
const genHeadroomMax = 8 << 30

// gcPause counts the attacks running with the generator's collector paused.
var gcPause struct {
	sync.Mutex
	n       int
	percent int
}

// pauseGC stops the generator's own collections for the length of an
// attack: vegeta stamps a request before it runs, so a collection that stalls
// the generator (one core on a small machine) is booked as server latency. A
// memory limit of the heap now plus a quarter of the memory available (at
// most 8 GiB) still bounds it; past that the collector runs as usual. The
// returned resume restores the collector when the last paused attack ends.
func pauseGC() (resume func()) {
	gcPause.Lock()
	defer gcPause.Unlock()
	if gcPause.n == 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		headroom := min(memAvailable()/4, genHeadroomMax)
		debug.SetMemoryLimit(int64(ms.HeapSys) + headroom)
		gcPause.percent = debug.SetGCPercent(-1)
	}
	gcPause.n++
	return func() {
		gcPause.Lock()
		defer gcPause.Unlock()
		if gcPause.n--; gcPause.n == 0 {
			debug.SetGCPercent(gcPause.percent)
			debug.SetMemoryLimit(math.MaxInt64)
		}
	}
}

// memAvailable is MemAvailable from /proc/meminfo (1 GiB when unreadable).
func memAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 1 << 30
}
