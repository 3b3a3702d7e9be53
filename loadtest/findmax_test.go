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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// fakeServer answers like the registry: an in-band success, or an in-band
// failure for the requests fail picks (nil: none) by the rate and try a test
// puts in the URL (see fakeStep). It has no /metrics (a step asks it for the
// server's GC count before and after). Whether a try passes depends on
// nothing but these answers: not on latency, not on the machine's speed.
func fakeServer(t *testing.T, fail func(rate, try int) bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			http.NotFound(w, r)
			return
		}
		rate, _ := strconv.Atoi(r.URL.Query().Get("rate"))
		try, _ := strconv.Atoi(r.URL.Query().Get("try"))
		if fail != nil && fail(rate, try) {
			w.Write([]byte(`{"responseStatus":{"status":"fail","errorCode":"rate-limited"}}`))
			return
		}
		w.Write([]byte(`{"responseStatus":{"status":"success","errorCode":"success"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fakeSides returns one side per fake server, named as given.
func fakeSides(t *testing.T, names []string, servers map[string]*httptest.Server) []*side {
	var sides []*side
	for _, name := range names {
		c, tr := attackClient(Config{Timeout: 5 * time.Second})
		t.Cleanup(tr.CloseIdleConnections)
		sides = append(sides, &side{name: name, base: servers[name].URL, client: c})
	}
	return sides
}

// fakeStep runs a real try (sd.step: vegeta, the fake server, the
// generator's stats) whose requests carry the rate and the try in the URL.
func fakeStep(cfg Config) stepFunc {
	return func(ctx context.Context, sd *side, rate, try int) Summary {
		sd.tr = vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: fmt.Sprintf("%s/?rate=%d&try=%d", sd.base, rate, try)})
		return sd.step(ctx, cfg, rate, try)
	}
}

// answered passes a try when every answer was an in-band success.
func answered(s Summary, _ int) bool { return s.Requests > 0 && s.Success == 1 }

// stepNames lists a search's tries.
func stepNames(r FindMaxResult) (out []string) {
	for _, s := range r.Steps {
		out = append(out, s.Name)
	}
	return out
}

// TestFindMaxSearchesSidesRateByRate: each rate runs on every side still in
// the search, who goes first rotating; one failed try is retried, two end a
// side's search; the best step is the last passing one.
func TestFindMaxSearchesSidesRateByRate(t *testing.T) {
	t.Parallel()
	servers := map[string]*httptest.Server{
		"steady":  fakeServer(t, nil),
		"flaky":   fakeServer(t, func(rate, try int) bool { return rate == 20 && try == 1 }), // the first try at 20 only
		"limited": fakeServer(t, func(rate, _ int) bool { return rate > 10 }),
	}
	sides := fakeSides(t, []string{"steady", "flaky", "limited"}, servers)
	cfg := Config{Rate: 10, StepFactor: 2, MaxRate: 40, StepTime: 200 * time.Millisecond, StepTries: 2, Refine: -1}
	var mu sync.Mutex
	var order []string
	res := search(context.Background(), cfg, sides, func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		line := fmt.Sprintf(format, args...)
		t.Log(line)
		order = append(order, strings.Fields(line)[0])
	}, fakeStep(cfg), answered)
	want := []struct {
		max, firstFail int
		steps          []string
	}{
		{40, 0, []string{"steady@10", "steady@20", "steady@40"}},
		{40, 0, []string{"flaky@10", "flaky@20", "flaky@20#2", "flaky@40"}},
		{10, 20, []string{"limited@10", "limited@20", "limited@20#2"}},
	}
	for i, w := range want {
		got := res[i]
		if got.MaxRate != w.max || got.FirstFail != w.firstFail || !slices.Equal(stepNames(got), w.steps) {
			t.Fatalf("%s: max %d, first failure %d after %v; want %d, %d after %v", sides[i].name, got.MaxRate, got.FirstFail,
				stepNames(got), w.max, w.firstFail, w.steps)
		}
		if got.Best == nil || got.Best.RequestedRate != float64(w.max) || got.Best.Success != 1 {
			t.Fatalf("%s: best step %+v is not the last passing one", sides[i].name, got.Best)
		}
		for _, s := range got.Steps {
			if s.Requests == 0 || s.Generator == nil {
				t.Fatalf("%s: %d requests and generator stats %v", s.Name, s.Requests, s.Generator)
			}
		}
	}
	// Who goes first rotates: steady, flaky, limited at 10; flaky (with its
	// retry), limited (with its retry), steady at 20; at 40 the turn is
	// limited's, which is out, so steady, then flaky.
	wantOrder := []string{"steady@10", "flaky@10", "limited@10",
		"flaky@20", "flaky@20#2", "limited@20", "limited@20#2", "steady@20",
		"steady@40", "flaky@40"}
	if !slices.Equal(order, wantOrder) {
		t.Fatalf("steps ran in the order\n%q\nwant\n%q", order, wantOrder)
	}
}

// TestFindMaxRefines: after the stepping, each side that failed bisects
// between its last passing and its first failing rate, so maxima land on
// the fake servers' capacities (13/s and 37/s, ratio 0.35) instead of the
// powers of the step factor (10/s and 20/s, ratio 0.5); a side that never
// failed is not refined; a side that failed from the start searches below.
func TestFindMaxRefines(t *testing.T) {
	t.Parallel()
	capacity := func(c int) *httptest.Server { return fakeServer(t, func(rate, _ int) bool { return rate > c }) }
	servers := map[string]*httptest.Server{"cap13": capacity(13), "cap37": capacity(37), "steady": fakeServer(t, nil), "cap6": capacity(6)}
	sides := fakeSides(t, []string{"cap13", "cap37", "steady", "cap6"}, servers)
	cfg := Config{Rate: 10, StepFactor: 2, MaxRate: 80, StepTime: 100 * time.Millisecond, StepTries: 2, Refine: 4}
	res := search(context.Background(), cfg, sides, func(format string, args ...any) { t.Logf(format, args...) }, fakeStep(cfg), answered)
	want := []struct {
		max, firstFail int
		steps          []string
	}{
		{13, 14, []string{"cap13@10", "cap13@20", "cap13@20#2", // stepping
			"cap13@15", "cap13@15#2", "cap13@12", "cap13@13", "cap13@14", "cap13@14#2"}}, // bisecting (10, 20)
		{37, 38, []string{"cap37@10", "cap37@20", "cap37@40", "cap37@40#2",
			"cap37@30", "cap37@35", "cap37@37", "cap37@38", "cap37@38#2"}}, // bisecting (20, 40)
		{80, 0, []string{"steady@10", "steady@20", "steady@40", "steady@80"}},
		{6, 7, []string{"cap6@10", "cap6@10#2", "cap6@5", "cap6@7", "cap6@7#2", "cap6@6"}}, // bisecting (0, 10); then 6..7 is closed
	}
	for i, w := range want {
		got := res[i]
		if got.MaxRate != w.max || got.FirstFail != w.firstFail || !slices.Equal(stepNames(got), w.steps) {
			t.Fatalf("%s: max %d, first failure %d after %v; want %d, %d after %v", sides[i].name, got.MaxRate, got.FirstFail,
				stepNames(got), w.max, w.firstFail, w.steps)
		}
		if got.Best == nil || got.Best.RequestedRate != float64(w.max) {
			t.Fatalf("%s: best step %+v is not the highest passing one", sides[i].name, got.Best)
		}
	}
	off := cfg
	off.Refine = -1
	res = search(context.Background(), off, sides[:1], func(string, ...any) {}, fakeStep(off), answered)
	if got := stepNames(res[0]); res[0].MaxRate != 10 || res[0].FirstFail != 20 || len(got) != 3 {
		t.Fatalf("with Refine < 0: max %d, first failure %d after %v; want 10, 20 after 3 tries", res[0].MaxRate, res[0].FirstFail, got)
	}
}

// TestFindMaxVerdict: a try passes with its P99 within the bound, at least
// 99.9 % successes and 95 % of the rate achieved.
func TestFindMaxVerdict(t *testing.T) {
	cfg := Config{MaxP99: 10 * time.Millisecond}
	ok := Summary{Requests: 1000, Success: 1, AchievedRate: 100, Latency: LatencyQuantiles{P99: 10 * time.Millisecond}}
	f := func(mod func(*Summary), want bool) {
		t.Helper()
		s := ok
		mod(&s)
		if got := cfg.passed(s, 100); got != want {
			t.Fatalf("verdict on %+v: %v; want %v", s, got, want)
		}
	}
	f(func(*Summary) {}, true)
	f(func(s *Summary) { s.Latency.P99 += time.Nanosecond }, false)
	f(func(s *Summary) { s.Success = 0.999 }, true)
	f(func(s *Summary) { s.Success = 0.998 }, false)
	f(func(s *Summary) { s.AchievedRate = 95 }, true)
	f(func(s *Summary) { s.AchievedRate = 94.9 }, false)
	f(func(s *Summary) { *s = Summary{} }, false)
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

	srv := fakeServer(t, nil)
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
	r.RegistryMax.FirstFail, r.NoopMax.FirstFail = 4100, 5200
	r.finish()
	if row = r.Row(); !strings.Contains(row, "registry 4000/s (first failure 4100/s), no-op 5000/s (first failure 5200/s)") {
		t.Fatalf("row %q does not bracket the maxima", row)
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
