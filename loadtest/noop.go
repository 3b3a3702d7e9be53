package loadtest

import (
	"context"
	"runtime"
	"strconv"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/hlog"

	artemis "github.com/artemis-go/artemis/server"
)

// NoopServer is the framework's own ceiling: a Hertz server (same transport,
// same options as the registry: artemis's server.TransportOptions, but for
// the registry's own connection tracking and request tracer) whose handlers
// do nothing but answer (and, for the push scenario, push: noop_push.go).
// Hertz reads a request's whole body off the connection before any handler
// runs, so the twin receives every body as the registry does; its
// heartbeat handler also takes the body, then answers a constant success.
// Discovery paths answer serviceBytes of canned JSON, so the twin of a read
// scenario moves as many bytes as the registry does.
func NoopServer(addr string, serviceBytes int) *server.Hertz {
	hlog.SetLevel(hlog.LevelWarn)
	opts := append(artemis.TransportOptions(artemis.Config{Addr: addr}), server.WithExitWaitTime(0))
	h := server.New(opts...)
	ok := []byte(`{"responseStatus":{"status":"success","errorCode":"success","message":""}}`)
	svc := cannedService(serviceBytes)
	answer := func(body []byte) app.HandlerFunc {
		return func(_ context.Context, c *app.RequestContext) {
			c.SetStatusCode(200)
			c.Response.Header.SetContentType("application/json; charset=utf-8")
			c.Response.SetBodyRaw(body)
		}
	}
	h.GET("/health", func(_ context.Context, c *app.RequestContext) { c.Response.SetBodyString("OK") })
	// The two lines of /metrics the generator reads (goroutines, GC cycles).
	h.GET("/metrics", func(_ context.Context, c *app.RequestContext) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		c.Response.SetBodyString("go_goroutines " + strconv.Itoa(runtime.NumGoroutine()) +
			"\ngo_gc_duration_seconds_count " + strconv.FormatUint(uint64(ms.NumGC), 10) + "\n")
	})
	push := &noopPush{subs: map[*noopSubscriber]struct{}{}}
	h.GET("/ws/discovery/instance-change", push.ws)
	h.POST("/api/registry/register.json", push.change("new"))
	h.POST("/api/registry/heartbeat.json", func(_ context.Context, c *app.RequestContext) {
		if len(c.Request.Body()) == 0 {
			c.SetStatusCode(400)
			return
		}
		c.SetStatusCode(200)
		c.Response.Header.SetContentType("application/json; charset=utf-8")
		c.Response.SetBodyRaw(ok)
	})
	h.POST("/api/registry/unregister.json", push.change("delete"))
	for _, p := range []string{"/api/discovery/service.json", "/api/discovery/lookup.json"} {
		h.GET(p, answer(svc))
		h.POST(p, answer(svc))
	}
	h.NoRoute(answer(ok))
	h.NoMethod(answer(ok))
	return h
}

// cannedService returns a success answer padded to about n bytes.
func cannedService(n int) []byte {
	head := `{"responseStatus":{"status":"success","errorCode":"success","message":""},"service":{"serviceId":"noop","instances":[],"pad":"`
	tail := `"}}`
	pad := max(n-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("x", pad) + tail)
}
