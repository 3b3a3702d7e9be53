package loadtest

import (
	"context"
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/server"
	"github.com/artemis-go/artemis/server/servertest"
)

// TestChurnAgainstARealServer churns an in-process registry for a moment,
// with heartbeats: every request succeeds, the instances removed are
// replaced by as many with new ids, and the node counted what was sent.
func TestChurnAgainstARealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("churns a registry for two seconds")
	}
	node := servertest.Start(t, core.Config{}, server.Config{})
	cfg, err := ChurnConfig{Instances: 300, Services: 10, Duration: 2 * time.Second, Period: time.Second, Share: 0.1,
		Tick: 100 * time.Millisecond, Sample: 500 * time.Millisecond, Settle: time.Second, Heartbeat: true,
		LeaseTTL: 3 * time.Second}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client := httpClient()
	defer client.CloseIdleConnections()
	lc, _ := Config{Instances: cfg.Instances, Services: cfg.Services}.withDefaults()
	if _, err := seed(ctx, client, node.URL, lc, nil); err != nil {
		t.Fatal(err)
	}
	rep := newChurnReport(cfg)
	c := newChurner(cfg, client, node.URL, 0, rep)
	before := node.Registry.Stats()
	if err := c.run(ctx, t.Logf); err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Failures != 0 || len(rep.Missing) != 0 {
		t.Fatalf("unexpected problems %q, %d failures, missing metrics %v", rep.Problems, rep.Failures, rep.Missing)
	}
	// 10 % of 300 a second for two seconds, whatever the ticks managed.
	if rep.Registered != 60 || rep.Unregistered != 60 {
		t.Fatalf("unexpected churn: %d registered, %d unregistered; want 60 each", rep.Registered, rep.Unregistered)
	}
	st := node.Registry.Stats()
	if got := st.Registrations - before.Registrations; got != 60 {
		t.Fatalf("unexpected registrations %d; want 60", got)
	}
	if got := st.Unregistrations - before.Unregistrations; got != 60 {
		t.Fatalf("unexpected unregistrations %d; want 60", got)
	}
	if got := st.Renewals - before.Renewals; rep.Heartbeats == 0 || got != rep.Heartbeats {
		t.Fatalf("unexpected renewals %d; want the %d heartbeats sent (more than 0)", got, rep.Heartbeats)
	}
	if st.Instances != 300 || st.Evictions != 0 {
		t.Fatalf("unexpected registry: %d instances, %d evictions; want 300, 0", st.Instances, st.Evictions)
	}
	// The node holds exactly the instances the churner counts as live:
	// 300 distinct ids, those of new instances past the seeded ones.
	want := map[string]bool{}
	for _, id := range c.live {
		want[instanceID(id)] = true
	}
	got := map[string]bool{}
	for s := range cfg.Services {
		resp, err := client.Get(node.URL + "/api/discovery/service.json?serviceId=" + serviceID(s))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Service struct {
				Instances []struct {
					InstanceID string `json:"instanceId"`
				} `json:"instances"`
			} `json:"service"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range body.Service.Instances {
			got[in.InstanceID] = true
		}
	}
	if len(want) != 300 || !maps.Equal(got, want) || c.next != 360 {
		t.Fatalf("the node holds %d instances, not the %d distinct ones the churner registered (next id %d; want 360)",
			len(got), len(want), c.next)
	}
	// The first sample is the start, the last the end; every one saw 300.
	first, last := rep.Samples[0], rep.Samples[len(rep.Samples)-1]
	if len(rep.Samples) < 2 || first.T != 0 || last.T < 2 || last.Registered != 60 {
		t.Fatalf("unexpected samples: first %+v, last %+v", first, last)
	}
	for _, s := range rep.Samples {
		if s.Instances != 300 || s.RecordBytes <= 0 || s.HeapAlloc <= 0 || s.RSSBytes != -1 {
			t.Fatalf("unexpected sample %+v", s)
		}
	}
}

func TestJudgeChurn(t *testing.T) {
	cfg, err := ChurnConfig{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	// samples every 10 s for 10 minutes; rss(t) in MiB.
	samples := func(rss func(minute float64) float64) []ChurnSample {
		var s []ChurnSample
		for t := 0; t <= 600; t += 10 {
			b := int64(rss(float64(t)/60) * (1 << 20))
			s = append(s, ChurnSample{T: float64(t), RSSBytes: b, HeapInuse: b / 2, NextGC: b, GOGC: 100, RecordBytes: -1})
		}
		return s
	}
	f := func(rss func(float64) float64, wantSlope float64, wantFlat bool) {
		t.Helper()
		v := judgeChurn(samples(rss), cfg)
		if !v.Judged || math.Abs(v.RSSSlope-wantSlope) > 1e-6 || v.Flat != wantFlat {
			t.Fatalf("unexpected verdict %+v; want slope %v, flat %v", v, wantSlope, wantFlat)
		}
		if math.Abs(v.LateRSSSlope-wantSlope) > 1e-6 {
			t.Fatalf("unexpected slope %v over the second half; want %v", v.LateRSSSlope, wantSlope)
		}
		if math.Abs(v.HeapInuseSlope-wantSlope/2) > 1e-6 || math.Abs(v.LiveHeapSlope-wantSlope/2) > 1e-6 || !math.IsNaN(v.RecordSlope) {
			t.Fatalf("unexpected heap slopes %+v", v)
		}
		var got []int
		for _, m := range v.Marks {
			got = append(got, m.Minute)
		}
		if !slices.Equal(got, []int{0, 2, 5, 10}) || v.Marks[2].Sample.T != 300 {
			t.Fatalf("unexpected marks %+v", v.Marks)
		}
	}
	// Growth in the first minutes only is flat.
	f(func(m float64) float64 { return 100 + 50*min(m, 2) }, 0, true)
	// 1 MiB a minute over 150 MiB: 8 MiB over minutes 2-10, above 7.5.
	f(func(m float64) float64 { return 148 + m }, 1, false)
	// Half that stays under the bound.
	f(func(m float64) float64 { return 149 + m/2 }, 0.5, true)

	short := cfg
	short.Duration = 3 * time.Minute
	if v := judgeChurn(samples(func(float64) float64 { return 100 })[:19], short); v.Judged || v.Flat || v.Why == "" {
		t.Fatalf("a 3-minute run was judged: %+v", v)
	}
}

func TestChurnReportWrite(t *testing.T) {
	cfg, err := ChurnConfig{ResultsDir: t.TempDir(), Command: "make churn"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	rep := newChurnReport(cfg)
	rep.Samples = []ChurnSample{{T: 0, RSSBytes: 1 << 20, RecordBytes: -1}, {T: 10, RSSBytes: 1 << 20, RecordBytes: -1}}
	rep.Verdict = judgeChurn(rep.Samples, cfg)
	path, err := rep.Write()
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(md), "`make churn`") || !strings.Contains(string(md), "**Not judged**") {
		t.Fatalf("unexpected report (%v):\n%s", err, md)
	}
	b, err := os.ReadFile(strings.TrimSuffix(path, ".md") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Samples []ChurnSample
		Verdict map[string]any
	}
	if err := json.Unmarshal(b, &got); err != nil || len(got.Samples) != 2 {
		t.Fatalf("cannot read the JSON report back (%v): %s", err, b)
	}
	if v, ok := got.Verdict["recordMiBPerMinute"]; !ok || v != nil {
		t.Fatalf("unexpected record slope %v (present %v); want null", v, ok)
	}
	if m, _ := filepath.Glob(filepath.Join(cfg.ResultsDir, "*")); len(m) != 2 {
		t.Fatalf("unexpected files %v; want the .md and the .json", m)
	}
}

func TestChurnConfigRefuses(t *testing.T) {
	for _, bad := range []ChurnConfig{{Share: 1.5}, {Duration: 2 * time.Hour}, {Instances: 10, Services: 20},
		{Tick: 2 * time.Minute}, {Sample: time.Millisecond}, {Heartbeat: true, LeaseTTL: time.Second}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Fatalf("config %+v was accepted", bad)
		}
	}
	c, err := ChurnConfig{}.withDefaults()
	if err != nil || c.LeaseTTL != 20*time.Minute || c.perPeriod() != 10_000 || c.batch() != 167 || c.replacedBy(30*time.Second) != 5000 ||
		c.replacedBy(time.Hour) != 100_000 {
		t.Fatalf("unexpected defaults %+v (%v): ttl %v, per period %d, batch %d", c, err, c.LeaseTTL, c.perPeriod(), c.batch())
	}
	if c, _ := (ChurnConfig{Heartbeat: true}).withDefaults(); c.LeaseTTL != defaultLeaseTTL {
		t.Fatalf("unexpected lease TTL %v with heartbeats; want %v", c.LeaseTTL, defaultLeaseTTL)
	}
}
