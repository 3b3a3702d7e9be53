package server

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/artemis-go/artemis/core"
)

// TestMassExpiry: 90 % of instances stop heartbeating. Self-preservation
// engages, nothing is evicted, and the state shows in status/leases.json and
// in the metrics collector; when heartbeats resume (refused ones
// re-register, as clients do) normal eviction returns.
func TestMassExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg, err := core.New(core.Config{Region: "sha", LeaseTTL: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Close()
		s := New(reg, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		defer s.closeBackground()
		const n = 200
		bodies := make([]string, n)
		for i := range n {
			bodies[i] = fmt.Sprintf(`{"instances":[{"regionId":"sha","serviceId":"svc-%d","instanceId":"i-%d","url":"http://i"}]}`, i%20, i)
			do(s, "POST", "/api/registry/register.json", bodies[i])
		}
		// beat heartbeats instances [0, alive) once a second, a quarter each
		// 250 ms; refused ones re-register when reregister is set.
		beat := func(alive int, d time.Duration, reregister bool) {
			for step := range int(d / (250 * time.Millisecond)) {
				time.Sleep(250 * time.Millisecond)
				for i := step % 4; i < alive; i += 4 {
					r := do(s, "POST", "/api/registry/heartbeat.json", bodies[i])
					if reregister && strings.Contains(r.body, "data-not-found") {
						do(s, "POST", "/api/registry/register.json", bodies[i])
					}
				}
			}
		}
		leases := func() string { return do(s, "GET", "/api/status/leases.json?appIds=none", "").body }

		beat(n, 20*time.Second, false)
		if got := leases(); !strings.Contains(got, `"isSafe":true`) || !strings.Contains(got, `"leaseCount":200`) {
			t.Fatalf("unexpected steady state %s", got)
		}
		beat(n/10, 30*time.Second, false) // 90 % go silent
		got := leases()
		if !strings.Contains(got, `"isSafe":false`) || !strings.Contains(got, `"leaseCount":200`) {
			t.Fatalf("self-preservation did not hold the registry: %s", got)
		}
		if st := reg.Stats(); st.Evictions != 0 || st.Expired != 180 {
			t.Fatalf("unexpected stats during mass expiry: %+v", st)
		}
		if v := collect(t, s, "artemis_self_preservation_active"); v != 1 {
			t.Fatalf("metric artemis_self_preservation_active = %v; want 1", v)
		}
		if v := collect(t, s, "artemis_expired_leases"); v != 180 {
			t.Fatalf("metric artemis_expired_leases = %v; want 180", v)
		}
		beat(n, 12*time.Second, true) // heartbeats resume
		if got := leases(); !strings.Contains(got, `"isSafe":true`) || !strings.Contains(got, `"leaseCount":200`) {
			t.Fatalf("unexpected state after recovery: %s", got)
		}
		beat(n-10, 10*time.Second, false) // 5 % leave for good: evicted normally
		if st := reg.Stats(); st.Instances != n-10 || st.Evictions != 10 || st.SelfPreservation.Active {
			t.Fatalf("normal eviction did not return: %+v", st)
		}
		if v := collect(t, s, "artemis_evictions_total"); v != 10 {
			t.Fatalf("metric artemis_evictions_total = %v; want 10", v)
		}
	})
}

// collect reads one metric from the server's Prometheus registry.
func collect(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	mfs, err := s.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
