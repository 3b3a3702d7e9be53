package loadtest

import (
	"fmt"
	"math"
	"runtime/metrics"
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
}

func (g *GeneratorStats) String() string {
	return fmt.Sprintf("gen sched p99 %v max %v, gc %d (pauses %v, max %v)", g.SchedLatencyP99.Round(time.Microsecond),
		g.SchedLatencyMax.Round(time.Microsecond), g.GCCycles, g.GCPauseTotal.Round(time.Microsecond), g.GCPauseMax.Round(time.Microsecond))
}

var genMetrics = []string{"/gc/cycles/total:gc-cycles", "/sched/pauses/total/gc:seconds", "/sched/latencies:seconds"}

// genCounters accumulates the generator's runtime histograms over one or
// more attacks (the segments or tries of one server).
type genCounters struct {
	cycles uint64
	pauses hist
	sched  hist
	used   bool
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

// genSample reads the generator's runtime metrics now.
func genSample() []metrics.Sample {
	s := make([]metrics.Sample, len(genMetrics))
	for i, name := range genMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	return s
}

// add accumulates what happened between two samples.
func (g *genCounters) add(before, after []metrics.Sample) {
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
	return &GeneratorStats{GCCycles: int(g.cycles), GCPauseTotal: g.pauses.sum(), GCPauseMax: g.pauses.quantile(1),
		SchedLatencyP99: g.sched.quantile(0.99), SchedLatencyMax: g.sched.quantile(1)}
}
