package loadtest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Scenarios the generator knows.
var Scenarios = []string{"heartbeat", "service", "lookup", "delta", "churn", "mixed", "noop", "push", "idle-ws"}

// Defaults taken by zero Config fields.
const (
	defaultInstances   = 100_000
	defaultServices    = 1_000
	defaultSeedBatch   = 1_000
	defaultSeedWorkers = 4
	defaultScenario    = "mixed"
	defaultRate        = 2_000
	defaultDuration    = 30 * time.Second
	defaultMaxP99      = 10 * time.Millisecond
	defaultStepTime    = 10 * time.Second
	defaultRefine      = 4
	defaultTimeout     = 10 * time.Second
	defaultLeaseTTL    = 20 * time.Second
	defaultResultsDir  = "results"
	maxDuration        = 30 * time.Minute
)

// Config describes one load-test run.
type Config struct {
	// Target is the base URL of a running registry. Empty: the generator
	// starts bin/artemis itself (see Binary) on a free loopback port.
	Target string
	// Binary is the artemis executable used to start servers (the running one).
	Binary string
	// ServerCPUs pins started servers with taskset -c (e.g. "0" or "0-3"); empty: no pinning.
	ServerCPUs string
	// LeaseTTL of a started server.
	LeaseTTL time.Duration

	Instances      int // seeded instances (100,000)
	Services       int // over this many services (1,000)
	SeedBatch      int // instances per register request while seeding (1,000)
	SeedWorkers    int // concurrent seeding requests (4)
	HeartbeatBatch int // instances per heartbeat request (1)

	Scenario string        // one of Scenarios (mixed)
	Rate     int           // requests per second, open model (2,000)
	Duration time.Duration // of the attack (30 s)
	Timeout  time.Duration // per request (10 s)

	// FindMax steps the rate up from Rate by StepFactor for StepTime each and
	// reports the highest rate whose P99 stays under MaxP99 with no errors.
	FindMax    bool
	MaxP99     time.Duration // 10 ms
	StepTime   time.Duration // 10 s
	StepFactor float64       // 1.25
	MaxRate    int           // stop stepping here (200,000)
	// StepTries: a rate fails when this many tries in a row fail (2).
	StepTries int
	// Refine bisects this many times between a side's last passing rate
	// and its first failing one once the stepping ends (4; negative: none),
	// so a maximum is not quantised to powers of StepFactor: 4 steps leave
	// it within 1/64 of the bracket (0.4 % of the rate at ×1.25).
	Refine int

	// Noop runs the same attack against a no-op Hertz server as a twin.
	Noop bool
	// Cluster, with FindMax and at least 2, searches a cluster of that many
	// nodes (peers of each other, requests spread over them) beside one
	// node instead of beside the no-op twin, rate by rate in the same run.
	Cluster int
	// Rounds > 1 interleaves the two: Duration is cut into Rounds segments
	// on each server, alternating (registry, no-op, no-op, registry, ...),
	// so both sample the same moments of a noisy machine. Not with FindMax.
	Rounds int
	// SeedOnly seeds, reports the seeding rate and server RSS, and stops.
	SeedOnly bool
	// Keepalive heartbeats every seeded instance every TTL/3 in batches of
	// KeepaliveBatch (100), not measured, so they stay alive for the whole
	// run. Only the registry gets them: the no-op twin holds no leases, and
	// on a small machine the generator's time is the server's.
	Keepalive      bool
	KeepaliveBatch int

	// Subscribers of the push scenario (1,000) and connections of idle-ws (10,000).
	Subscribers int
	IdleConns   int
	// WSLibrary is the started registry's WebSocket implementation
	// (--ws-library); "" keeps the server's default.
	WSLibrary string

	ResultsDir string // where reports go (results)
	// PlotDir is where a run's HTML plot (vegeta's, about 0.5 MB) goes:
	// outside the committed results by default ($TMPDIR/artemis-plots); a
	// plot results/README.md cites is copied into results/ by hand.
	PlotDir string
	Record  bool   // append a row to ResultsDir/README.md
	Label   string // free text for the report
}

func (c Config) withDefaults() (Config, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Instances, defaultInstances)
	def(&c.Services, defaultServices)
	def(&c.SeedBatch, defaultSeedBatch)
	def(&c.SeedWorkers, defaultSeedWorkers)
	def(&c.HeartbeatBatch, 1)
	def(&c.KeepaliveBatch, 100)
	def(&c.Subscribers, 1000)
	def(&c.IdleConns, 10_000)
	def(&c.Rate, defaultRate)
	def(&c.MaxRate, 200_000)
	def(&c.StepTries, 2)
	def(&c.Refine, defaultRefine)
	if c.Scenario == "" {
		c.Scenario = defaultScenario
	}
	if c.Duration == 0 {
		c.Duration = defaultDuration
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.MaxP99 == 0 {
		c.MaxP99 = defaultMaxP99
	}
	if c.StepTime == 0 {
		c.StepTime = defaultStepTime
	}
	if c.StepFactor == 0 {
		c.StepFactor = 1.25
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = defaultLeaseTTL
	}
	if c.ResultsDir == "" {
		c.ResultsDir = defaultResultsDir
	}
	if c.PlotDir == "" {
		c.PlotDir = filepath.Join(os.TempDir(), "artemis-plots")
	}
	switch {
	case !slices.Contains(Scenarios, c.Scenario):
		return c, fmt.Errorf("cannot run scenario %q: want one of %s", c.Scenario, strings.Join(Scenarios, ", "))
	case c.Instances < 1 || c.Services < 1 || c.Services > c.Instances:
		return c, fmt.Errorf("cannot seed %d instances over %d services", c.Instances, c.Services)
	case c.HeartbeatBatch < 1 || c.HeartbeatBatch > c.Instances:
		return c, fmt.Errorf("cannot use heartbeat batch %d", c.HeartbeatBatch)
	case c.Rate < 1:
		return c, fmt.Errorf("cannot use rate %d: must be positive", c.Rate)
	case c.Duration <= 0 || c.Duration > maxDuration:
		return c, fmt.Errorf("cannot use duration %v: must be in (0, %v]", c.Duration, maxDuration)
	case c.StepTries < 1:
		return c, fmt.Errorf("cannot use %d step tries: must be at least 1", c.StepTries)
	case c.StepFactor <= 1:
		return c, fmt.Errorf("cannot use step factor %v: must be above 1", c.StepFactor)
	}
	if c.Target != "" {
		if err := checkLoopback(c.Target); err != nil {
			return c, err
		}
	}
	return c, nil
}

// checkLoopback refuses any target that is not on this machine's loopback.
func checkLoopback(target string) error {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("cannot use target %q: not an http URL", target)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("cannot use target %q: load tests only target loopback addresses (127.0.0.1)", target)
}
