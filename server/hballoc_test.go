//go:build !race

package server

import (
	"context"
	"testing"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/common/config"
	"github.com/cloudwego/hertz/pkg/route"
)

// Allocation gates of the heartbeat path (HTTP and WebSocket); the other
// gates are in alloc_test.go.

// serveAllocs is the allocations of one request through e, the Hertz
// engine's routing and every middleware and handler included (not the
// connection's reading and writing): c is reused as Hertz reuses it.
func serveAllocs(e *route.Engine, path string, body []byte) float64 {
	c := app.NewContext(16)
	ctx := context.Background()
	serve := func() {
		c.ResetWithoutConn()
		c.Request.Header.SetMethod("POST")
		c.Request.SetRequestURI(path)
		c.Request.Header.SetHost("127.0.0.1")
		c.Request.SetBodyRaw(body)
		e.ServeHTTP(ctx, c)
	}
	serve()
	return testing.AllocsPerRun(1000, serve)
}

// TestHeartbeatDoesNotAllocate: a heartbeat (one instance, or a batch)
// that succeeds allocates nothing on the server beyond what Hertz's
// routing allocates for any request (measured on a bare engine with a
// no-op handler): the scanner reads its keys into a pooled batch, the
// core renews, and the pre-encoded success answer is written uncopied.
// The same for a WebSocket heartbeat message and its answer.
func TestHeartbeatDoesNotAllocate(t *testing.T) {
	const path = "/api/registry/heartbeat.json"
	opts := config.NewOptions(nil)
	opts.DisablePrintRoute = true
	bare := route.NewEngine(opts)
	bare.POST(path, func(_ context.Context, c *app.RequestContext) { c.Response.SetBodyRaw(successBody) })
	s := newTestServer(t, Config{})
	one := []byte(`{"instances":[` + instA + `]}`)
	batch := []byte(`{"instances":[` + instA + `,` + instB + `]}`)
	if r := do(s, "POST", "/api/registry/register.json", string(batch)); inBandFailure([]byte(r.body)) != "" {
		t.Fatalf("cannot register: %s", r.body)
	}
	framework := serveAllocs(bare, path, one)
	t.Logf("Hertz's own allocations per request: %v", framework)
	before := s.reg.Stats().Renewals
	for _, body := range [][]byte{one, batch} {
		if n := serveAllocs(s.Engine(), path, body); n != framework {
			t.Fatalf("unexpected allocations per heartbeat of %d bytes; got %v; want %v (Hertz's own)", len(body), n, framework)
		}
	}
	if got := s.reg.Stats().Renewals - before; got != 3*1002 {
		t.Fatalf("unexpected renewals; got %d; want %d: the gate measured failures", got, 3*1002)
	}

	for _, lib := range WSLibraries {
		s := newTestServer(t, Config{Push: PushConfig{Library: lib}})
		if r := do(s, "POST", "/api/registry/register.json", string(batch)); inBandFailure([]byte(r.body)) != "" {
			t.Fatalf("cannot register: %s", r.body)
		}
		ss := s.hub.newSession(wsHeartbeat, discardTransport{})
		for _, msg := range [][]byte{one, batch} {
			if out := s.onMessage(ss, msg); inBandFailure(out) != "" {
				t.Fatalf("unexpected answer: %s", out)
			}
			if n := testing.AllocsPerRun(1000, func() { ss.answer(s.onMessage(ss, msg)) }); n != 0 {
				t.Fatalf("unexpected allocations per WebSocket heartbeat (%s); got %v; want 0", lib, n)
			}
		}
	}
}

// discardTransport writes nowhere.
type discardTransport struct{}

func (discardTransport) writeTexts([][]byte) error    { return nil }
func (discardTransport) writePing() error             { return nil }
func (discardTransport) writeClose(int, string) error { return nil }
func (discardTransport) close() error                 { return nil }
