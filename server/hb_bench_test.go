package server

import (
	"context"
	"strconv"
	"testing"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/common/config"
	"github.com/cloudwego/hertz/pkg/route"

	"github.com/artemis-go/artemis/core"
)

// The heartbeat path without the network: one request context reused as
// Hertz reuses it, routed by the engine through every middleware, against
// a bare Hertz engine whose handler answers a constant success (what the
// no-op twin of make heartbeat-vs-noop does). The difference is the
// registry's own cost per heartbeat: scanning the body, the core's
// renewal, metrics, rate limit, CORS. One-instance bodies are spread over
// n registered instances, as the load test spreads them.

// heartbeatBodies registers n instances on s (nil: none) and returns a
// one-instance heartbeat body for each.
func heartbeatBodies(b *testing.B, s *Server, n int) [][]byte {
	bodies := make([][]byte, n)
	insts := make([]*core.Instance, 0, 1000)
	for i := range n {
		svc, id := "svc-"+strconv.Itoa(i%1000), "inst-"+strconv.Itoa(i)
		bodies[i] = []byte(`{"instances":[{"regionId":"sha","serviceId":"` + svc + `","instanceId":"` + id + `"}]}`)
		insts = append(insts, &core.Instance{RegionID: "sha", ServiceID: svc, InstanceID: id, URL: "http://" + id})
		if len(insts) == cap(insts) || i == n-1 {
			if s != nil {
				if failed := s.reg.Register(insts, nil); len(failed) > 0 {
					b.Fatal(failed[0].Err)
				}
			}
			insts = insts[:0]
		}
	}
	return bodies
}

func benchServe(b *testing.B, e *route.Engine, bodies [][]byte) {
	c := app.NewContext(16)
	ctx := context.Background()
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c.ResetWithoutConn()
		c.Request.Header.SetMethod("POST")
		c.Request.SetRequestURI("/api/registry/heartbeat.json")
		c.Request.Header.SetHost("127.0.0.1")
		// Copied into one buffer, as a body arrives in a connection's:
		// the handler reads it hot, not from a cold slice of the n.
		buf = append(buf[:0], bodies[(i*7919)%len(bodies)]...)
		c.Request.SetBodyRaw(buf)
		e.ServeHTTP(ctx, c)
	}
	b.StopTimer()
	if inBandFailure(c.Response.Body()) != "" || c.Response.StatusCode() != 200 {
		b.Fatalf("unexpected answer %d: %s", c.Response.StatusCode(), c.Response.Body())
	}
}

func BenchmarkHeartbeatEngine(b *testing.B) {
	const n = 100_000
	b.Run("engine=bare", func(b *testing.B) {
		opts := config.NewOptions(nil)
		opts.DisablePrintRoute = true
		e := route.NewEngine(opts)
		e.POST("/api/registry/heartbeat.json", func(_ context.Context, c *app.RequestContext) {
			c.Request.Body()
			c.SetStatusCode(200)
			c.Response.Header.SetContentType(contentTypeJSON)
			c.Response.SetBodyRaw(successBody)
		})
		benchServe(b, e, heartbeatBodies(b, nil, n))
	})
	registry := func(n int) func(b *testing.B) {
		return func(b *testing.B) {
			s := newBenchServer(b)
			bodies := heartbeatBodies(b, s, n)
			before := s.reg.Stats().Renewals
			benchServe(b, s.Engine(), bodies)
			if got := s.reg.Stats().Renewals - before; got != int64(b.N) {
				b.Fatalf("%d renewals for %d heartbeats", got, b.N)
			}
		}
	}
	b.Run("engine=registry", registry(n))
	// The same over 1,000 instances, whose leases stay in cache: the
	// server's own cost without the core's two cache misses.
	b.Run("engine=registry-1k", registry(1000))
}

// BenchmarkHeartbeatDecode: the scanner against the general decoder on a
// one-instance key body and on a full instance (as the Java client sends).
func BenchmarkHeartbeatDecode(b *testing.B) {
	for _, c := range []struct{ name, body string }{
		{"body=key", `{"instances":[{"regionId":"sha","serviceId":"svc-1","instanceId":"inst-1"}]}`},
		{"body=full", `{"instances":[` + instA + `]}`},
	} {
		body := []byte(c.body)
		b.Run(c.name+"/decoder=scanner", func(b *testing.B) {
			var keys []instanceKey
			b.ReportAllocs()
			for range b.N {
				var ok bool
				if keys, ok = scanKeys(body, keys); !ok || len(keys) != 1 {
					b.Fatal("declined")
				}
			}
		})
		b.Run(c.name+"/decoder=sonic", func(b *testing.B) {
			var req keysRequest
			b.ReportAllocs()
			for range b.N {
				req.Instances = req.Instances[:0]
				if err := json.UnmarshalFromString(b2s(body), &req); err != nil || len(req.Instances) != 1 {
					b.Fatal(err)
				}
			}
		})
	}
}
