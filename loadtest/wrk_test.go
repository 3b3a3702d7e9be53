package loadtest

import (
	"strings"
	"testing"
	"time"
)

func TestWrkRunParse(t *testing.T) {
	var r WrkRun
	out := "Running 10s test @ http://127.0.0.1:1\n" +
		"wrk-result requests=200000 duration_us=10000000 connect=0 read=1 write=0 timeout=2 status=3 p50_us=500 p90_us=900 p99_us=4000 max_us=9000\n"
	if err := r.parse(out); err != nil {
		t.Fatal(err)
	}
	if r.Requests != 200000 || r.Rate != 20000 || r.SocketErr != 3 || r.Non2xx != 3 || r.P99 != 4*time.Millisecond || r.Max != 9*time.Millisecond {
		t.Fatalf("unexpected run %+v", r)
	}
	if err := r.parse("no summary"); err == nil {
		t.Fatal("an output without a wrk-result line was read")
	}
}

// TestWrkRunCheck: a run counts only when every answer is a renewal done.
func TestWrkRunCheck(t *testing.T) {
	f := func(r WrkRun, wantOK bool) {
		t.Helper()
		if why := r.check(32); (why == "") != wantOK {
			t.Fatalf("unexpected verdict on %+v: %q", r, why)
		}
	}
	ok := WrkRun{Server: "registry", Requests: 1000, Renewals: 1000, Successes: 1000}
	f(ok, true)
	inFlight := ok
	inFlight.Renewals, inFlight.Successes = 1032, 1032 // answered after wrk stopped counting
	f(inFlight, true)
	short := ok
	short.Renewals = 999 // one heartbeat was data-not-found
	f(short, false)
	failed := ok
	failed.Successes = 990
	f(failed, false)
	tooMany := ok
	tooMany.Renewals = 1033
	f(tooMany, false)
	bad := ok
	bad.Non2xx = 1
	f(bad, false)
	f(WrkRun{Server: "noop", Requests: 1000, Renewals: -1, Successes: -1}, true)
	f(WrkRun{Server: "noop", Requests: 1000, SocketErr: 1}, false)
	f(WrkRun{Server: "noop"}, false)
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{0.9, 0.5, 1.2}, 0.9}, {[]float64{1, 4, 2, 3}, 2.5}} {
		if got := median(c.xs); got != c.want {
			t.Fatalf("unexpected median of %v; got %v; want %v", c.xs, got, c.want)
		}
	}
}

// TestWrkScriptMatchesSeed: the script heartbeats the instances seed
// registers (the runs' renewal check would fail otherwise; this names the
// cause).
func TestWrkScriptMatchesSeed(t *testing.T) {
	key := string(appendKey(nil, 1234, 1000))
	for _, part := range []string{`{"instances":[{"regionId":"' .. region .. '","serviceId":"svc-' .. (i % services) ..`,
		`'","instanceId":"inst-' .. i .. '"}]}'`, "/api/registry/heartbeat.json"} {
		if !strings.Contains(string(wrkHeartbeatScript), part) {
			t.Fatalf("the script does not build %q", part)
		}
	}
	if key != `{"regionId":"default","serviceId":"svc-234","instanceId":"inst-1234"}` {
		t.Fatalf("seed's key changed: %s; update wrk/heartbeat.lua", key)
	}
}

func TestWrkReportMarkdown(t *testing.T) {
	rep := &WrkReport{Config: WrkConfig{Command: "make heartbeat-vs-noop", MinRatio: 0.9, Conns: 32, Threads: 1},
		Ratios: []float64{0.95, 0.85, 0.92}, Median: 0.92,
		Runs: []WrkRun{{Server: "registry", Pair: 1, Rate: 100, Requests: 1000, Renewals: 1000, Steal: 12.5}, {Server: "noop", Pair: 1, Rate: 105, Renewals: -1, Steal: -1}}}
	md := rep.Markdown()
	for _, want := range []string{"make heartbeat-vs-noop", "**Median registry/no-op throughput ratio: 0.920** over 3 pairs (0.950, 0.850, 0.920); meets the gate of 0.90",
		"| 1 | registry | 100 |", "1000 / 1000 |  | 12.5 % |", "| steal |"} {
		if !strings.Contains(md, want) {
			t.Fatalf("the report lacks %q:\n%s", want, md)
		}
	}
	if !rep.Passed() {
		t.Fatal("a median of 0.92 failed a gate of 0.9")
	}
	rep.Err = "cannot count the noop run: 7 socket errors"
	md = rep.Markdown()
	if !strings.Contains(md, "**Stopped early**, after 3 complete pairs: cannot count") || strings.Contains(md, "the gate") {
		t.Fatalf("a stopped run's report does not say so, or judges the gate:\n%s", md)
	}
}

// TestParseCPUSteal: the steal column of /proc/stat's aggregate line, and
// the total of its first eight times (guest times are inside user and
// nice); anything else is unknown.
func TestParseCPUSteal(t *testing.T) {
	steal, total, ok := parseCPUSteal("cpu  170396 0 120169 270351 10062 0 54867 20810 5 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if !ok || steal != 20810 || total != 170396+120169+270351+10062+54867+20810 {
		t.Fatalf("unexpected steal %d of %d (ok %v)", steal, total, ok)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 3\n", "cpu 1 2 3 4 5 6 7 x\n"} {
		if _, _, ok := parseCPUSteal(bad); ok {
			t.Fatalf("parsed %q", bad)
		}
	}
}
