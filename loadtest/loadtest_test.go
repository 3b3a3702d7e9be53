package loadtest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/plot"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/server"
	"github.com/artemis-go/artemis/server/servertest"
)

func TestConfigRefusesNonLoopbackTargets(t *testing.T) {
	for _, target := range []string{"http://10.0.0.1:8080", "http://example.com", "http://192.168.1.1", "not a url"} {
		if _, err := (Config{Target: target}).withDefaults(); err == nil {
			t.Fatalf("target %q was accepted", target)
		}
	}
	for _, target := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80", "http://127.0.0.2:9"} {
		if _, err := (Config{Target: target}).withDefaults(); err != nil {
			t.Fatalf("loopback target %q refused: %v", target, err)
		}
	}
	for _, bad := range []Config{{Scenario: "bogus"}, {Duration: time.Hour}, {Instances: 10, Services: 20}, {StepFactor: 0.5}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Fatalf("config %+v was accepted", bad)
		}
	}
}

func TestQuantilesAreExact(t *testing.T) {
	lat := make([]time.Duration, 1000)
	for i := range lat {
		lat[len(lat)-1-i] = time.Duration(i+1) * time.Millisecond // 1..1000 ms, reversed
	}
	q := quantiles(lat)
	want := LatencyQuantiles{Min: time.Millisecond, Mean: 500500 * time.Microsecond, P50: 500 * time.Millisecond,
		P90: 900 * time.Millisecond, P99: 990 * time.Millisecond, P999: 999 * time.Millisecond, Max: time.Second}
	if q != want {
		t.Fatalf("unexpected quantiles %+v; want %+v", q, want)
	}
	if (quantiles(nil) != LatencyQuantiles{}) {
		t.Fatalf("quantiles of nothing are not zero")
	}
}

func TestResultError(t *testing.T) {
	f := func(res vegeta.Result, want string) {
		t.Helper()
		if got := resultError(&res); got != want {
			t.Fatalf("unexpected classification %q; want %q", got, want)
		}
	}
	f(vegeta.Result{Code: 200, Body: []byte(`{"responseStatus":{"status":"success","errorCode":"success"}}`)}, "")
	f(vegeta.Result{Code: 200, Body: []byte(`OK`)}, "")
	f(vegeta.Result{Code: 200, Body: []byte(`{"responseStatus":{"status":"partial_fail","errorCode":"partial_fail"},"failedInstances":[{"errorCode":"data-not-found"}]}`)}, "in-band partial_fail")
	f(vegeta.Result{Code: 413, Error: "413 Request Entity Too Large"}, "http Request Entity Too Large")
	f(vegeta.Result{Error: "dial tcp 127.0.0.1:1: connect: connection refused"}, "transport: connection refused")
}

func TestBodiesAreValidJSON(t *testing.T) {
	cfg, err := Config{Instances: 100, Services: 10, HeartbeatBatch: 7}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	var req struct {
		Instances []core.Instance `json:"instances"`
	}
	if err := json.Unmarshal(instancesBody(0, 100, 10, true), &req); err != nil || len(req.Instances) != 100 {
		t.Fatalf("cannot decode a seeding body: %v (%d instances)", err, len(req.Instances))
	}
	if inst := req.Instances[42]; inst.ServiceID != "svc-2" || inst.InstanceID != "inst-42" || len(inst.Metadata) != 3 || inst.HealthCheckURL == "" {
		t.Fatalf("unexpected instance %+v", inst)
	}
	hb := heartbeatTargets("http://127.0.0.1:1", cfg)
	if len(hb.targets) != 15 {
		t.Fatalf("unexpected heartbeat targets %d; want 15 (100 instances in batches of 7)", len(hb.targets))
	}
	seen := map[string]bool{}
	for _, tg := range hb.targets {
		req.Instances = nil
		if err := json.Unmarshal(tg.Body, &req); err != nil {
			t.Fatalf("cannot decode a heartbeat body: %v", err)
		}
		for _, inst := range req.Instances {
			seen[inst.InstanceID] = true
		}
	}
	if len(seen) != 100 {
		t.Fatalf("heartbeat targets cover %d instances; want 100", len(seen))
	}
	for _, tg := range lookupTargets("http://127.0.0.1:1", cfg).targets {
		if !json.Valid(tg.Body) {
			t.Fatalf("invalid lookup body %s", tg.Body)
		}
	}
}

// TestScenariosAgainstARealServer seeds an in-process registry and runs every
// scenario briefly: each request must succeed (HTTP 200, in-band success).
func TestScenariosAgainstARealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs short attacks")
	}
	node := servertest.Start(t, core.Config{}, server.Config{})
	reg, base := node.Registry, node.URL
	cfg, err := Config{Target: base, Instances: 2000, Services: 20, SeedBatch: 500, Keepalive: true}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var progress strings.Builder
	st, err := seed(ctx, httpClient(), base, cfg, &progress)
	if err != nil || st.Instances != 2000 || st.Requests != 4 {
		t.Fatalf("unexpected seeding %+v, %v", st, err)
	}
	if !strings.Contains(progress.String(), "2000/2000") {
		t.Fatalf("progress bar never reached the end: %q", progress.String())
	}
	if got := reg.Stats().Instances; got != 2000 {
		t.Fatalf("unexpected registry size %d after seeding; want 2000", got)
	}
	version, err := currentVersion(ctx, httpClient(), base)
	if err != nil || version != reg.Version() {
		t.Fatalf("unexpected version %d, %v; want %d", version, err, reg.Version())
	}
	for _, sc := range []string{"heartbeat", "service", "lookup", "delta", "churn", "mixed"} {
		tr, err := targeter(sc, base, cfg, version)
		if err != nil {
			t.Fatal(err)
		}
		s := attack(nil, sc, cfg, tr, 200, time.Second, nil)
		// At most 200 requests (vegeta's pacer never sends more); how many
		// the machine managed is not this test's business, that each one
		// succeeded is.
		if s.Requests < 1 || s.Requests > 200 || s.Success != 1 || len(s.Errors) != 0 {
			t.Fatalf("scenario %s: %d requests, success %.3f, errors %v", sc, s.Requests, s.Success, s.Errors)
		}
	}
	if got := reg.Stats().Instances; got < 2000 || got > 2000+churnPool {
		t.Fatalf("unexpected registry size %d after churn", got)
	}
	// Interleaved: three alternating segments on the registry and an
	// in-process no-op twin; each side's summary spans all its segments.
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	noop := NoopServer(addr, 1000)
	go noop.Run()
	defer noop.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/health"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the no-op server did not start")
		}
	}
	icfg := cfg
	icfg.Rate, icfg.Duration, icfg.Rounds, icfg.Keepalive = 200, 1200*time.Millisecond, 3, false
	rs, ns, err := interleave(ctx, httpClient(), icfg, "heartbeat", version, nil, func(string, ...any) {},
		&side{name: "registry", base: base}, &side{name: "noop", base: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Summary{rs, ns} {
		// 3 segments of 400 ms at 200/s: at most 80 requests each. The
		// order of the segments is TestInterleaveAlternates' subject.
		if s.Requests < 3 || s.Requests > 240 || s.Success != 1 || len(s.Errors) != 0 || s.ServerGCs < 0 {
			t.Fatalf("interleaved %s: %d requests (want 3..240), success %.3f, errors %v, gc %d",
				s.Name, s.Requests, s.Success, s.Errors, s.ServerGCs)
		}
	}
	pcfg := cfg
	pcfg.Subscribers, pcfg.Rate, pcfg.Duration = 20, 20, time.Second
	pr, err := runPush(ctx, base, 0, pcfg, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Changes < 10 || pr.FramesReceived != pr.FramesExpected || pr.Latency.P50 <= 0 {
		t.Fatalf("unexpected push run %+v", pr)
	}
}

// TestInterleaveAlternates: an interleaved run warms both servers up, then
// attacks them in alternating segments (a b, b a, a b), each segment over
// before the next starts, and sums each side over its segments. Two fake
// servers record which of them each request reached.
func TestInterleaveAlternates(t *testing.T) {
	var mu sync.Mutex
	var hits []string
	record := func(name string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/metrics" {
				http.NotFound(w, r)
				return
			}
			mu.Lock()
			hits = append(hits, name)
			mu.Unlock()
			w.Write([]byte(`{"responseStatus":{"status":"success","errorCode":"success"}}`))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	a, b := record("a"), record("b")
	cfg, err := Config{Target: a.URL, Instances: 100, Services: 10, Scenario: "heartbeat", Rate: 50, Duration: 600 * time.Millisecond,
		Rounds: 3}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	rs, ns, err := interleave(context.Background(), httpClient(), cfg, "heartbeat", 1, nil, func(string, ...any) {},
		&side{name: "a", base: a.URL}, &side{name: "b", base: b.URL})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var runs []string // who got each run of consecutive requests
	var sizes []int   // and how many requests it had
	for _, h := range hits {
		if len(runs) == 0 || runs[len(runs)-1] != h {
			runs, sizes = append(runs, h), append(sizes, 0)
		}
		sizes[len(sizes)-1]++
	}
	// warm-up a, warm-up b, then segments a | b b | a a | b.
	if want := []string{"a", "b", "a", "b", "a", "b"}; !slices.Equal(runs, want) {
		t.Fatalf("requests reached the servers in runs %v; want %v", runs, want)
	}
	for _, c := range []struct {
		s    *Summary
		runs int // requests of its segments
	}{{rs, sizes[2] + sizes[4]}, {ns, sizes[3] + sizes[5]}} {
		if c.s.Requests < 3 || c.s.Requests != c.runs || c.s.Success != 1 {
			t.Fatalf("side %s: %d requests summarised, %d answered in its segments, success %.3f", c.s.Name, c.s.Requests, c.runs, c.s.Success)
		}
	}
}

// TestBodyArena: bodies cut from shared chunks keep their bytes, across
// chunk boundaries, and cannot grow into a neighbour.
func TestBodyArena(t *testing.T) {
	var a bodyArena
	var got [][]byte
	var want []string
	for i := range 20_000 { // about 5 chunks of 4 MiB
		b := []byte(strings.Repeat(strconv.Itoa(i%10), 1000+i%7))
		got = append(got, a.add(b))
		want = append(want, string(b))
	}
	for i, b := range got {
		if cap(b) != len(b) {
			t.Fatalf("body %d has room to grow (len %d, cap %d)", i, len(b), cap(b))
		}
		_ = append(b, 'x') // must reallocate, not overwrite body i+1
	}
	for i, b := range got {
		if string(b) != want[i] {
			t.Fatalf("body %d changed", i)
		}
	}
	if big := make([]byte, arenaChunk); &a.add(big)[0] != &big[0] {
		t.Fatalf("a body larger than an eighth of a chunk was copied into the arena")
	}
}

// TestPlotGoesOutsideResults: a run's JSON report goes to the results
// directory and its HTML plot to PlotDir, named in the report.
func TestPlotGoesOutsideResults(t *testing.T) {
	results, plots := t.TempDir(), t.TempDir()
	cfg, err := Config{ResultsDir: results, PlotDir: plots}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := newReport(cfg)
	r.plot = plot.New(plot.Title("test"))
	if err := r.plot.Add(&vegeta.Result{Attack: "registry", Timestamp: time.Now(), Latency: time.Millisecond, Code: 200}); err != nil {
		t.Fatal(err)
	}
	r.Registry = &Summary{Name: "registry"}
	path, err := r.Write(results)
	if err != nil {
		t.Fatal(err)
	}
	if html, _ := filepath.Glob(filepath.Join(results, "*.html")); len(html) != 0 {
		t.Fatalf("plots written to the results directory: %v", html)
	}
	html, _ := filepath.Glob(filepath.Join(plots, "*.html"))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Plot string }
	if err := json.Unmarshal(b, &got); err != nil || len(html) != 1 || got.Plot != html[0] {
		t.Fatalf("the report names plot %q (%v); plots written: %v", got.Plot, err, html)
	}
	if def, _ := (Config{}).withDefaults(); strings.HasPrefix(def.PlotDir, def.ResultsDir) {
		t.Fatalf("the default plot directory %q is inside the results %q", def.PlotDir, def.ResultsDir)
	}
}
