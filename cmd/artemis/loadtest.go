package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/artemis-go/artemis/loadtest"
)

func runLoadtest(args []string, stdout, stderr io.Writer) int {
	var cfg loadtest.Config
	fs := flag.NewFlagSet("artemis loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Target, "target", "", "base URL of a running registry on loopback (default: start bin/artemis)")
	fs.StringVar(&cfg.ServerCPUs, "server-cpus", "", "pin started servers with taskset -c CPUS (e.g. 0 or 0-3)")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", 20*time.Second, "lease TTL of a started registry")
	fs.IntVar(&cfg.Instances, "instances", 100_000, "instances to seed")
	fs.IntVar(&cfg.Services, "services", 1_000, "services the instances spread over")
	fs.IntVar(&cfg.SeedBatch, "seed-batch", 1_000, "instances per register request while seeding")
	fs.IntVar(&cfg.HeartbeatBatch, "heartbeat-batch", 1, "instances per heartbeat request")
	fs.StringVar(&cfg.Scenario, "scenario", "mixed", "heartbeat, service, lookup, delta, churn, mixed, noop, push or idle-ws")
	fs.IntVar(&cfg.Subscribers, "subscribers", 1000, "WebSocket subscribers of the push scenario (changes at -rate per second)")
	fs.IntVar(&cfg.IdleConns, "idle-conns", 10_000, "WebSocket sessions of the idle-ws scenario")
	fs.IntVar(&cfg.Rounds, "rounds", 1, "interleave the registry and its no-op twin in this many alternating segments of -duration/rounds each")
	fs.StringVar(&cfg.WSLibrary, "ws-library", "", "WebSocket implementation of a started registry (default: the server's)")
	fs.IntVar(&cfg.Rate, "rate", 2_000, "requests per second (the start rate with -find-max)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "attack duration")
	fs.BoolVar(&cfg.FindMax, "find-max", false, "step the rate up to the highest whose P99 stays under -max-p99")
	fs.DurationVar(&cfg.MaxP99, "max-p99", 10*time.Millisecond, "P99 bound of -find-max")
	fs.DurationVar(&cfg.StepTime, "step", 10*time.Second, "duration of each -find-max step")
	fs.Float64Var(&cfg.StepFactor, "step-factor", 1.25, "rate multiplier between -find-max steps")
	fs.IntVar(&cfg.MaxRate, "max-rate", 200_000, "highest rate -find-max tries")
	fs.IntVar(&cfg.StepTries, "step-tries", 2, "a -find-max rate fails when this many tries in a row fail")
	fs.BoolVar(&cfg.Noop, "noop", true, "run the same attack against a no-op Hertz server too")
	fs.IntVar(&cfg.Refine, "refine", 4, "after -find-max's stepping, bisect this many times between each server's last passing and first failing rate (-1: none)")
	fs.StringVar(&cfg.PlotDir, "plot-dir", "", "directory for the run's HTML plot (default $TMPDIR/artemis-plots; outside results/)")
	fs.IntVar(&cfg.Cluster, "cluster", 0, "with -find-max: search a cluster of this many nodes (peers, requests spread over them) beside one node, instead of the no-op twin")
	fs.BoolVar(&cfg.SeedOnly, "seed-only", false, "seed, report seeding rate, RSS and service.json latency, and stop")
	fs.BoolVar(&cfg.Keepalive, "keepalive", true, "heartbeat every seeded instance every TTL/3 (not measured)")
	fs.IntVar(&cfg.KeepaliveBatch, "keepalive-batch", 100, "instances per keepalive heartbeat")
	fs.StringVar(&cfg.ResultsDir, "results", "results", "directory for the JSON report, the HTML plot and README.md")
	fs.BoolVar(&cfg.Record, "record", true, "append a row to RESULTS/README.md")
	fs.StringVar(&cfg.Label, "label", "", "note recorded with the run")
	cpuProfile := fs.String("generator-cpuprofile", "", "write the load generator's own CPU profile here (the server's: make profile)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "artemis loadtest: cannot find my own binary:", err)
		return 1
	}
	cfg.Binary = exe
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "artemis loadtest: cannot write the generator's profile:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "artemis loadtest: cannot profile the generator:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := loadtest.Run(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "artemis loadtest:", err)
		return 1
	}
	path, err := rep.Write(cfg.ResultsDir)
	if err != nil {
		fmt.Fprintln(stderr, "artemis loadtest:", err)
		return 1
	}
	if cfg.Record {
		if err := rep.AppendRow(cfg.ResultsDir); err != nil {
			fmt.Fprintln(stderr, "artemis loadtest:", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "report: %s\n%s", path, rep.Row())
	return 0
}

// runNoop serves the no-op twin the load generator compares against.
func runNoop(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("artemis noop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	svcBytes := fs.Int("service-bytes", 100, "size of the canned discovery answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	h := loadtest.NoopServer(*addr, *svcBytes)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- h.Run() }()
	select {
	case err := <-errc:
		fmt.Fprintln(stderr, "artemis noop:", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	h.Shutdown(sctx)
	return 0
}
