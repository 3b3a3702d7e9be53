// Command heartbeat-vs-noop runs make heartbeat-vs-noop: wrk against a
// registry and its Hertz no-op twin in alternating pairs, one-instance
// heartbeats spread over the seeded instances, and writes the report to
// results/heartbeat-vs-noop/ (see loadtest.HeartbeatVsNoop).
//
// Usage:
//
//	heartbeat-vs-noop -bin bin/artemis [-instances 100000] [-conns 32] [-duration 10s] [-pairs 3] [-min-ratio 0.9]
//
// It exits 0 when the median ratio meets -min-ratio, 3 when it does not
// (the report is written either way), 1 on any other failure.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/artemis-go/artemis/loadtest"
)

func main() { os.Exit(run()) }

func run() int {
	var cfg loadtest.WrkConfig
	flag.StringVar(&cfg.Binary, "bin", "bin/artemis", "artemis executable (its server and noop subcommands are started)")
	flag.StringVar(&cfg.NoopBinary, "noop-bin", "", "the no-op twin's artemis executable (default: -bin's)")
	flag.StringVar(&cfg.Wrk, "wrk", "wrk", "wrk executable")
	flag.StringVar(&cfg.ServerCPUs, "server-cpus", "", "taskset -c of both servers (empty: no pinning)")
	flag.StringVar(&cfg.GenCPUs, "gen-cpus", "", "taskset -c of wrk (empty: no pinning)")
	flag.IntVar(&cfg.Instances, "instances", 100_000, "seeded instances")
	flag.IntVar(&cfg.Services, "services", 1_000, "services the instances are spread over")
	flag.IntVar(&cfg.Conns, "conns", 32, "wrk connections")
	flag.IntVar(&cfg.Threads, "threads", 1, "wrk threads")
	flag.DurationVar(&cfg.Duration, "duration", 0, "each measured run (default 10s)")
	flag.DurationVar(&cfg.Warmup, "warmup", 0, "an unmeasured run on each server first (default 3s; negative: none)")
	flag.IntVar(&cfg.Pairs, "pairs", 3, "registry/no-op pairs, alternating")
	flag.Float64Var(&cfg.MinRatio, "min-ratio", 0.9, "the median registry/no-op ratio to meet (0: report only)")
	flag.StringVar(&cfg.CPUProfile, "cpuprofile", "", "also profile the registry in an extra run (--pprof) and write the CPU profile here")
	flag.StringVar(&cfg.ResultsDir, "results", "results/heartbeat-vs-noop", "report directory")
	flag.StringVar(&cfg.Rev, "rev", "", "what is measured, for the report (default: git describe of the work tree)")
	flag.Parse()
	cfg.Command = strings.Join(os.Args, " ")
	if c := os.Getenv("HBVSNOOP_COMMAND"); c != "" {
		cfg.Command = c
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := loadtest.HeartbeatVsNoop(ctx, cfg, os.Stderr)
	if rep != nil && (len(rep.Runs) > 0 || len(rep.Warmups) > 0) {
		path, werr := rep.Write()
		if werr != nil {
			fmt.Fprintln(os.Stderr, "heartbeat-vs-noop:", werr)
			return 1
		}
		fmt.Printf("report: %s\nmedian registry/no-op throughput ratio %.3f over %d pairs (%s)\n", path, rep.Median, len(rep.Ratios), ratios(rep.Ratios))
		fmt.Printf("median no-op/registry server CPU per answer %.3f (%s)\n", rep.CPUMedian, ratios(rep.CPURatios))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "heartbeat-vs-noop:", err)
		return 1
	}
	if !rep.Passed() {
		fmt.Printf("below the gate of %.2f\n", cfg.MinRatio)
		return 3
	}
	return 0
}

func ratios(rs []float64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%.3f", r)
	}
	return strings.Join(s, ", ")
}
