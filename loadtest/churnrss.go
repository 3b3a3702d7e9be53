package loadtest

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ChurnRSS (make churn) asks whether the registry's memory stays flat while
// its instances are replaced: a fresh node is seeded with Instances, then
// every Period a Share of them (10 % of 100,000 a minute) is unregistered,
// picked at random among those registered, and as many instances with new
// ids are registered, spread evenly over the period in batches every Tick.
// New ids matter: an id that came back would reuse its lease slot and
// records, where a new one makes the registry free the old ones and place
// the new. Every SampleEvery the node's RSS (/proc) and its /metrics (Go
// heap, GC cycles, instance count, record arena bytes and compactions, the
// change log) are sampled; the report fits a line to RSS over the samples
// from Settle to the end.
//
// The instances must not expire during the run. By default the node's lease
// TTL is the run's duration plus churnLeaseSlack, and nothing heartbeats;
// with Heartbeat the node keeps LeaseTTL (20 s) and every registered
// instance is renewed once per LeaseTTL/3, in batches of
// churnHeartbeatBatch, as clients would.
//
// Every request must answer HTTP 200 with an in-band success, the node's
// instance count must stay within one batch of Instances at every sample,
// and its own counters must agree with what was sent; any miss fails the
// run (the report is written either way).

// Defaults taken by zero ChurnConfig fields.
const (
	defaultChurnDuration = 10 * time.Minute
	defaultChurnPeriod   = time.Minute
	defaultChurnShare    = 0.1
	defaultChurnTick     = time.Second
	defaultChurnSample   = 10 * time.Second
	defaultChurnSettle   = 2 * time.Minute
	defaultChurnResults  = "results/churn"
	// churnLeaseSlack is added to the run's duration for the node's lease
	// TTL when nothing heartbeats: seeding and the last samples fit in it.
	churnLeaseSlack = 10 * time.Minute
	// churnRequestMax bounds the instances of one register or unregister
	// request (a catch-up after a stall is sent in several).
	churnRequestMax = 1000
	// churnHeartbeatBatch is the instances of one heartbeat request.
	churnHeartbeatBatch = 100
	maxChurnDuration    = time.Hour
	// churnSlack bounds the run beyond its duration (the last requests and
	// samples, a slow stop).
	churnSlack = 2 * time.Minute
	// maxFailureExamples is how many failed requests the report quotes.
	maxFailureExamples = 10
)

// ChurnConfig configures ChurnRSS. Zero fields take the defaults named.
type ChurnConfig struct {
	Binary     string `json:"binary"`               // artemis executable: its server subcommand is started
	ServerCPUs string `json:"serverCpus,omitempty"` // taskset -c of the node (empty: no pinning)

	Instances int           `json:"instances"` // seeded and kept registered (100,000)
	Services  int           `json:"services"`  // the instances spread over (1,000)
	Duration  time.Duration `json:"durationNs"`
	Period    time.Duration `json:"periodNs"`      // Share of Instances is replaced every Period (1 min)
	Share     float64       `json:"share"`         // 0.1
	Tick      time.Duration `json:"tickNs"`        // a batch every Tick (1 s)
	Sample    time.Duration `json:"sampleEveryNs"` // a sample every Sample (10 s)
	// Settle is where the verdict's window starts (2 min): the first
	// minutes fill the change log and the arenas' free space.
	Settle time.Duration `json:"settleNs"`
	// Heartbeat renews every instance once per LeaseTTL/3 at the node's
	// LeaseTTL (20 s) instead of giving the node a TTL past the run.
	Heartbeat bool          `json:"heartbeat"`
	LeaseTTL  time.Duration `json:"leaseTtlNs"` // set by withDefaults from Heartbeat and Duration

	ResultsDir string `json:"-"`       // reports go to ResultsDir/<stamp>.md and .json (results/churn)
	Rev        string `json:"rev"`     // what is measured (git describe of the work tree)
	Command    string `json:"command"` // the command line, for the report
}

func (c ChurnConfig) withDefaults() (ChurnConfig, error) {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Instances == 0 {
		c.Instances = defaultInstances
	}
	if c.Services == 0 {
		c.Services = defaultServices
	}
	if c.Share == 0 {
		c.Share = defaultChurnShare
	}
	def(&c.Duration, defaultChurnDuration)
	def(&c.Period, defaultChurnPeriod)
	def(&c.Tick, defaultChurnTick)
	def(&c.Sample, defaultChurnSample)
	def(&c.Settle, defaultChurnSettle)
	if c.LeaseTTL == 0 {
		c.LeaseTTL = c.Duration + churnLeaseSlack
		if c.Heartbeat {
			c.LeaseTTL = defaultLeaseTTL
		}
	}
	if c.ResultsDir == "" {
		c.ResultsDir = defaultChurnResults
	}
	switch {
	case c.Instances < 1 || c.Services < 1 || c.Services > c.Instances:
		return c, fmt.Errorf("cannot seed %d instances over %d services", c.Instances, c.Services)
	case c.Share <= 0 || c.Share > 1:
		return c, fmt.Errorf("cannot replace a share %v of the instances per period: must be in (0, 1]", c.Share)
	case c.Duration <= 0 || c.Duration > maxChurnDuration:
		return c, fmt.Errorf("cannot churn for %v: must be in (0, %v]", c.Duration, maxChurnDuration)
	case c.Tick <= 0 || c.Tick > c.Period || c.Sample < c.Tick:
		return c, fmt.Errorf("cannot use tick %v, period %v, sample every %v: want 0 < tick <= period and sample >= tick",
			c.Tick, c.Period, c.Sample)
	case c.Heartbeat && c.LeaseTTL < 3*c.Tick:
		return c, fmt.Errorf("cannot heartbeat a lease TTL of %v every %v ticks: want a TTL of at least 3 ticks", c.LeaseTTL, c.Tick)
	}
	return c, nil
}

// perPeriod is the number of instances replaced every Period.
func (c ChurnConfig) perPeriod() int { return int(math.Round(c.Share * float64(c.Instances))) }

// batch is the instances replaced in one Tick (the count may be off by this
// much between an unregister and its register).
func (c ChurnConfig) batch() int {
	return int(math.Ceil(float64(c.perPeriod()) * float64(c.Tick) / float64(c.Period)))
}

// replacedBy is how many instances are to have been replaced el into the run.
func (c ChurnConfig) replacedBy(el time.Duration) int {
	return int(int64(c.perPeriod()) * int64(min(el, c.Duration)) / int64(c.Period))
}

// ChurnSample is the node at one moment of the run. A value the node does
// not export is -1.
type ChurnSample struct {
	T          float64 `json:"t"` // seconds since the churn started (negative: before seeding)
	RSSBytes   int64   `json:"rssBytes"`
	CPUSeconds float64 `json:"cpuSeconds"` // the node's, since it started
	Load       string  `json:"loadavg"`

	HeapAlloc    int64 `json:"heapAllocBytes"`    // go_memstats_heap_alloc_bytes
	HeapInuse    int64 `json:"heapInuseBytes"`    // go_memstats_heap_inuse_bytes
	HeapIdle     int64 `json:"heapIdleBytes"`     // go_memstats_heap_idle_bytes
	HeapReleased int64 `json:"heapReleasedBytes"` // go_memstats_heap_released_bytes
	NextGC       int64 `json:"nextGcBytes"`       // go_memstats_next_gc_bytes, the heap goal
	GOGC         int64 `json:"gogc"`              // go_gc_gogc_percent
	GCs          int64 `json:"gcs"`               // go_gc_duration_seconds_count
	Goroutines   int64 `json:"goroutines"`

	Instances       int64 `json:"instances"`
	Services        int64 `json:"services"`
	RecordBytes     int64 `json:"recordBytes"`
	Compactions     int64 `json:"compactions"`
	ChangeLogBytes  int64 `json:"changeLogBytes"`
	ChangeLogLen    int64 `json:"changeLogEntries"`
	Registrations   int64 `json:"registrationsTotal"`
	Unregistrations int64 `json:"unregistrationsTotal"`
	Renewals        int64 `json:"renewalsTotal"`
	Evictions       int64 `json:"evictionsTotal"`
	Expired         int64 `json:"expiredLeases"`

	// What the generator had sent by then.
	Registered   int64 `json:"registered"`
	Unregistered int64 `json:"unregistered"`
	Failures     int64 `json:"failures"`
}

// liveHeap estimates the heap live at the last collection from its goal:
// goal = live×(1+GOGC/100) + (stacks+globals)×GOGC/100, so goal÷(1+GOGC/100)
// overstates it by under half the stacks and globals; -1 when unknown.
func (s ChurnSample) liveHeap() int64 {
	if s.NextGC < 0 || s.GOGC <= 0 {
		return -1
	}
	return int64(float64(s.NextGC) / (1 + float64(s.GOGC)/100))
}

// ChurnReport is the outcome of ChurnRSS.
type ChurnReport struct {
	Config  ChurnConfig `json:"config"`
	Date    time.Time   `json:"date"`
	Machine Machine     `json:"machine"`
	Go      string      `json:"go"`
	PID     int         `json:"pid,omitempty"`
	Seed    SeedStats   `json:"seed"`

	Samples []ChurnSample `json:"samples"`

	Registered   int64 `json:"registered"`   // new instances registered by the churn
	Unregistered int64 `json:"unregistered"` // instances unregistered by the churn
	Heartbeats   int64 `json:"heartbeats"`   // instances renewed (with Heartbeat)
	Requests     int64 `json:"requests"`
	Failures     int64 `json:"failures"` // requests without HTTP 200 and an in-band success
	// Problems are the reasons the run failed: failed requests (the first
	// few quoted), instance counts out of bounds, counters that disagree.
	Problems []string `json:"problems,omitempty"`
	// Missing names the metrics the node does not export.
	Missing []string `json:"missingMetrics,omitempty"`

	Verdict ChurnVerdict `json:"verdict"`
}

// OK reports whether every request succeeded and every check held.
func (r *ChurnReport) OK() bool { return len(r.Problems) == 0 }

// ChurnRSS starts a node on loopback, seeds it and churns it (see the
// comment at the top of this file). Progress goes to progress (nil: none).
// The report is returned whenever the churn started, with err saying why
// the run failed, if it did.
func ChurnRSS(ctx context.Context, cfg ChurnConfig, progress io.Writer) (_ *ChurnReport, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Binary == "" {
		return nil, fmt.Errorf("cannot start a node: no artemis binary given")
	}
	if cfg.Rev == "" {
		cfg.Rev = gitDescribe()
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration+churnSlack)
	defer cancel()
	logf := func(format string, args ...any) {
		if progress != nil {
			fmt.Fprintf(progress, format+"\n", args...)
		}
	}
	rep := newChurnReport(cfg)
	if v, err := exec.Command(cfg.Binary, "version").Output(); err == nil {
		rep.Go += ", node " + strings.TrimSpace(string(v))
	}
	node, err := startChild(ctx, cfg.Binary, cfg.ServerCPUs, "server", "--lease-ttl", cfg.LeaseTTL.String(), "--store", "memory")
	if err != nil {
		return nil, err
	}
	client := httpClient()
	defer func() {
		client.CloseIdleConnections() // idle keep-alives delay a graceful stop
		node.stop()
		if e := node.diedEarly(); e != nil && err == nil {
			rep.Problems = append(rep.Problems, "the node exited during the run")
			err = e
		}
	}()
	rep.PID = node.pid()
	logf("node on %s (pid %d, cpus %q, lease TTL %v)", node.base, rep.PID, cfg.ServerCPUs, cfg.LeaseTTL)
	c := newChurner(cfg, client, node.base, rep.PID, rep)
	c.sample(ctx, -time.Second) // the empty node, at t = -1 s
	lc, err := Config{Instances: cfg.Instances, Services: cfg.Services}.withDefaults()
	if err != nil {
		return nil, err
	}
	if rep.Seed, err = seed(ctx, client, node.base, lc, progress); err != nil {
		return nil, err
	}
	logf("seeded %d instances in %v", rep.Seed.Instances, rep.Seed.Elapsed.Round(time.Millisecond))
	err = c.run(ctx, logf)
	rep.Verdict = judgeChurn(rep.Samples, cfg)
	if err == nil && !rep.OK() {
		err = fmt.Errorf("the churn failed its checks: %s", strings.Join(rep.Problems, "; "))
	}
	return rep, err
}

func newChurnReport(cfg ChurnConfig) *ChurnReport {
	rep := &ChurnReport{Config: cfg, Date: time.Now().UTC(), Go: runtime.Version(),
		Machine: Machine{NProc: onlineCPUs(), CPUModel: cpuModel(), GOMAXPROCS: runtime.GOMAXPROCS(0)}}
	rep.Machine.Hostname, _ = os.Hostname()
	return rep
}

// churner drives the churn from one goroutine: the batches, the heartbeats
// and the samples take turns, so a sample sees no request half done.
type churner struct {
	cfg    ChurnConfig
	client *http.Client
	base   string
	pid    int
	rep    *ChurnReport
	rnd    *rand.Rand
	live   []int // ids of the registered instances, in no order
	next   int   // the next new id
	cursor int   // the next index of live to heartbeat
	beats  int64 // instances to have been renewed, for the heartbeat pacing
	start  ChurnSample
}

// newChurner expects instances [0, cfg.Instances) to be registered.
func newChurner(cfg ChurnConfig, client *http.Client, base string, pid int, rep *ChurnReport) *churner {
	c := &churner{cfg: cfg, client: client, base: base, pid: pid, rep: rep, rnd: rand.New(rand.NewPCG(7, 8)),
		live: make([]int, cfg.Instances, cfg.Instances+churnRequestMax), next: cfg.Instances}
	for i := range c.live {
		c.live[i] = i
	}
	return c
}

// run churns for cfg.Duration, then checks the node's counters against
// what was sent.
func (c *churner) run(ctx context.Context, logf func(string, ...any)) error {
	c.start = c.sample(ctx, 0)
	logf("churning %d instances a period of %v (%d every %v) for %v; sampling every %v",
		c.cfg.perPeriod(), c.cfg.Period, c.cfg.batch(), c.cfg.Tick, c.cfg.Duration, c.cfg.Sample)
	logf("%s", c.start.line())
	t0 := time.Now()
	tick := time.NewTicker(c.cfg.Tick)
	defer tick.Stop()
	nextSample := c.cfg.Sample
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot finish the churn: %w", ctx.Err())
		case <-tick.C:
		}
		el := time.Since(t0)
		done := el >= c.cfg.Duration
		c.replace(ctx, c.cfg.replacedBy(el)-int(c.rep.Registered))
		if c.cfg.Heartbeat {
			c.heartbeat(ctx, el)
		}
		if el >= nextSample || done {
			logf("%s", c.sample(ctx, el).line())
			for nextSample <= el {
				nextSample += c.cfg.Sample
			}
		}
		if done {
			break
		}
	}
	c.checkCounters()
	return nil
}

// replace unregisters n instances picked at random among the registered
// ones and registers n new ones, in requests of at most churnRequestMax.
func (c *churner) replace(ctx context.Context, n int) {
	for n > 0 {
		k := min(n, churnRequestMax)
		ids := make([]int, 0, k)
		for range k {
			j := c.rnd.IntN(len(c.live))
			ids = append(ids, c.live[j])
			c.live[j] = c.live[len(c.live)-1]
			c.live = c.live[:len(c.live)-1]
		}
		c.post(ctx, "unregister", ids, false)
		c.rep.Unregistered += int64(k)
		ids = ids[:0]
		for range k {
			ids = append(ids, c.next)
			c.live = append(c.live, c.next)
			c.next++
		}
		c.post(ctx, "register", ids, true)
		c.rep.Registered += int64(k)
		n -= k
	}
}

// heartbeat renews the registered instances in turn, so that each is
// renewed once per LeaseTTL/3. An instance moved in live (to fill the place
// of one unregistered) may wait one round more: two thirds of its TTL.
func (c *churner) heartbeat(ctx context.Context, el time.Duration) {
	want := int64(float64(c.cfg.Instances) * el.Seconds() / (c.cfg.LeaseTTL / 3).Seconds())
	c.beats = max(c.beats, want-int64(len(c.live))) // after a stall: one round, not every one missed
	for c.beats < want {
		k := int(min(want-c.beats, churnHeartbeatBatch))
		ids := make([]int, 0, k)
		for range k {
			if c.cursor >= len(c.live) {
				c.cursor = 0
			}
			ids = append(ids, c.live[c.cursor])
			c.cursor++
		}
		c.post(ctx, "heartbeat", ids, false)
		c.rep.Heartbeats += int64(k)
		c.beats += int64(k)
	}
}

// post sends one registry request for ids and counts a failure unless it
// answers HTTP 200 with an in-band success.
func (c *churner) post(ctx context.Context, op string, ids []int, full bool) {
	c.rep.Requests++
	// A fresh body each time: the transport may still hold the last one.
	body := appendIDsBody(make([]byte, 0, len(ids)*360+16), ids, c.cfg.Services, full)
	if err := postOK(ctx, c.client, c.base+"/api/registry/"+op+".json", body); err != nil {
		c.rep.Failures++
		if c.rep.Failures <= maxFailureExamples {
			c.rep.Problems = append(c.rep.Problems, fmt.Sprintf("%s of %d instances failed: %v", op, len(ids), err))
		}
	}
}

// appendIDsBody appends {"instances":[...]} of the instances ids.
func appendIDsBody(b []byte, ids []int, services int, full bool) []byte {
	b = append(b, `{"instances":[`...)
	for k, i := range ids {
		if k > 0 {
			b = append(b, ',')
		}
		if full {
			b = appendInstance(b, i, services)
		} else {
			b = appendKey(b, i, services)
		}
	}
	return append(b, `]}`...)
}

// churnMetrics are the unlabelled /metrics lines a sample reads.
var churnMetrics = []string{
	"go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes",
	"go_memstats_heap_released_bytes", "go_memstats_next_gc_bytes", "go_gc_gogc_percent",
	"go_gc_duration_seconds_count", "go_goroutines",
	"artemis_instances", "artemis_services", "artemis_record_bytes", "artemis_record_compactions_total",
	"artemis_changelog_bytes", "artemis_changelog_entries", "artemis_registrations_total",
	"artemis_unregistrations_total", "artemis_renewals_total", "artemis_evictions_total", "artemis_expired_leases",
}

// sample reads the node, appends the sample to the report, checks the
// instance count (once the churn has started: t >= 0) and returns it.
func (c *churner) sample(ctx context.Context, el time.Duration) ChurnSample {
	s := ChurnSample{T: el.Seconds(), RSSBytes: -1, CPUSeconds: -1, Load: loadAvg(),
		Registered: c.rep.Registered, Unregistered: c.rep.Unregistered, Failures: c.rep.Failures}
	if c.pid > 0 {
		if rss, _, threads := readRSS(c.pid); threads > 0 {
			s.RSSBytes = rss
		}
		if cpu, ok := readCPU(c.pid); ok {
			s.CPUSeconds = cpu
		}
	}
	m, err := scrapeMetrics(ctx, c.base)
	if err != nil {
		c.problem(fmt.Sprintf("at %.0f s: %v", s.T, err))
	}
	get := func(name string) int64 {
		v, ok := m[name]
		if !ok {
			if err == nil && !slices.Contains(c.rep.Missing, name) {
				c.rep.Missing = append(c.rep.Missing, name)
			}
			return -1
		}
		return int64(v)
	}
	vals := make([]int64, len(churnMetrics))
	for i, name := range churnMetrics {
		vals[i] = get(name)
	}
	s.HeapAlloc, s.HeapInuse, s.HeapIdle, s.HeapReleased, s.NextGC, s.GOGC, s.GCs, s.Goroutines = vals[0], vals[1], vals[2],
		vals[3], vals[4], vals[5], vals[6], vals[7]
	s.Instances, s.Services, s.RecordBytes, s.Compactions, s.ChangeLogBytes, s.ChangeLogLen = vals[8], vals[9], vals[10],
		vals[11], vals[12], vals[13]
	s.Registrations, s.Unregistrations, s.Renewals, s.Evictions, s.Expired = vals[14], vals[15], vals[16], vals[17], vals[18]
	if el >= 0 && err == nil {
		if d := s.Instances - int64(c.cfg.Instances); s.Instances < 0 || d < -int64(c.cfg.batch()) || d > int64(c.cfg.batch()) {
			c.problem(fmt.Sprintf("at %.0f s the node has %d instances; want %d ± %d", s.T, s.Instances, c.cfg.Instances, c.cfg.batch()))
		}
	}
	c.rep.Samples = append(c.rep.Samples, s)
	return s
}

// checkCounters compares the node's counters over the churn with what was
// sent: every instance unregistered, registered and renewed counted once,
// none evicted.
func (c *churner) checkCounters() {
	if len(c.rep.Samples) == 0 {
		return
	}
	a, z := c.start, c.rep.Samples[len(c.rep.Samples)-1]
	check := func(what string, before, after, want int64) {
		if before < 0 || after < 0 {
			return // not exported: listed in Missing
		}
		if got := after - before; got != want {
			c.problem(fmt.Sprintf("the node counted %d %s over the churn; the generator sent %d", got, what, want))
		}
	}
	check("registrations", a.Registrations, z.Registrations, c.rep.Registered)
	check("unregistrations", a.Unregistrations, z.Unregistrations, c.rep.Unregistered)
	check("renewals", a.Renewals, z.Renewals, c.rep.Heartbeats)
	check("evictions", a.Evictions, z.Evictions, 0)
	if z.Expired > 0 {
		c.problem(fmt.Sprintf("%d leases expired (kept by self-preservation)", z.Expired))
	}
	if c.rep.Failures > maxFailureExamples {
		c.problem(fmt.Sprintf("%d failed requests in all (the first %d quoted)", c.rep.Failures, maxFailureExamples))
	}
}

func (c *churner) problem(s string) { c.rep.Problems = append(c.rep.Problems, s) }

// scrapeMetrics reads the unlabelled samples of a Prometheus text endpoint.
func scrapeMetrics(ctx context.Context, base string) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s/metrics: %w", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read %s/metrics: %w", base, err)
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(name, "#") || strings.ContainsRune(name, '{') {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			m[name] = f
		}
	}
	return m, nil
}

// line is the sample as progress prints it.
func (s ChurnSample) line() string {
	return fmt.Sprintf("t=%4.0fs rss %s heap alloc %s goal %s gc %d instances %d records %s compactions %d changelog %s sent +%d/-%d failures %d load %s",
		s.T, mibOrDash(s.RSSBytes), mibOrDash(s.HeapAlloc), mibOrDash(s.NextGC), s.GCs, s.Instances, mibOrDash(s.RecordBytes),
		s.Compactions, mibOrDash(s.ChangeLogBytes), s.Registered, s.Unregistered, s.Failures, s.Load)
}

func mibOrDash(b int64) string {
	if b < 0 {
		return "-"
	}
	return mib(b)
}
