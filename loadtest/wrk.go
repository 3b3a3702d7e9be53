package loadtest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HeartbeatVsNoop (make heartbeat-vs-noop) measures the heartbeat path at
// saturation against the framework's own ceiling: wrk, closed model (a
// fixed number of connections, each sending its next request when the
// answer arrives), one-instance heartbeat.json bodies spread over every
// seeded instance, alternately against a registry and against the Hertz
// no-op twin, in pairs. wrk is C and costs far less per request than vegeta,
// whose own CPU caps a 2-core machine below either server's ceiling.

//go:embed wrk/heartbeat.lua
var wrkHeartbeatScript []byte

// Defaults taken by zero WrkConfig fields.
const (
	defaultWrkConns    = 32
	defaultWrkThreads  = 1
	defaultWrkDuration = 10 * time.Second
	defaultWrkWarmup   = 3 * time.Second
	defaultWrkPairs    = 3
	defaultWrkResults  = "results/heartbeat-vs-noop"
	// wrkLeaseTTL outlives every run: the no-op's turns renew nothing, and
	// an instance expiring between the registry's would make its
	// heartbeats data-not-found.
	wrkLeaseTTL = 30 * time.Minute
	// wrkMaxDuration bounds one run, and wrkSlack the wait for wrk beyond it.
	wrkMaxDuration = 5 * time.Minute
	wrkSlack       = 30 * time.Second
)

// WrkConfig configures HeartbeatVsNoop. Zero fields take the defaults named.
type WrkConfig struct {
	Binary     string // artemis executable: its server and noop subcommands are started
	NoopBinary string // the no-op twin's executable, when another (a revision against another's twin)
	Wrk        string // wrk executable ("wrk" on PATH)
	ServerCPUs string // taskset -c of both servers (empty: no pinning)
	GenCPUs    string // taskset -c of wrk (empty: no pinning)

	Instances int           // seeded instances (100,000), over Services (1,000)
	Services  int           //
	Conns     int           // wrk connections (32)
	Threads   int           // wrk threads (1)
	Duration  time.Duration // of each measured run (10 s)
	Warmup    time.Duration // one unmeasured run on each server first (3 s; negative: none)
	Pairs     int           // registry/no-op pairs (3), alternating ABBA
	MinRatio  float64       // the gate on the median ratio (0: report only)

	// CPUProfile, when set, is where a CPU profile of the registry under
	// the same load goes: an extra run, after the measured ones, on a
	// registry started with --pprof (which also turns on mutex and block
	// profiling, so it is never one of the measured servers).
	CPUProfile string

	ResultsDir string // the report goes to ResultsDir/<stamp>.md (results/heartbeat-vs-noop)
	Rev        string // what is measured, for the report (git describe of the work tree)
	Command    string // the command line, for the report
}

func (c WrkConfig) withDefaults() (WrkConfig, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Instances, defaultInstances)
	def(&c.Services, defaultServices)
	def(&c.Conns, defaultWrkConns)
	def(&c.Threads, defaultWrkThreads)
	def(&c.Pairs, defaultWrkPairs)
	if c.Wrk == "" {
		c.Wrk = "wrk"
	}
	if c.Duration == 0 {
		c.Duration = defaultWrkDuration
	}
	if c.Warmup == 0 {
		c.Warmup = defaultWrkWarmup
	}
	if c.ResultsDir == "" {
		c.ResultsDir = defaultWrkResults
	}
	if c.Rev == "" {
		c.Rev = gitDescribe()
	}
	switch {
	case c.Binary == "":
		return c, fmt.Errorf("cannot start servers: no artemis binary given")
	case c.Instances < 1 || c.Services < 1 || c.Services > c.Instances:
		return c, fmt.Errorf("cannot seed %d instances over %d services", c.Instances, c.Services)
	case c.Conns < 1 || c.Threads < 1 || c.Threads > c.Conns:
		return c, fmt.Errorf("cannot run wrk with %d threads over %d connections", c.Threads, c.Conns)
	case c.Duration < time.Second || c.Duration > wrkMaxDuration || c.Warmup > wrkMaxDuration:
		return c, fmt.Errorf("cannot use duration %v (warm-up %v): must be in [1s, %v]", c.Duration, c.Warmup, wrkMaxDuration)
	case c.Pairs < 1 || c.Pairs > 20:
		return c, fmt.Errorf("cannot run %d pairs: must be in [1, 20]", c.Pairs)
	}
	if _, err := exec.LookPath(c.Wrk); err != nil {
		return c, fmt.Errorf("cannot find wrk (%q): install it (Debian: apt-get install -y wrk): %w", c.Wrk, err)
	}
	return c, nil
}

// WrkRun is one wrk run against one server.
type WrkRun struct {
	Server    string        // "registry" or "noop"
	Pair      int           // 1-based; 0 for a warm-up or the profiled run
	Requests  int64         // answers received
	Elapsed   time.Duration // wrk's measured duration
	Rate      float64       // answers per second
	SocketErr int64         // connect, read, write and timeout errors
	Non2xx    int64         // answers outside 2xx/3xx
	P50, P90  time.Duration
	P99, Max  time.Duration
	// Renewals and Successes are the registry's own counts over the run
	// (artemis_renewals_total and the heartbeat endpoint's success
	// results); -1 for the no-op.
	Renewals  int64
	Successes int64
	CPU       *ProcessStats // the server's CPU over the run
	GenCPU    *ProcessStats // wrk's (read just before it ends)
	Load      string        // /proc/loadavg before the run
	// Steal is the share of the machine's CPU time the hypervisor gave to
	// others during the run (/proc/stat's steal over all its time), in
	// percent; -1 when unknown. A contended host shows here.
	Steal float64
}

// check returns why a run's answers cannot be counted as heartbeats done,
// or "" when they can: no socket errors, no error statuses and, on the
// registry, one renewal and one in-band success per answer (in-flight
// requests when wrk stopped may add up to one per connection).
func (r *WrkRun) check(conns int) string {
	switch {
	case r.Requests == 0:
		return "no answers"
	case r.SocketErr != 0:
		return fmt.Sprintf("%d socket errors", r.SocketErr)
	case r.Non2xx != 0:
		return fmt.Sprintf("%d answers outside 2xx/3xx", r.Non2xx)
	case r.Server != "registry":
		return ""
	case r.Renewals < r.Requests || r.Renewals > r.Requests+int64(conns):
		return fmt.Sprintf("%d renewals for %d answers: not every heartbeat renewed its instance", r.Renewals, r.Requests)
	case r.Successes < r.Requests || r.Successes > r.Requests+int64(conns):
		return fmt.Sprintf("%d in-band successes for %d answers", r.Successes, r.Requests)
	}
	return ""
}

// cpuPerAnswer is the server's CPU time per answer (0 when unknown): what
// a heartbeat costs it whatever share of the machine it got.
func (r *WrkRun) cpuPerAnswer() time.Duration {
	if r.CPU == nil || r.Requests == 0 {
		return 0
	}
	return time.Duration(r.CPU.CPUSeconds * float64(time.Second) / float64(r.Requests))
}

func (r *WrkRun) line() string {
	l := fmt.Sprintf("%-8s %8.0f req/s  p50 %-8v p90 %-8v p99 %-8v max %-8v", r.Server, r.Rate,
		r.P50, r.P90, r.P99, r.Max)
	if r.CPU != nil {
		l += fmt.Sprintf("  server cpu %3.0f%% (%v/answer)", r.CPU.CPUPercent, r.cpuPerAnswer().Round(10*time.Nanosecond))
	}
	if r.GenCPU != nil {
		l += fmt.Sprintf("  wrk cpu %3.0f%%", r.GenCPU.CPUPercent)
	}
	if r.Renewals >= 0 {
		l += fmt.Sprintf("  renewals %d for %d answers", r.Renewals, r.Requests)
	}
	l += "  load " + r.Load
	if r.Steal >= 0 {
		l += fmt.Sprintf("  steal %.1f%%", r.Steal)
	}
	return l
}

// WrkReport is the outcome of HeartbeatVsNoop.
type WrkReport struct {
	Config  WrkConfig
	Date    time.Time
	Machine Machine
	Go      string
	WrkVer  string
	Seed    SeedStats
	Warmups []WrkRun
	Runs    []WrkRun  // in the order run
	Ratios  []float64 // registry/no-op throughput, per pair
	Median  float64
	// CPURatios are, per pair, the no-op's server CPU per answer over the
	// registry's: the throughput ratio were each to get the same CPU (on a
	// shared machine the servers' CPU shares differ from run to run).
	CPURatios  []float64
	CPUMedian  float64
	Profile    string  // the CPU profile written, if any
	ProfileRun *WrkRun // the profiled run
	Err        string  // why the runs stopped before the end, if they did
}

// HeartbeatVsNoop starts a registry and its no-op twin on loopback, seeds
// the registry, and runs wrk against each in turn. Progress goes to
// progress (nil: none).
func HeartbeatVsNoop(ctx context.Context, cfg WrkConfig, progress io.Writer) (_ *WrkReport, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		if progress != nil {
			fmt.Fprintf(progress, format+"\n", args...)
		}
	}
	raiseFileLimit()
	script, err := writeTemp("artemis-heartbeat-*.lua", wrkHeartbeatScript)
	if err != nil {
		return nil, err
	}
	defer os.Remove(script)
	rep := &WrkReport{Config: cfg, Date: time.Now().UTC(), Go: runtime.Version(), WrkVer: wrkVersion(cfg.Wrk),
		Machine: Machine{NProc: onlineCPUs(), CPUModel: cpuModel(), GOMAXPROCS: runtime.GOMAXPROCS(0)}}
	rep.Machine.Hostname, _ = os.Hostname()
	defer func() { // a run that stops early still reports the pairs it completed
		rep.Median, rep.CPUMedian = median(rep.Ratios), median(rep.CPURatios)
		if err != nil {
			rep.Err = err.Error()
		}
	}()
	if v, err := exec.Command(cfg.Binary, "version").Output(); err == nil {
		rep.Go += ", registry " + strings.TrimSpace(string(v))
	}
	if v, err := exec.Command(cmp.Or(cfg.NoopBinary, cfg.Binary), "version").Output(); err == nil {
		rep.Go += ", no-op twin " + strings.TrimSpace(string(v))
	}

	var children []*child
	defer func() {
		for _, c := range children {
			c.stop()
			if e := c.diedEarly(); e != nil && err == nil {
				err = e
			}
		}
	}()
	start := func(args ...string) (*child, error) {
		c, err := startChild(ctx, cfg.Binary, cfg.ServerCPUs, args...)
		if err == nil {
			children = append(children, c)
		}
		return c, err
	}
	regArgs := []string{"server", "--lease-ttl", wrkLeaseTTL.String(), "--store", "memory"}
	reg, err := start(regArgs...)
	if err != nil {
		return nil, err
	}
	noopBin := cmp.Or(cfg.NoopBinary, cfg.Binary)
	noop, err := startChild(ctx, noopBin, cfg.ServerCPUs, "noop")
	if err != nil {
		return nil, err
	}
	children = append(children, noop)
	logf("registry on %s (pid %d), no-op twin on %s (pid %d), servers pinned to %q, wrk to %q",
		reg.base, reg.pid(), noop.base, noop.pid(), cfg.ServerCPUs, cfg.GenCPUs)
	if rep.Seed, err = seedWrk(ctx, reg.base, cfg, progress); err != nil {
		return rep, err
	}
	logf("seeded %d instances in %v", rep.Seed.Instances, rep.Seed.Elapsed.Round(time.Millisecond))

	run := func(c *child, name string, pair int, d time.Duration) (*WrkRun, error) {
		r, err := runWrk(ctx, cfg, script, c, name, d)
		if err != nil {
			return nil, err
		}
		r.Pair = pair
		if why := r.check(cfg.Conns); why != "" {
			return r, fmt.Errorf("cannot count the %s run: %s (%s)", name, why, r.line())
		}
		return r, nil
	}
	if cfg.Warmup > 0 {
		for _, s := range []struct {
			c    *child
			name string
		}{{reg, "registry"}, {noop, "noop"}} {
			r, err := run(s.c, s.name, 0, cfg.Warmup)
			if err != nil {
				return rep, err
			}
			rep.Warmups = append(rep.Warmups, *r)
			logf("warm-up  %s", r.line())
		}
	}
	for p := 1; p <= cfg.Pairs; p++ {
		order := []string{"registry", "noop"}
		if p%2 == 0 { // ABBA: neither server always runs first
			order = []string{"noop", "registry"}
		}
		var regRate, noopRate float64
		var regCPU, noopCPU time.Duration
		for _, name := range order {
			c := reg
			if name == "noop" {
				c = noop
			}
			r, err := run(c, name, p, cfg.Duration)
			if err != nil {
				return rep, err
			}
			rep.Runs = append(rep.Runs, *r)
			logf("pair %d   %s", p, r.line())
			if name == "noop" {
				noopRate, noopCPU = r.Rate, r.cpuPerAnswer()
			} else {
				regRate, regCPU = r.Rate, r.cpuPerAnswer()
			}
		}
		rep.Ratios = append(rep.Ratios, regRate/noopRate)
		if regCPU > 0 && noopCPU > 0 {
			rep.CPURatios = append(rep.CPURatios, float64(noopCPU)/float64(regCPU))
		}
		logf("pair %d   registry/noop %.3f (CPU per answer: %.3f)", p, regRate/noopRate, float64(noopCPU)/float64(max(regCPU, 1)))
	}
	if cfg.CPUProfile != "" {
		if err := profileWrk(ctx, cfg, script, rep, logf); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// seedWrk registers the fixture the script heartbeats (loadtest's seed).
func seedWrk(ctx context.Context, base string, cfg WrkConfig, progress io.Writer) (SeedStats, error) {
	lc, err := Config{Instances: cfg.Instances, Services: cfg.Services, Scenario: "heartbeat"}.withDefaults()
	if err != nil {
		return SeedStats{}, err
	}
	client := httpClient()
	defer client.CloseIdleConnections()
	return seed(ctx, client, base, lc, progress)
}

// runWrk runs wrk against c for d and reads the server's counters around it.
func runWrk(ctx context.Context, cfg WrkConfig, script string, c *child, name string, d time.Duration) (*WrkRun, error) {
	r := &WrkRun{Server: name, Renewals: -1, Successes: -1, Load: loadAvg(), Steal: -1}
	steal0, total0, stealOK := cpuSteal()
	defer func() {
		if steal1, total1, ok := cpuSteal(); ok && stealOK && total1 > total0 {
			r.Steal = 100 * float64(steal1-steal0) / float64(total1-total0)
		}
	}()
	var before registryCounters
	if name == "registry" {
		var err error
		if before, err = scrapeRegistry(ctx, c.base); err != nil {
			return nil, err
		}
	}
	argv := []string{cfg.Wrk, "-t" + strconv.Itoa(cfg.Threads), "-c" + strconv.Itoa(cfg.Conns),
		"-d" + strconv.Itoa(int(d.Round(time.Second)/time.Second)) + "s", "-s", script, c.base,
		"--", strconv.Itoa(cfg.Instances), strconv.Itoa(cfg.Services), "default"}
	if cfg.GenCPUs != "" {
		if ts, err := exec.LookPath("taskset"); err == nil {
			argv = append([]string{ts, "-c", cfg.GenCPUs}, argv...)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, d+wrkSlack)
	defer cancel()
	cmd := exec.CommandContext(wctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	smp := startSampler(c.pid(), cfg.ServerCPUs)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot run %s: %w", strings.Join(argv, " "), err)
	}
	gen := startSampler(cmd.Process.Pid, cfg.GenCPUs)
	// The generator's CPU is read just before it exits: its summary is
	// printed after the run, so this misses only that.
	time.AfterFunc(d-100*time.Millisecond, func() { r.GenCPU = gen.stop() })
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("cannot run %s: %w\n%s", strings.Join(argv, " "), err, out.String())
	}
	r.CPU = smp.stop()
	if err := r.parse(out.String()); err != nil {
		return nil, fmt.Errorf("cannot read the output of %s: %w\n%s", strings.Join(argv, " "), err, out.String())
	}
	if name == "registry" {
		// A request wrk gave up on at its deadline may still be in the
		// handler: let it finish before counting.
		time.Sleep(100 * time.Millisecond)
		after, err := scrapeRegistry(ctx, c.base)
		if err != nil {
			return nil, err
		}
		r.Renewals, r.Successes = after.renewals-before.renewals, after.successes-before.successes
	}
	return r, nil
}

// parse reads the script's wrk-result line.
func (r *WrkRun) parse(out string) error {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "wrk-result ")
		if !ok {
			continue
		}
		v := map[string]int64{}
		for _, f := range strings.Fields(rest) {
			k, s, _ := strings.Cut(f, "=")
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("cannot parse %q: %w", f, err)
			}
			v[k] = n
		}
		us := func(k string) time.Duration { return time.Duration(v[k]) * time.Microsecond }
		r.Requests, r.Elapsed = v["requests"], us("duration_us")
		r.SocketErr = v["connect"] + v["read"] + v["write"] + v["timeout"]
		r.Non2xx = v["status"]
		r.P50, r.P90, r.P99, r.Max = us("p50_us"), us("p90_us"), us("p99_us"), us("max_us")
		if r.Elapsed <= 0 {
			return fmt.Errorf("no duration in %q", rest)
		}
		r.Rate = float64(r.Requests) / r.Elapsed.Seconds()
		return nil
	}
	return fmt.Errorf("no wrk-result line")
}

type registryCounters struct{ renewals, successes int64 }

// scrapeRegistry reads the registry's renewal counter and the heartbeat
// endpoint's in-band successes from /metrics.
func scrapeRegistry(ctx context.Context, base string) (registryCounters, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return registryCounters{}, fmt.Errorf("cannot read %s/metrics: %w", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return registryCounters{}, fmt.Errorf("cannot read %s/metrics: %w", base, err)
	}
	c := registryCounters{renewals: -1, successes: -1}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch name {
		case "artemis_renewals_total":
			c.renewals = int64(f)
		case `artemis_http_requests_total{endpoint="/api/registry/heartbeat.json",result="success"}`:
			c.successes = int64(f)
		}
	}
	if c.renewals < 0 || c.successes < 0 {
		return c, fmt.Errorf("cannot find the renewal and heartbeat success counters in %s/metrics", base)
	}
	return c, nil
}

// profileWrk runs the load once more against a fresh registry started with
// --pprof, and saves a CPU profile of the middle of the run.
func profileWrk(ctx context.Context, cfg WrkConfig, script string, rep *WrkReport, logf func(string, ...any)) error {
	c, err := startChild(ctx, cfg.Binary, cfg.ServerCPUs, "server", "--lease-ttl", wrkLeaseTTL.String(), "--store", "memory", "--pprof")
	if err != nil {
		return err
	}
	defer c.stop()
	if _, err := seedWrk(ctx, c.base, cfg, nil); err != nil {
		return err
	}
	secs := max(int((cfg.Duration-2*time.Second)/time.Second), 1)
	type result struct {
		b   []byte
		err error
	}
	prof := make(chan result, 1)
	go func() {
		time.Sleep(time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			prof <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
		}
		prof <- result{b, err}
	}()
	r, err := runWrk(ctx, cfg, script, c, "registry", cfg.Duration)
	if err != nil {
		return err
	}
	p := <-prof
	if p.err != nil {
		return fmt.Errorf("cannot read the CPU profile: %w", p.err)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.CPUProfile), 0o755); err != nil {
		return fmt.Errorf("cannot create the profile's directory: %w", err)
	}
	if err := os.WriteFile(cfg.CPUProfile, p.b, 0o644); err != nil {
		return fmt.Errorf("cannot write the CPU profile: %w", err)
	}
	rep.Profile, rep.ProfileRun = cfg.CPUProfile, r
	logf("profiled %s (%ds of it): %s", r.line(), secs, cfg.CPUProfile)
	return nil
}

// Passed reports whether the median ratio meets the configured gate.
func (r *WrkReport) Passed() bool { return r.Median >= r.Config.MinRatio }

// Write saves the report as Markdown in the configured results directory.
func (r *WrkReport) Write() (string, error) {
	dir := r.Config.ResultsDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot create %s: %w", dir, err)
	}
	name := filepath.Join(dir, r.Date.Format("20060102T150405Z")+".md")
	if err := os.WriteFile(name, []byte(r.Markdown()), 0o644); err != nil {
		return "", fmt.Errorf("cannot write the report: %w", err)
	}
	return name, nil
}

// Markdown renders the report.
func (r *WrkReport) Markdown() string {
	c := r.Config
	var b strings.Builder
	fmt.Fprintf(&b, "# Heartbeat vs the no-op twin, %s\n\n", r.Date.Format(time.RFC3339))
	fmt.Fprintf(&b, "- command: `%s`\n", c.Command)
	fmt.Fprintf(&b, "- measured: %s (%s)\n", c.Rev, r.Go)
	fmt.Fprintf(&b, "- machine: nproc %d, CPU `%s`, host %s\n", r.Machine.NProc, r.Machine.CPUModel, r.Machine.Hostname)
	fmt.Fprintf(&b, "- generator: %s, `-t%d -c%d`, %v per run, %v warm-up per server; servers pinned to %q, wrk to %q\n",
		r.WrkVer, c.Threads, c.Conns, c.Duration, max(c.Warmup, 0), c.ServerCPUs, c.GenCPUs)
	fmt.Fprintf(&b, "- load: %d instances over %d services (seeded in %v), one-instance heartbeat.json bodies spread over all of them\n",
		r.Seed.Instances, c.Services, r.Seed.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "- checks: no socket errors, no non-2xx answers; registry runs: one renewal and one in-band success per answer (from its /metrics)\n\n")
	if r.Err != "" {
		fmt.Fprintf(&b, "**Stopped early**, after %d complete pairs: %s\n\n", len(r.Ratios), r.Err)
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintf(&b, "**Median registry/no-op throughput ratio: %.3f** over %d pairs (%s)", r.Median, len(r.Ratios), fmtRatios(r.Ratios))
		if c.MinRatio > 0 && r.Err == "" {
			verdict := "meets"
			if !r.Passed() {
				verdict = "misses"
			}
			fmt.Fprintf(&b, "; %s the gate of %.2f", verdict, c.MinRatio)
		}
		b.WriteString("\n\n")
	}
	if len(r.CPURatios) > 0 {
		fmt.Fprintf(&b, "Median no-op/registry server CPU per answer: %.3f (%s): the throughput ratio were both servers to get the same CPU.\n\n",
			r.CPUMedian, fmtRatios(r.CPURatios))
	}
	b.WriteString("| pair | server | req/s | p50 | p90 | p99 | max | server CPU | CPU per answer | wrk CPU | renewals / answers | loadavg before | steal |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	rows := slices.Concat(r.Warmups, r.Runs)
	if r.ProfileRun != nil {
		rows = append(rows, *r.ProfileRun)
	}
	for i, w := range rows {
		pair := strconv.Itoa(w.Pair)
		switch {
		case i < len(r.Warmups):
			pair = "warm-up"
		case i >= len(r.Warmups)+len(r.Runs):
			pair = "profiled (--pprof)"
		}
		cpu, gen, ren := "", "", "—"
		if w.CPU != nil {
			cpu = fmt.Sprintf("%.0f %%", w.CPU.CPUPercent)
		}
		if w.GenCPU != nil {
			gen = fmt.Sprintf("%.0f %%", w.GenCPU.CPUPercent)
		}
		if w.Renewals >= 0 {
			ren = fmt.Sprintf("%d / %d", w.Renewals, w.Requests)
		}
		per := ""
		if d := w.cpuPerAnswer(); d > 0 {
			per = d.Round(10 * time.Nanosecond).String()
		}
		steal := ""
		if w.Steal >= 0 {
			steal = fmt.Sprintf("%.1f %%", w.Steal)
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %v | %v | %v | %v | %s | %s | %s | %s | %s | %s |\n", pair, w.Server, w.Rate,
			w.P50, w.P90, w.P99, w.Max, cpu, per, gen, ren, w.Load, steal)
	}
	if r.Profile != "" {
		fmt.Fprintf(&b, "\nCPU profile of the registry (profiled run): `%s`\n", r.Profile)
	}
	return b.String()
}

func fmtRatios(rs []float64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%.3f", r)
	}
	return strings.Join(s, ", ")
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func writeTemp(pattern string, b []byte) (string, error) {
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return "", fmt.Errorf("cannot create a temporary file: %w", err)
	}
	_, err = f.Write(b)
	if e := f.Close(); err == nil {
		err = e
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("cannot write %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

func wrkVersion(bin string) string {
	out, _ := exec.Command(bin, "--version").CombinedOutput() // wrk prints its usage and exits 1
	line, _, _ := strings.Cut(string(out), "\n")
	if f := strings.Fields(line); len(f) >= 2 {
		return f[0] + " " + f[1]
	}
	return "wrk"
}

// cpuSteal reads the machine's steal time and its total CPU time (in
// clock ticks, every CPU) from /proc/stat.
func cpuSteal() (steal, total uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	return parseCPUSteal(string(b))
}

// parseCPUSteal reads the aggregate "cpu" line of /proc/stat: user nice
// system idle iowait irq softirq steal [guest guest_nice]; the guest times
// are already counted in user and nice.
func parseCPUSteal(stat string) (steal, total uint64, ok bool) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, false
	}
	for i, s := range f[1:9] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += n
		if i == 7 {
			steal = n
		}
	}
	return steal, total, true
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}
