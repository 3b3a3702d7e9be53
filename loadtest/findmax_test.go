package loadtest

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// slowServer answers like the registry and sleeps 100 ms on the requests
// slow(n) picks (n counts from 1). It has no /metrics (a step asks it for
// the server's GC count before and after).
func slowServer(t *testing.T, slow func(n int64) bool) *httptest.Server {
	var count atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			http.NotFound(w, r)
			return
		}
		if slow(count.Add(1)) {
			time.Sleep(100 * time.Millisecond)
		}
		w.Write([]byte(`{"responseStatus":{"status":"success"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestFindMaxSearchesSidesRateByRate: each rate runs on every side still in
// the search, who goes first rotating; one failed try is retried, two end a
// side's search; the best step is the last passing one.
func TestFindMaxSearchesSidesRateByRate(t *testing.T) {
	t.Parallel()
	// Rates 10, 20, 40 for 1 s: 10, 20 and 40 requests a step. The bound
	// (50 ms) is far from both the fast answers and the slow ones (100 ms).
	servers := map[string]*httptest.Server{
		"steady":  slowServer(t, func(int64) bool { return false }),
		"flaky":   slowServer(t, func(n int64) bool { return n > 10 && n <= 20 }), // the first try at 20 only
		"limited": slowServer(t, func(n int64) bool { return n > 10 }),            // everything after rate 10
	}
	var sides []*side
	for _, name := range []string{"steady", "flaky", "limited"} {
		c, tr := attackClient(Config{Timeout: 5 * time.Second})
		defer tr.CloseIdleConnections()
		sides = append(sides, &side{name: name, base: servers[name].URL, client: c,
			tr: vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: servers[name].URL})})
	}
	cfg := Config{Rate: 10, StepFactor: 2, MaxRate: 40, StepTime: time.Second, StepTries: 2, MaxP99: 50 * time.Millisecond}
	var mu sync.Mutex
	var order []string
	res := findMax(context.Background(), cfg, sides, func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		line := fmt.Sprintf(format, args...)
		t.Log(line)
		order = append(order, line[:15])
	})
	names := func(r FindMaxResult) (out []string) {
		for _, s := range r.Steps {
			out = append(out, s.Name)
		}
		return out
	}
	want := []struct {
		max   int
		steps []string
	}{
		{40, []string{"steady@10", "steady@20", "steady@40"}},
		{40, []string{"flaky@10", "flaky@20", "flaky@20#2", "flaky@40"}},
		{10, []string{"limited@10", "limited@20", "limited@20#2"}},
	}
	for i, w := range want {
		got := res[i]
		if got.MaxRate != w.max || !slices.Equal(names(got), w.steps) {
			t.Fatalf("%s: max %d after %v; want %d after %v", sides[i].name, got.MaxRate, names(got), w.max, w.steps)
		}
		if got.Best == nil || got.Best.RequestedRate != float64(w.max) || got.Best.Latency.P99 > cfg.MaxP99 {
			t.Fatalf("%s: best step %+v is not the last passing one", sides[i].name, got.Best)
		}
		for _, s := range got.Steps {
			if s.Requests != int(s.RequestedRate) || s.Generator == nil {
				t.Fatalf("%s: %d requests (want %v) and generator stats %v", s.Name, s.Requests, s.RequestedRate, s.Generator)
			}
		}
	}
	// Who goes first rotates: steady, flaky, limited at 10; flaky (with its
	// retry), limited (with its retry), steady at 20; at 40 the turn is
	// limited's, which is out, so steady, then flaky.
	wantOrder := []string{"steady@10      ", "flaky@10       ", "limited@10     ",
		"flaky@20       ", "flaky@20#2     ", "limited@20     ", "limited@20#2   ", "steady@20      ",
		"steady@40      ", "flaky@40       "}
	if !slices.Equal(order, wantOrder) {
		t.Fatalf("steps ran in the order\n%q\nwant\n%q", order, wantOrder)
	}
}

// TestGeneratorHistograms: quantiles are bucket upper bounds over the
// difference of two samples; sums use bucket midpoints; an attack reports
// the generator's own scheduling.
func TestGeneratorHistograms(t *testing.T) {
	buckets := []float64{math.Inf(-1), 0.001, 0.002, 0.004, math.Inf(1)}
	before := &metrics.Float64Histogram{Counts: []uint64{5, 5, 5, 5}, Buckets: buckets}
	after := &metrics.Float64Histogram{Counts: []uint64{5, 104, 6, 5}, Buckets: buckets} // +99 in [1,2) ms, +1 in [2,4) ms
	var h hist
	h.add(after, before)
	h.add(after, before) // a second segment: 198 and 2 in all
	if got := h.quantile(0.99); got != 2*time.Millisecond {
		t.Fatalf("p99 %v, want the upper bound of [1,2) ms", got)
	}
	if got := h.quantile(1); got != 4*time.Millisecond {
		t.Fatalf("max %v, want the upper bound of [2,4) ms", got)
	}
	if got, want := h.sum(), time.Duration(198*1.5e6+2*3e6); got != want {
		t.Fatalf("sum %v, want %v", got, want)
	}
	var empty hist
	if empty.quantile(0.99) != 0 || empty.sum() != 0 {
		t.Fatalf("an empty histogram has a quantile or a sum")
	}
	top := hist{counts: []uint64{0, 0, 0, 1}, buckets: buckets}
	if got := top.quantile(1); got != 4*time.Millisecond {
		t.Fatalf("a count in the open last bucket gives %v, want its lower bound", got)
	}

	srv := slowServer(t, func(int64) bool { return false })
	s := attack(nil, "gen", Config{Timeout: 5 * time.Second}, vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: srv.URL}),
		1000, 300*time.Millisecond, nil)
	g := s.Generator
	if g == nil || g.SchedLatencyP99 <= 0 || g.SchedLatencyMax < g.SchedLatencyP99 || g.GCPauseMax < 0 || g.CPUPercent <= 0 || g.Cores < 1 {
		t.Fatalf("the attack reported no usable generator stats: %+v", g)
	}
	if g.GCCycles != 0 {
		t.Fatalf("the generator collected %d times during the attack; its collector is paused then", g.GCCycles)
	}
	if percent := debug.SetGCPercent(100); percent < 0 {
		t.Fatalf("the collector stayed off after the attack")
	} else {
		debug.SetGCPercent(percent)
	}
}

// TestChildThatDiesIsAnError: a server that exits on its own during a run
// is reported with its output; one stopped by the generator is not.
func TestChildThatDiesIsAnError(t *testing.T) {
	var dead child
	if err := dead.start("sh", "-c", "echo out of memory >&2; exit 3"); err != nil {
		t.Fatal(err)
	}
	<-dead.done
	dead.stop()
	err := dead.diedEarly()
	if err == nil || !strings.Contains(err.Error(), "out of memory") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("a child that died gave %v", err)
	}
	var alive child
	if err := alive.start("sleep", "30"); err != nil {
		t.Fatal(err)
	}
	alive.stop()
	if err := alive.diedEarly(); err != nil {
		t.Fatalf("a child the generator stopped is reported as dead: %v", err)
	}
	if startSampler(alive.pid(), "").stop() != nil {
		t.Fatalf("a process that is gone was sampled")
	}
}

// TestFindMaxRow: the results row of a search names both maxima and their
// ratio, and shows the first failed step when no rate passed.
func TestFindMaxRow(t *testing.T) {
	step := func(name string, rate float64, p99 time.Duration) Summary {
		return Summary{Name: name, RequestedRate: rate, AchievedRate: rate, Latency: LatencyQuantiles{P50: p99 / 4, P99: p99}}
	}
	r := &Report{FindMax: true, MaxP99: "10ms", Scenario: "heartbeat"}
	r.RegistryMax = &FindMaxResult{MaxRate: 4000, Steps: []Summary{step("registry@4000", 4000, time.Millisecond), step("registry@5000", 5000, time.Second)}}
	r.RegistryMax.Best = &r.RegistryMax.Steps[0]
	r.NoopMax = &FindMaxResult{MaxRate: 5000, Steps: []Summary{step("noop@4000", 4000, time.Millisecond), step("noop@5000", 5000, 2*time.Millisecond)}}
	r.NoopMax.Best = &r.NoopMax.Steps[1]
	r.Registry, r.Noop = r.RegistryMax.Best, r.NoopMax.Best
	r.finish()
	row := r.Row()
	for _, want := range []string{"| 4000 | 4000 |", "| 0.80× max rate |", "registry 4000/s, no-op 5000/s"} {
		if !strings.Contains(row, want) {
			t.Fatalf("row %q lacks %q", row, want)
		}
	}
	none := &Report{FindMax: true, MaxP99: "10ms", Scenario: "heartbeat",
		RegistryMax: &FindMaxResult{Steps: []Summary{step("registry@4000", 4000, 20*time.Millisecond)}},
		NoopMax:     &FindMaxResult{Steps: []Summary{step("noop@4000", 4000, 30*time.Millisecond)}}}
	none.finish()
	row = none.Row()
	for _, want := range []string{"| 4000 | 4000 | 5ms | 20ms |", "registry 0/s, no-op 0/s"} {
		if !strings.Contains(row, want) {
			t.Fatalf("row %q lacks %q", row, want)
		}
	}
	if strings.Contains(row, "max rate |") {
		t.Fatalf("row %q states a ratio of two failed searches", row)
	}
}

// TestPauseGC: no collection runs while an attack is paused, nested pauses
// keep it off until the last one ends, and the collector comes back after.
func TestPauseGC(t *testing.T) {
	cycles := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	var sink [][]byte
	garbage := func() { // 256 MiB in 64 KiB pieces, far past a GOGC=100 trigger
		for i := range 4096 {
			sink = append(sink[:0], make([]byte, 64<<10))
			sink[0][i%len(sink[0])] = 1
		}
	}
	runtime.GC()
	outer := pauseGC()
	inner := pauseGC()
	before := cycles()
	garbage()
	inner()
	garbage()
	if got := cycles() - before; got != 0 {
		t.Fatalf("%d collections while paused", got)
	}
	outer()
	before = cycles()
	garbage()
	if cycles() == before {
		t.Fatalf("no collection after the pause ended")
	}
}
