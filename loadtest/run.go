package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/plot"
)

// raiseFileLimit lifts the open-file soft limit to the hard limit: a
// saturated generator opens a connection per in-flight request.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

// httpClient is the client for seeding, keepalive and probes.
func httpClient() *http.Client {
	return &http.Client{Timeout: defaultTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

// FindMaxResult is the outcome of a -find-max search on one server.
type FindMaxResult struct {
	MaxRate int `json:"maxRate"` // highest rate that passed; 0 if none did
	// FirstFail is the lowest rate that failed (0: none did, the search
	// stopped at MaxRate): the maximum lies in [MaxRate, FirstFail).
	FirstFail int       `json:"firstFail,omitempty"`
	Best      *Summary  `json:"best,omitempty"`
	Steps     []Summary `json:"steps"`
}

// Run seeds the registry, runs the configured attack and its no-op twin, and
// returns the report. Progress goes to progress (nil: none).
func Run(ctx context.Context, cfg Config, progress io.Writer) (_ *Report, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	// A server that died during the run makes the run an error, whatever
	// its attacks measured. This runs after every child has been stopped.
	var children []*child
	defer func() {
		for _, c := range children {
			if e := c.diedEarly(); e != nil && err == nil {
				err = e
			}
		}
	}()
	logf := func(format string, args ...any) {
		if progress != nil {
			fmt.Fprintf(progress, format+"\n", args...)
		}
	}
	raiseFileLimit()
	if os.Getenv("GOGC") == "" {
		// The generator holds every target (a million bodies at 1e6
		// instances) and allocates per request; frequent GC cycles over that
		// heap would show up as latency it measures. Memory is cheaper here.
		debug.SetGCPercent(400)
	}
	rep := newReport(cfg)
	client := httpClient()
	defer client.CloseIdleConnections()

	base, pid := cfg.Target, 0
	if base == "" {
		args := []string{"server", "--lease-ttl", cfg.LeaseTTL.String(), "--store", "memory"}
		if cfg.WSLibrary != "" {
			args = append(args, "--ws-library", cfg.WSLibrary)
		}
		srv, err := startChild(ctx, cfg.Binary, cfg.ServerCPUs, args...)
		if err != nil {
			return nil, err
		}
		children = append(children, srv)
		defer func() { client.CloseIdleConnections(); srv.stop() }() // idle keep-alives delay a graceful stop
		base, pid = srv.base, srv.pid()
		logf("registry started on %s (pid %d, cpus %q)", base, pid, cfg.ServerCPUs)
	}
	if cfg.Scenario == "push" || cfg.Scenario == "idle-ws" {
		rep.Instances, rep.Services = 0, 0
		if cfg.Scenario == "push" {
			if rep.Push, err = runPush(ctx, base, pid, cfg, logf); err != nil || !cfg.Noop {
				return rep, err
			}
			noop, err := startChild(ctx, cfg.Binary, cfg.ServerCPUs, "noop")
			if err != nil {
				return nil, err
			}
			children = append(children, noop)
			defer noop.stop()
			logf("no-op twin started on %s (pid %d)", noop.base, noop.pid())
			rep.NoopPush, err = runPush(ctx, noop.base, noop.pid(), cfg, logf)
			rep.finish()
			return rep, err
		} else {
			rep.Idle, err = runIdle(ctx, base, pid, cfg.IdleConns, 10*time.Second)
		}
		return rep, err
	}
	if cfg.Scenario != "noop" || cfg.SeedOnly {
		st, err := seed(ctx, client, base, cfg, progress)
		if err != nil {
			return nil, err
		}
		rep.Seed = &st
		if pid > 0 {
			rss, hwm, _ := readRSS(pid)
			rep.Seed.RSSBytes, rep.Seed.PeakRSSBytes = rss, hwm
		}
		logf("seeded %d instances in %v (%.0f instances/s), server RSS %s", st.Instances, st.Elapsed.Round(time.Millisecond),
			st.Rate, mib(rep.Seed.RSSBytes))
	}
	svcBytes, err := probeService(ctx, client, base, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.SeedOnly {
		rep.ServiceProbe, err = probeLatency(ctx, client, base+"/api/discovery/service.json?serviceId="+serviceID(cfg.Services/2), 1000)
		if err == nil {
			logf("service.json after seeding: %s", rep.ServiceProbe)
		}
		return rep, err
	}
	version, err := currentVersion(ctx, client, base)
	if err != nil {
		return nil, err
	}

	scenario := cfg.Scenario
	if scenario == "noop" {
		scenario = "mixed" // the noop scenario is the mixed attack on the no-op server alone
	}
	p := plot.New(plot.Title("artemis "+cfg.Scenario), plot.Downsample(4000), plot.Label(func(r *vegeta.Result) string {
		if r.Error != "" {
			return r.Attack + " error"
		}
		return r.Attack
	}))
	runOn := func(sd *side) (*Summary, *FindMaxResult, error) {
		// One client for the warm-up and the measurement: its connections
		// are open when the measurement starts.
		stop, err := prepare(ctx, client, cfg, scenario, version, []*side{sd})
		defer stop()
		if err != nil {
			return nil, nil, err
		}
		if cfg.FindMax {
			fm := findMax(ctx, cfg, []*side{sd}, logf)[0]
			return fm.Best, &fm, nil
		}
		gcs := serverGCs(ctx, sd.base)
		smp := startSampler(sd.pid, cfg.ServerCPUs)
		s := attack(sd.client, sd.name, cfg, sd.tr, cfg.Rate, cfg.Duration, p)
		s.Server = smp.stop()
		s.ServerGCs = gcs()
		s.ServerBefore, s.ServerAfter = sd.before, snapshot(ctx, sd.base, sd.pid)
		logf("%s", s.line())
		return &s, nil, nil
	}

	// The no-op twin answers discovery with as many bytes as the registry.
	startNoop := func() (*child, error) {
		c, err := startChild(ctx, cfg.Binary, cfg.ServerCPUs, "noop", "--service-bytes", strconv.Itoa(svcBytes))
		if err == nil {
			children = append(children, c)
		}
		return c, err
	}
	if cfg.FindMax && cfg.Cluster >= 2 {
		if err := runCluster(ctx, cfg, client, rep, &side{name: "single", base: base, pid: pid, leases: true}, scenario, logf,
			func(c *child) { children = append(children, c) }); err != nil {
			return nil, err
		}
		return rep, nil
	}
	if cfg.FindMax && cfg.Noop && cfg.Scenario != "noop" {
		noop, err := startNoop()
		if err != nil {
			return nil, err
		}
		defer func() { client.CloseIdleConnections(); noop.stop() }()
		logf("no-op twin started on %s (pid %d); both searched rate by rate", noop.base, noop.pid())
		sides := []*side{{name: "registry", base: base, pid: pid, leases: true}, {name: "noop", base: noop.base, pid: noop.pid()}}
		stop, err := prepare(ctx, client, cfg, scenario, version, sides)
		defer stop()
		if err != nil {
			return nil, err
		}
		fm := findMax(ctx, cfg, sides, logf)
		rep.RegistryMax, rep.NoopMax = &fm[0], &fm[1]
		rep.Registry, rep.Noop = fm[0].Best, fm[1].Best
		rep.finish()
		return rep, nil
	}
	if cfg.Rounds > 1 && !cfg.FindMax && cfg.Noop && cfg.Scenario != "noop" {
		noop, err := startNoop()
		if err != nil {
			return nil, err
		}
		defer func() { client.CloseIdleConnections(); noop.stop() }()
		logf("no-op twin started on %s (pid %d); %d interleaved rounds", noop.base, noop.pid(), cfg.Rounds)
		rep.Registry, rep.Noop, err = interleave(ctx, client, cfg, scenario, version, p, logf,
			&side{name: "registry", base: base, pid: pid, leases: true}, &side{name: "noop", base: noop.base, pid: noop.pid()})
		if err != nil {
			return nil, err
		}
		rep.finish()
		rep.plot = p
		return rep, nil
	}
	if cfg.Scenario != "noop" {
		if rep.Registry, rep.RegistryMax, err = runOn(&side{name: "registry", base: base, pid: pid, leases: true}); err != nil {
			return nil, err
		}
	}
	if cfg.Noop || cfg.Scenario == "noop" {
		noop, err := startNoop()
		if err != nil {
			return nil, err
		}
		defer func() { client.CloseIdleConnections(); noop.stop() }()
		logf("no-op twin started on %s (pid %d)", noop.base, noop.pid())
		if rep.Noop, rep.NoopMax, err = runOn(&side{name: "noop", base: noop.base, pid: noop.pid()}); err != nil {
			return nil, err
		}
	}
	rep.finish()
	rep.plot = p
	return rep, nil
}

// side is one server of an interleaved run.
type side struct {
	name, base string
	pid        int
	leases     bool     // holds the seeded instances, which keepalive renews
	bases      []string // a cluster: requests spread over these nodes (base is the first)
	tr         vegeta.Targeter
	client     *http.Client // shared by the warm-up and every segment
	t          *tally
	cpu        float64 // CPU seconds over its segments
	wall       time.Duration
	gcs        int // -1 unknown
	last       *ProcessStats
	before     *Snapshot
}

// prepare builds each side's targets and attack client, starts its
// keepalive, warms its connections up and samples it. The returned stop ends
// the keepalives and closes the connections.
func prepare(ctx context.Context, client *http.Client, cfg Config, scenario string, version int64, sides []*side) (func(), error) {
	kctx, stopKeepalive := context.WithCancel(ctx)
	var transports []*http.Transport
	stop := func() {
		stopKeepalive()
		for _, t := range transports {
			t.CloseIdleConnections()
		}
	}
	for _, sd := range sides {
		tr, err := targeter(scenario, sd.base, cfg, version)
		if len(sd.bases) > 1 {
			tr, err = spreadTargeter(scenario, sd.bases, cfg, version)
		}
		if err != nil {
			return stop, err
		}
		var transport *http.Transport
		sd.tr = tr
		sd.client, transport = attackClient(cfg)
		transports = append(transports, transport)
		if cfg.Keepalive && sd.leases {
			go keepalive(kctx, client, sd.base, cfg, cfg.LeaseTTL/3)
		}
		attack(sd.client, sd.name+" warm-up", cfg, tr, min(cfg.Rate, 1000), time.Second, nil)
		sd.before = snapshot(ctx, sd.base, sd.pid)
	}
	return stop, nil
}

// interleave runs the attack on both servers in cfg.Rounds alternating
// segments (a b, b a, a b, ...) and summarises each over all its segments.
func interleave(ctx context.Context, client *http.Client, cfg Config, scenario string, version int64, p *plot.Plot,
	logf func(string, ...any), a, b *side) (*Summary, *Summary, error) {
	sides := []*side{a, b}
	seg := cfg.Duration / time.Duration(cfg.Rounds)
	stop, err := prepare(ctx, client, cfg, scenario, version, sides)
	defer stop()
	if err != nil {
		return nil, nil, err
	}
	for _, sd := range sides {
		sd.t = newTally(int(float64(cfg.Rate) * cfg.Duration.Seconds() * 1.05))
	}
	for r := range cfg.Rounds {
		for k := range sides {
			sd := sides[(k+r)%2] // who goes first alternates
			gcs := serverGCs(ctx, sd.base)
			smp := startSampler(sd.pid, cfg.ServerCPUs)
			t0 := time.Now()
			sd.t.run(sd.client, sd.name, sd.tr, cfg.Rate, seg, p)
			sd.wall += time.Since(t0)
			if st := smp.stop(); st != nil {
				sd.cpu += st.CPUSeconds
				sd.last = st
			}
			if g := gcs(); g >= 0 && sd.gcs >= 0 {
				sd.gcs += g
			} else {
				sd.gcs = -1
			}
		}
	}
	var out [2]*Summary
	for i, sd := range sides {
		s := sd.t.summary(sd.name, cfg.Rate)
		if sd.last != nil {
			st := *sd.last
			st.CPUSeconds, st.CPUPercent = sd.cpu, 100*sd.cpu/sd.wall.Seconds()
			s.Server = &st
		}
		s.ServerGCs = sd.gcs
		s.ServerBefore, s.ServerAfter = sd.before, snapshot(ctx, sd.base, sd.pid)
		logf("%s", s.line())
		out[i] = &s
	}
	return out[0], out[1], nil
}

// findMax steps the rate up on each side, from cfg.Rate by cfg.StepFactor,
// until a rate fails (see Config.passed). With two sides (the registry and
// its no-op twin) each rate is run on both, one after the other, who goes
// first alternating, so both meet the generator and the machine in the same
// state; a side drops out at its first failed rate and the stepping ends
// when both have. A rate fails only when StepTries tries in a row fail, so
// one stall (a collection, a neighbour on a shared machine) does not end a
// search; every try is kept in the steps. Then each side that failed
// bisects cfg.Refine times between its last passing rate and its first
// failing one (the same rules, sides still taking turns).
func findMax(ctx context.Context, cfg Config, sides []*side, logf func(string, ...any)) []FindMaxResult {
	step := func(ctx context.Context, sd *side, rate, try int) Summary { return sd.step(ctx, cfg, rate, try) }
	return search(ctx, cfg, sides, logf, step, cfg.passed)
}

// stepFunc runs one find-max try at rate on a side.
type stepFunc func(ctx context.Context, sd *side, rate, try int) Summary

// passed reports whether a find-max try at rate passed: P99 within MaxP99,
// at least 99.9 % successes, and at least 95 % of the rate achieved.
func (c Config) passed(s Summary, rate int) bool {
	return s.Requests > 0 && s.Latency.P99 <= c.MaxP99 && s.Success >= 0.999 && s.AchievedRate >= 0.95*float64(rate)
}

// search is findMax with the try and its verdict passed in (tests use
// their own).
func search(ctx context.Context, cfg Config, sides []*side, logf func(string, ...any), step stepFunc,
	passed func(Summary, int) bool) []FindMaxResult {
	res := make([]FindMaxResult, len(sides))
	best := make([]int, len(sides)) // index into res[i].Steps, -1 none
	done := make([]bool, len(sides))
	for i := range best {
		best[i] = -1
	}
	// try runs rate on side i until a try passes or StepTries have failed.
	try := func(i, rate int) bool {
		for n := 1; n <= cfg.StepTries && ctx.Err() == nil; n++ {
			s := step(ctx, sides[i], rate, n)
			pass := passed(s, rate)
			logf("%s pass=%v", s.line(), pass)
			res[i].Steps = append(res[i].Steps, s)
			if pass {
				res[i].MaxRate, best[i] = rate, len(res[i].Steps)-1
				return true
			}
		}
		return false
	}
	turn := 0 // who goes first rotates with every rate
	for rate := cfg.Rate; rate <= cfg.MaxRate && slices.Contains(done, false); rate = int(float64(rate)*cfg.StepFactor + 0.5) {
		for k := range sides {
			if i := (k + turn) % len(sides); !done[i] && !try(i, rate) {
				done[i], res[i].FirstFail = true, rate
			}
		}
		turn++
	}
	for range max(cfg.Refine, 0) {
		for k := range sides {
			i := (k + turn) % len(sides)
			lo, hi := res[i].MaxRate, res[i].FirstFail
			if hi == 0 || hi-lo <= 1 || ctx.Err() != nil {
				continue
			}
			if mid := lo + (hi-lo)/2; !try(i, mid) && ctx.Err() == nil {
				res[i].FirstFail = mid
			}
		}
		turn++
	}
	for i := range res {
		if best[i] >= 0 {
			res[i].Best = &res[i].Steps[best[i]]
		}
	}
	return res
}

// step runs one find-max try at rate.
func (sd *side) step(ctx context.Context, cfg Config, rate, try int) Summary {
	name := fmt.Sprintf("%s@%d", sd.name, rate)
	if try > 1 {
		name += fmt.Sprintf("#%d", try)
	}
	gcs := serverGCs(ctx, sd.base)
	smp := startSampler(sd.pid, cfg.ServerCPUs)
	s := attack(sd.client, name, cfg, sd.tr, rate, cfg.StepTime, nil)
	s.Server = smp.stop()
	s.ServerGCs = gcs()
	return s
}

// probeService returns the size of one service.json answer, so the no-op
// twin can answer reads with as many bytes.
func probeService(ctx context.Context, client *http.Client, base string, cfg Config) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/discovery/service.json?serviceId="+serviceID(0), nil)
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot read a service: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return len(b), err
}

// currentVersion reads the registry's version from a delta answer (a delta
// from version 0 always fails and carries the current version).
func currentVersion(ctx context.Context, client *http.Client, base string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/discovery/services-delta.json", bytes.NewReader([]byte(`{"version":0}`)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot read the version: %w", err)
	}
	defer resp.Body.Close()
	var v struct {
		Version int64 `json:"version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, fmt.Errorf("cannot read the version: %w", err)
	}
	return v.Version, nil
}

// probeLatency times n sequential GETs of url.
func probeLatency(ctx context.Context, client *http.Client, url string, n int) (LatencyQuantiles, error) {
	lat := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return LatencyQuantiles{}, err
		}
		drain(resp.Body)
		if resp.StatusCode != 200 {
			return LatencyQuantiles{}, fmt.Errorf("unexpected status %d from %s", resp.StatusCode, url)
		}
		lat = append(lat, time.Since(start))
	}
	return quantiles(lat), nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func (s Summary) line() string {
	l := fmt.Sprintf("%-14s rate %6.0f/%6.0f  ok %.4f  p50 %-9v p90 %-9v p99 %-9v p99.9 %-9v max %-9v",
		s.Name, s.AchievedRate, s.RequestedRate, s.Success, s.Latency.P50.Round(time.Microsecond), s.Latency.P90.Round(time.Microsecond),
		s.Latency.P99.Round(time.Microsecond), s.Latency.P999.Round(time.Microsecond), s.Latency.Max.Round(time.Microsecond))
	if s.Server != nil {
		l += fmt.Sprintf("  server cpu %.0f%% rss %s", s.Server.CPUPercent, mib(s.Server.RSSBytes))
	}
	if s.ServerGCs >= 0 {
		l += fmt.Sprintf(" gc %d", s.ServerGCs)
	}
	if s.Generator != nil {
		l += "  " + s.Generator.String()
	}
	if s.ServerBefore != nil && s.ServerAfter != nil {
		l += fmt.Sprintf("  (before→after: rss %s→%s, goroutines %d→%d)", mib(s.ServerBefore.RSSBytes), mib(s.ServerAfter.RSSBytes),
			s.ServerBefore.Goroutines, s.ServerAfter.Goroutines)
	}
	for _, k := range sortedErrors(s.Errors) {
		l += fmt.Sprintf("\n    %d× %s", s.Errors[k], k)
	}
	return l
}

func (q LatencyQuantiles) String() string {
	return fmt.Sprintf("p50 %v p99 %v p99.9 %v max %v", q.P50.Round(time.Microsecond), q.P99.Round(time.Microsecond),
		q.P999.Round(time.Microsecond), q.Max.Round(time.Microsecond))
}
