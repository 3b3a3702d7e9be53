package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/server"
)

// shutdownGrace bounds a graceful shutdown after SIGINT or SIGTERM.
const shutdownGrace = 5 * time.Second

// serverFlags parses the flags of `artemis server` into config structs.
func serverFlags(args []string, stderr io.Writer) (core.Config, server.Config, error) {
	var rc core.Config
	var sc server.Config
	fs := flag.NewFlagSet("artemis server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&sc.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&sc.NodeURL, "node-url", "", "URL this node advertises (default http://ADDR)")
	fs.StringVar(&rc.Region, "region", "default", "region of this node; instances of other regions are refused")
	fs.StringVar(&rc.Zone, "zone", "default", "zone of this node")
	fs.DurationVar(&rc.LeaseTTL, "lease-ttl", 20*time.Second, "lease time-to-live without a heartbeat")
	fs.IntVar(&rc.Shards, "shards", 128, "lock stripes of the registry (rounded up to a power of two)")
	fs.DurationVar(&rc.EvictionTick, "eviction-tick", 250*time.Millisecond, "granularity of lease expiry")
	fs.IntVar(&rc.ChangeLogSize, "changelog-size", 1<<17, "changes retained for services-delta.json")
	fs.DurationVar(&rc.ChangeLogAge, "changelog-age", 10*time.Minute, "how long changes are retained")
	noSP := fs.Bool("no-self-preservation", false, "always evict expired leases")
	fs.DurationVar(&rc.SelfPreservation.Window, "self-preservation-window", 10*time.Second, "window renewals are counted over")
	fs.Int64Var(&rc.SelfPreservation.MinPeak, "self-preservation-min-peak", 50, "peak renewals below which no protection applies")
	fs.Float64Var(&rc.SelfPreservation.Threshold, "self-preservation-threshold", 0.85, "fraction of the peak under which eviction stops")
	fs.DurationVar(&rc.SelfPreservation.PeakDecay, "self-preservation-peak-decay", 10*time.Minute, "how long a peak holds")
	fs.IntVar(&sc.MaxBodyBytes, "max-body-bytes", 8<<20, "request body cap (413 above)")
	fs.IntVar(&sc.MaxInflatedBytes, "max-inflated-bytes", 32<<20, "gzip request body cap after inflation")
	fs.DurationVar(&sc.ReadTimeout, "read-timeout", 30*time.Second, "connection read timeout")
	fs.DurationVar(&sc.WriteTimeout, "write-timeout", 30*time.Second, "connection write timeout")
	fs.DurationVar(&sc.IdleTimeout, "idle-timeout", 2*time.Minute, "keep-alive idle timeout")
	fs.BoolVar(&sc.Pprof, "pprof", false, "serve /debug/pprof/ (loopback clients only) with mutex and block profiling")
	fs.BoolVar(&sc.PprofRemote, "pprof-remote", false, "let non-loopback clients read /debug/pprof/ too")
	if err := fs.Parse(args); err != nil {
		return rc, sc, err
	}
	if fs.NArg() > 0 {
		return rc, sc, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	rc.SelfPreservation.Disabled = *noSP
	return rc, sc, nil
}

func runServer(args []string, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	rc, sc, err := serverFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	sc.Logger = log
	reg, err := core.New(rc)
	if err != nil {
		log.Error("cannot start registry", "err", err)
		return 2
	}
	defer reg.Close()
	srv := server.New(reg, sc)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Run() }()
	log.Info("artemis serving", "version", version, "addr", sc.Addr, "region", reg.Region(), "zone", reg.Zone(), "leaseTTL", reg.LeaseTTL())

	select {
	case err := <-errc:
		log.Error("server stopped", "err", err)
		return 1
	case <-ctx.Done():
	}
	stop()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("cannot shut down cleanly", "err", err)
		return 1
	}
	return 0
}
