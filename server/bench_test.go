package server

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudwego/hertz/pkg/common/ut"
)

// In-process handler benchmarks through the Hertz engine (no network): the
// cost of routing, decoding, the core call and encoding. ut.PerformRequest
// builds a fresh RequestContext per call, so allocs/op include the harness.

func benchServer(b *testing.B, services, perService int) *Server {
	s := newTestServer(b, Config{})
	for sv := range services {
		var sb strings.Builder
		sb.WriteString(`{"instances":[`)
		for i := range perService {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"regionId":"sha","zoneId":"sha-a","serviceId":"svc-%d","instanceId":"10.0.%d.%d:8080",`+
				`"ip":"10.0.%d.%d","port":8080,"url":"http://10.0.%d.%d:8080/api","healthCheckUrl":"http://10.0.%d.%d:8080/health",`+
				`"status":"up","metadata":{"version":"1.4.2","env":"prod","hostname":"host-%d"}}`, sv, sv, i, sv, i, sv, i, sv, i, i)
		}
		sb.WriteString(`]}`)
		if r := do(s, "POST", "/api/registry/register.json", sb.String()); !strings.Contains(r.body, `"success"`) {
			b.Fatalf("cannot seed: %s", r.body)
		}
	}
	return s
}

func benchRequest(b *testing.B, s *Server, method, path, body string) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var bd *ut.Body
			if body != "" {
				bd = &ut.Body{Body: strings.NewReader(body), Len: len(body)}
			}
			w := ut.PerformRequest(s.Engine(), method, path, bd)
			if w.Code != 200 {
				b.Fatalf("unexpected status %d: %s", w.Code, w.Body.String())
			}
		}
	})
}

func BenchmarkHandlerHeartbeat(b *testing.B) {
	s := benchServer(b, 10, 100)
	for _, n := range []int{1, 100} {
		var sb strings.Builder
		sb.WriteString(`{"instances":[`)
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"regionId":"sha","serviceId":"svc-3","instanceId":"10.0.3.%d:8080"}`, i)
		}
		sb.WriteString(`]}`)
		b.Run("instances="+strconv.Itoa(n), func(b *testing.B) {
			benchRequest(b, s, "POST", "/api/registry/heartbeat.json", sb.String())
		})
	}
}

func BenchmarkHandlerService(b *testing.B) {
	s := benchServer(b, 10, 100)
	b.Run("method=GET", func(b *testing.B) {
		benchRequest(b, s, "GET", "/api/discovery/service.json?serviceId=svc-5", "")
	})
	b.Run("method=POST", func(b *testing.B) {
		benchRequest(b, s, "POST", "/api/discovery/service.json", `{"discoveryConfig":{"serviceId":"svc-5"},"regionId":"sha"}`)
	})
}

func BenchmarkHandlerLookup(b *testing.B) {
	s := benchServer(b, 10, 100)
	b.Run("services=1", func(b *testing.B) {
		benchRequest(b, s, "POST", "/api/discovery/lookup.json", `{"discoveryConfigs":[{"serviceId":"svc-1"}]}`)
	})
	b.Run("services=5", func(b *testing.B) {
		benchRequest(b, s, "POST", "/api/discovery/lookup.json",
			`{"discoveryConfigs":[{"serviceId":"svc-1"},{"serviceId":"svc-2"},{"serviceId":"svc-3"},{"serviceId":"svc-4"},{"serviceId":"nope"}]}`)
	})
}

func BenchmarkHandlerRegister(b *testing.B) {
	s := newTestServer(b, Config{})
	body := `{"instances":[` + instA + `]}`
	benchRequest(b, s, "POST", "/api/registry/register.json", body)
}
