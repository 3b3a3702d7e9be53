package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/metrics"
	"syscall"
	"time"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/management"
	"github.com/artemis-go/artemis/memreturn"
	"github.com/artemis-go/artemis/server"
	"github.com/artemis-go/artemis/store"
)

// shutdownGrace bounds a graceful shutdown after SIGINT or SIGTERM.
const shutdownGrace = 5 * time.Second

func runServer(args []string, stdout, stderr io.Writer) int {
	cfg, printOnly, err := loadServerConfig(args, os.Getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "artemis server:", err)
		return 2
	}
	if printOnly {
		if err := cfg.printYAML(stdout); err != nil {
			fmt.Fprintln(stderr, "artemis server:", err)
			return 1
		}
		return 0
	}
	log := newLogger(cfg.Log, stderr)
	applyMemoryLimit(log, cfg, os.Getenv, "/")
	if err := applyGCPercent(log, cfg, os.Getenv); err != nil {
		log.Error("cannot set the GC percent", "err", err)
		return 2
	}
	defer memreturn.Start(memreturn.Config{Interval: cfg.Runtime.MemoryReturnInterval}, log)()
	log.Info("idle memory return", "interval", cfg.Runtime.MemoryReturnInterval, "minBytes", memreturn.DefaultMinBytes)
	sc := cfg.Server
	sc.Logger = log
	limits := cfg.Limits
	sc.RateLimits = &limits
	reg, err := core.New(cfg.Registry)
	if err != nil {
		log.Error("cannot start registry", "err", err)
		return 2
	}
	defer reg.Close()
	st, err := store.Open(context.Background(), cfg.Store.DSN, store.Config{})
	if err != nil {
		log.Error("cannot open the management store", "store", redactDSN(cfg.Store.DSN), "err", err)
		return 2
	}
	defer st.Close()
	mgmt, err := management.New(context.Background(), management.Config{Store: st, Registry: reg, Region: reg.Region(), AdminToken: sc.AdminToken})
	if err != nil {
		log.Error("cannot load management state", "store", redactDSN(cfg.Store.DSN), "err", err)
		return 2
	}
	defer mgmt.Close()
	sc.Management = mgmt
	if sc.AdminToken == "" {
		log.Warn("no admin token (--admin-token): management mutations are accepted from loopback clients only")
	}
	srv := server.New(reg, sc)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Run() }()
	log.Info("artemis serving", "version", version, "addr", sc.Addr, "region", reg.Region(), "zone", reg.Zone(),
		"leaseTTL", reg.LeaseTTL(), "pprof", sc.Pprof, "store", redactDSN(cfg.Store.DSN), "peers", len(sc.Cluster.Peers))

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

// applyMemoryLimit sets the Go memory limit the configuration and the
// environment ask for (memlimit.go) and logs it, with the answer cache's
// limit that follows from it. A limit that cannot be worked out (no
// /proc/meminfo) leaves the runtime's and is logged as a warning.
func applyMemoryLimit(log *slog.Logger, cfg *serverConfig, getenv func(string) string, root string) {
	ml, err := chooseMemoryLimit(cfg.Runtime.MemoryLimit, getenv, root)
	if err != nil {
		log.Warn("no memory limit set", "err", err)
		return
	}
	if ml.set {
		debug.SetMemoryLimit(ml.bytes)
	} else if src := cfg.sources["runtime.memoryLimit"]; src != "" {
		log.Warn("runtime.memoryLimit is ignored: GOMEMLIMIT is set", "from", src)
	}
	cache := cfg.Server.ResponseCacheBytes
	if cache == 0 {
		cache = server.DefaultResponseCacheBytes()
	}
	log.Info("memory limit", "limit", formatBytes(debug.SetMemoryLimit(-1)), "bytes", debug.SetMemoryLimit(-1), "source", ml.source,
		"responseCache", formatBytes(int64(max(cache, 0))))
}

// applyGCPercent sets the GC percent the configuration and the environment
// ask for (gcpercent.go), after the memory limit, and logs it. It refuses
// off when no memory limit is in force.
func applyGCPercent(log *slog.Logger, cfg *serverConfig, getenv func(string) string) error {
	gp, err := chooseGCPercent(cfg.Runtime.GCPercent, debug.SetMemoryLimit(-1), getenv)
	if err != nil {
		return err
	}
	if gp.set {
		debug.SetGCPercent(gp.percent)
	} else if src := cfg.sources["runtime.gcPercent"]; src != "" {
		log.Warn("runtime.gcPercent is ignored: GOGC is set", "from", src)
	}
	log.Info("gc percent", "gcPercent", formatGCPercent(currentGCPercent()), "source", gp.source)
	return nil
}

// currentGCPercent reads the runtime's GC percent (-1: off) without setting it.
func currentGCPercent() int64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		panic("BUG: /gc/gogc:percent is not a uint64 metric")
	}
	return int64(s[0].Value.Uint64())
}

// redactDSN hides a DSN's password, for logs.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return dsn
}

// newLogger returns the structured logger the configuration asks for.
func newLogger(c logConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
