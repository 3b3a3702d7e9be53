// Command churn-rss runs make churn: a fresh registry node seeded with
// 100,000 instances, 10 % of them replaced by instances with new ids every
// minute for ten minutes, the node's RSS, Go heap, instance count and record
// arenas sampled every 10 s; the report goes to results/churn/ (see
// loadtest.ChurnRSS).
//
// Usage:
//
//	churn-rss -bin bin/artemis [-instances 100000] [-duration 10m] [-share 0.1] [-period 1m] [-heartbeat]
//
// It exits 0 when every check held and RSS is flat after the first minutes
// (or the run was too short to judge, which the report says), 3 when the
// checks held but RSS is not flat (the report is written either way), 1 on
// any other failure.
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
	var cfg loadtest.ChurnConfig
	flag.StringVar(&cfg.Binary, "bin", "bin/artemis", "artemis executable (its server subcommand is started)")
	flag.StringVar(&cfg.ServerCPUs, "server-cpus", "", "taskset -c of the node (empty: no pinning)")
	flag.IntVar(&cfg.Instances, "instances", 100_000, "instances seeded and kept registered")
	flag.IntVar(&cfg.Services, "services", 1_000, "services the instances are spread over")
	flag.DurationVar(&cfg.Duration, "duration", 0, "how long to churn (default 10m)")
	flag.DurationVar(&cfg.Period, "period", 0, "-share of the instances is replaced every period (default 1m)")
	flag.Float64Var(&cfg.Share, "share", 0, "share of the instances replaced every period (default 0.1)")
	flag.DurationVar(&cfg.Tick, "tick", 0, "a batch every tick (default 1s)")
	flag.DurationVar(&cfg.Sample, "sample", 0, "a sample every (default 10s)")
	flag.DurationVar(&cfg.Settle, "settle", 0, "the verdict's window starts here (default 2m)")
	flag.BoolVar(&cfg.Heartbeat, "heartbeat", false, "renew every instance once per TTL/3 at the node's default lease TTL (default: no heartbeats, a lease TTL past the run)")
	flag.StringVar(&cfg.ResultsDir, "results", "results/churn", "report directory")
	flag.StringVar(&cfg.Rev, "rev", "", "what is measured, for the report (default: git describe of the work tree)")
	flag.Parse()
	cfg.Command = strings.Join(os.Args, " ")
	if c := os.Getenv("CHURN_COMMAND"); c != "" {
		cfg.Command = c
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := loadtest.ChurnRSS(ctx, cfg, os.Stderr)
	if rep != nil && len(rep.Samples) > 0 {
		path, werr := rep.Write()
		if werr != nil {
			fmt.Fprintln(os.Stderr, "churn-rss:", werr)
			return 1
		}
		fmt.Printf("report: %s\n", path)
		fmt.Println(rep.VerdictLine())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "churn-rss:", err)
		return 1
	}
	if rep.Verdict.Judged && !rep.Verdict.Flat {
		return 3
	}
	return 0
}
