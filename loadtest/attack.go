package loadtest

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/plot"
)

// Summary is the outcome of one constant-rate attack. Quantiles are exact:
// computed from every recorded latency, not estimated.
type Summary struct {
	Name          string           `json:"name"`
	RequestedRate float64          `json:"requestedRate"`
	AchievedRate  float64          `json:"achievedRate"`
	Throughput    float64          `json:"throughput"` // successful requests per second
	Duration      time.Duration    `json:"durationNs"`
	Requests      int              `json:"requests"`
	Success       float64          `json:"successRatio"`
	Errors        map[string]int   `json:"errors"`
	Latency       LatencyQuantiles `json:"latency"`
	Server        *ProcessStats    `json:"server,omitempty"`
	// ServerBefore and ServerAfter sample the server around the attack
	// (RSS from /proc, goroutines from its /metrics), to show it stays flat.
	ServerBefore *Snapshot `json:"serverBefore,omitempty"`
	ServerAfter  *Snapshot `json:"serverAfter,omitempty"`
	// ServerGCs counts the server's garbage collections during the attack
	// (-1 unknown): a tail that moves with them is the collector's.
	ServerGCs int `json:"serverGcCycles"`
	// Generator is the load generator's own scheduling and collection
	// during the attack: a tail that moves with it is the generator's.
	Generator *GeneratorStats `json:"generator,omitempty"`
}

// Snapshot is a point sample of a server process.
type Snapshot struct {
	RSSBytes   int64 `json:"rssBytes"`
	Goroutines int   `json:"goroutines"` // -1 when the server has no /metrics
	Threads    int   `json:"threads"`
}

// LatencyQuantiles in nanoseconds.
type LatencyQuantiles struct {
	Min  time.Duration `json:"min"`
	Mean time.Duration `json:"mean"`
	P50  time.Duration `json:"p50"`
	P90  time.Duration `json:"p90"`
	P99  time.Duration `json:"p99"`
	P999 time.Duration `json:"p999"`
	Max  time.Duration `json:"max"`
}

// quantile returns the exact q-quantile (nearest rank) of sorted.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func quantiles(lat []time.Duration) LatencyQuantiles {
	if len(lat) == 0 {
		return LatencyQuantiles{}
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, l := range lat {
		sum += l
	}
	return LatencyQuantiles{Min: lat[0], Mean: sum / time.Duration(len(lat)), P50: quantile(lat, 0.50),
		P90: quantile(lat, 0.90), P99: quantile(lat, 0.99), P999: quantile(lat, 0.999), Max: lat[len(lat)-1]}
}

// newAttacker returns a vegeta attacker tuned for loopback runs, and its
// transport (to close idle connections afterwards, so servers stop at once).
// Bodies are read up to 512 bytes (enough for the responseStatus) and
// drained, so connections are reused.
// attackClient is the HTTP client of attacks on one server. Consecutive
// attacks share it, so their connections stay open from one to the next
// (a vegeta.Attacker itself serves one attack only).
func attackClient(cfg Config) (*http.Client, *http.Transport) {
	w := int(maxWorkers())
	tr := &http.Transport{
		MaxConnsPerHost:     w, // a connection dialled while another frees up would pass the bound
		MaxIdleConnsPerHost: w,
		DisableCompression:  true,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: cfg.Timeout}, tr
}

func newAttacker(client *http.Client) *vegeta.Attacker {
	return vegeta.NewAttacker(
		vegeta.Client(client),
		vegeta.Workers(64),
		vegeta.MaxWorkers(maxWorkers()), // bounds connections when the target saturates
		vegeta.MaxBody(512),
	)
}

// maxWorkers bounds an attack's concurrent requests (each holds a
// connection) to 20,000 and to half of the open-file limit less 1,024
// descriptors for everything else: the other server's client keeps its
// connections open between segments, and a generator out of descriptors
// would count its own failures as the server's errors.
func maxWorkers() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 3072 {
		return 1024
	}
	return min(20_000, (lim.Cur-1024)/2)
}

// attack runs tr at rate for d and summarises it. When p is non-nil every
// result is also added to the plot.
// The client (and its open connections) may be shared by consecutive
// attacks on one server; nil makes a fresh one.
func attack(client *http.Client, name string, cfg Config, tr vegeta.Targeter, rate int, d time.Duration, p *plot.Plot) Summary {
	if client == nil {
		c, transport := attackClient(cfg)
		defer transport.CloseIdleConnections()
		client = c
	}
	t := newTally(int(float64(rate) * d.Seconds() * 1.05))
	t.run(client, name, tr, rate, d, p)
	return t.summary(name, rate)
}

// tally accumulates the results of one or more attacks on one server (the
// segments of an interleaved run).
type tally struct {
	lat      []time.Duration
	errs     map[string]int
	ok       int
	segments int           // attacks with at least one result
	span     time.Duration // sum over segments of first to last request
	gen      genCounters
}

func newTally(capacity int) *tally {
	return &tally{lat: make([]time.Duration, 0, capacity+16), errs: map[string]int{}}
}

// run adds one attack of tr at rate for d.
func (t *tally) run(client *http.Client, name string, tr vegeta.Targeter, rate int, d time.Duration, p *plot.Plot) {
	atk := newAttacker(client)
	// The generator's own leftovers (seeding, the previous step) are
	// collected now rather than in the middle of the measurement.
	runtime.GC()
	defer pauseGC()()
	gen := sampleGenerator()
	defer func() { t.gen.add(gen, sampleGenerator()) }()
	var first, last time.Time
	n := 0
	for res := range atk.Attack(tr, vegeta.Rate{Freq: rate, Per: time.Second}, d, name) {
		if first.IsZero() || res.Timestamp.Before(first) {
			first = res.Timestamp
		}
		if res.Timestamp.After(last) {
			last = res.Timestamp
		}
		n++
		t.lat = append(t.lat, res.Latency)
		if e := resultError(res); e != "" {
			t.errs[e]++
			if res.Error == "" {
				res.Error = e // so the plot shows in-band errors too
			}
		} else {
			t.ok++
		}
		if p != nil {
			p.Add(res)
		}
	}
	if n > 1 {
		t.segments++
		t.span += last.Sub(first)
	}
}

// summary computes the quantiles over every result of every segment; the
// achieved rate counts requests over the time the segments spanned.
func (t *tally) summary(name string, rate int) Summary {
	s := Summary{Name: name, RequestedRate: float64(rate), Requests: len(t.lat), Errors: t.errs, Latency: quantiles(t.lat), ServerGCs: -1,
		Generator: t.gen.stats()}
	if t.span > 0 && len(t.lat) > t.segments {
		s.AchievedRate = float64(len(t.lat)-t.segments) / t.span.Seconds()
		s.Duration = t.span
		s.Throughput = float64(t.ok) / (t.span + time.Duration(t.segments)*s.Latency.Mean).Seconds()
	}
	if len(t.lat) > 0 {
		s.Success = float64(t.ok) / float64(len(t.lat))
	}
	return s
}

// resultError classifies a result: "" for success, else an error key.
// Registry answers carry their outcome in-band, so a 200 whose
// responseStatus is not success is an error too.
func resultError(res *vegeta.Result) string {
	switch {
	case res.Error != "" && res.Code == 0:
		return "transport: " + shorten(res.Error)
	case res.Code != 200:
		return "http " + http.StatusText(int(res.Code))
	case len(res.Body) > 0 && res.Body[0] == '{' && !bytes.HasPrefix(res.Body, successPrefix):
		return "in-band " + inBandCode(res.Body)
	}
	return ""
}

func inBandCode(body []byte) string {
	const key = `"errorCode":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return "unknown"
	}
	rest := body[i+len(key):]
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		return string(rest[:j])
	}
	return "unknown"
}

func shorten(s string) string {
	// Drop per-connection detail (ports) so identical errors group.
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// sortedErrors returns "count× key" lines, most frequent first.
func sortedErrors(errs map[string]int) []string {
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return errs[keys[i]] > errs[keys[j]] })
	return keys
}

// drain reads and discards r; used for warm-up requests.
func drain(r io.ReadCloser) { io.Copy(io.Discard, r); r.Close() }
