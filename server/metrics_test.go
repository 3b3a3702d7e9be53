package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func startLoopback(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener = ln
	s := newTestServer(t, cfg)
	go s.Run()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	base := "http://" + ln.Addr().String()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(base + "/health"); err == nil {
			resp.Body.Close()
			return s, base
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not start")
		}
	}
}

func httpDo(t *testing.T, method, url, body string) string {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestMetrics(t *testing.T) {
	_, base := startLoopback(t, Config{})
	httpDo(t, "POST", base+"/api/registry/register.json", `{"instances":[`+instA+`]}`)
	httpDo(t, "POST", base+"/api/registry/heartbeat.json", `{"instances":[`+instA+`]}`)
	httpDo(t, "POST", base+"/api/registry/heartbeat.json", `{"instances":[{"regionId":"sha","serviceId":"x","instanceId":"nope"}]}`)
	httpDo(t, "POST", base+"/api/registry/heartbeat.json", `garbage`)
	httpDo(t, "GET", base+"/api/discovery/service.json?serviceId=order-service", "")
	httpDo(t, "GET", base+"/api/discovery/service.json", "")
	out := httpDo(t, "GET", base+"/metrics", "")
	for _, want := range []string{
		`artemis_instances 1`,
		`artemis_services 1`,
		`artemis_registrations_total 1`,
		`artemis_renewals_total 1`,
		`artemis_http_requests_total{endpoint="/api/registry/register.json",result="success"} 1`,
		`artemis_http_requests_total{endpoint="/api/registry/heartbeat.json",result="success"} 1`,
		`artemis_http_requests_total{endpoint="/api/registry/heartbeat.json",result="partial_fail"} 1`,
		`artemis_http_requests_total{endpoint="/api/registry/heartbeat.json",result="client_error"} 1`,
		`artemis_http_requests_total{endpoint="/api/discovery/service.json",result="success"} 1`,
		`artemis_http_requests_total{endpoint="/api/discovery/service.json",result="fail"} 1`,
		`artemis_http_request_duration_seconds_count{endpoint="/api/registry/heartbeat.json"} 3`,
		`artemis_self_preservation_active 0`,
		`artemis_self_preservation_enabled 1`,
		`artemis_panics_recovered_total 0`,
		`artemis_rate_limited_total{operation="heartbeat"} 0`,
		`artemis_expired_leases 0`,
		`artemis_evictions_total 0`,
		`artemis_record_compactions_total 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, re := range []string{`(?m)^go_goroutines \d+`, `(?m)^process_resident_memory_bytes \d`, `(?m)^artemis_registry_version \d`,
		`(?m)^artemis_record_bytes [1-9]\d*$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("metrics lack %s", re)
		}
	}
}

// TestRateLimiting runs on synctest's clock: no time passes between the
// requests, so exactly the burst is accepted.
func TestRateLimiting(t *testing.T) {
	synctest.Test(t, testRateLimiting)
}

func testRateLimiting(t *testing.T) {
	s := newTestServer(t, Config{RateLimits: &RateLimits{Register: Limit{Rate: 1, Burst: 3}}})
	var ok, limited int
	for range 10 {
		r := do(s, "POST", "/api/registry/register.json", `{"instances":[`+instA+`]}`)
		switch {
		case r.code == 200 && strings.Contains(r.body, `"errorCode":"success"`):
			ok++
		case r.code == 200 && strings.Contains(r.body, `"errorCode":"rate-limited"`):
			limited++
		default:
			t.Fatalf("unexpected answer %d %s", r.code, r.body)
		}
	}
	if ok != 3 || limited != 7 {
		t.Fatalf("unexpected outcome: %d accepted, %d rate-limited; want the burst of 3 accepted, 7 limited", ok, limited)
	}
	// Other operations have their own (here unlimited) budget, and the node stays healthy.
	if r := do(s, "POST", "/api/registry/heartbeat.json", `{"instances":[`+instA+`]}`); !strings.Contains(r.body, `"success"`) {
		t.Fatalf("heartbeat affected by the register limit: %s", r.body)
	}
	if r := do(s, "GET", "/health", ""); r.code != 200 {
		t.Fatalf("unhealthy after rate limiting: %d", r.code)
	}
	if got := s.limiters[opRegister].count(); got != int64(limited) {
		t.Fatalf("unexpected rate-limited count %d; want %d", got, limited)
	}
}

// TestLimiter runs on synctest's clock, so the refill is exact: a burst of
// 10 at 1,000/s, then 20 ms refill (capped at the burst), then 3 ms (3).
func TestLimiter(t *testing.T) {
	if newLimiter(Limit{}) != nil || !(*limiter)(nil).allow() {
		t.Fatalf("a zero limit must be unlimited")
	}
	synctest.Test(t, func(t *testing.T) {
		lm := newLimiter(Limit{Rate: 1000, Burst: 10})
		allowed := func() int {
			n := 0
			for range 100 {
				if lm.allow() {
					n++
				}
			}
			return n
		}
		f := func(wait time.Duration, want int) {
			t.Helper()
			time.Sleep(wait)
			if got := allowed(); got != want {
				t.Fatalf("unexpected requests allowed after %v; got %d; want %d", wait, got, want)
			}
		}
		f(0, 10)                   // the burst
		f(0, 0)                    // nothing left, no time passed
		f(20*time.Millisecond, 10) // refilled 20, capped at the burst
		f(3*time.Millisecond, 3)   // 3 ms at 1,000/s
		if got := lm.count(); got != 90+100+90+97 {
			t.Fatalf("unexpected refused count %d; want %d", got, 90+100+90+97)
		}
	})
}

func TestMaxInstancesPerRequest(t *testing.T) {
	s := newTestServer(t, Config{MaxInstancesPerRequest: 2})
	body := `{"instances":[` + instA + `,` + instB + `,` + instOther + `]}`
	for _, path := range []string{"/api/registry/register.json", "/api/registry/heartbeat.json"} {
		if r := do(s, "POST", path, body); r.code != 413 || !strings.Contains(r.body, "at most 2") {
			t.Fatalf("unexpected answer for %s: %d %s", path, r.code, r.body)
		}
	}
}
