//go:build !race

package server

import (
	"context"
	"testing"

	"github.com/cloudwego/hertz/pkg/app"
)

// TestInstrumentDoesNotAllocate: the metrics wrapper around every handler
// (counter, histogram, result classification) allocates nothing.
func TestInstrumentDoesNotAllocate(t *testing.T) {
	s := newTestServer(t, Config{})
	h := s.metrics.instrument("/test", func(_ context.Context, c *app.RequestContext) {
		c.Response.SetBodyRaw(successBody)
	})
	c := app.NewContext(0)
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { h(ctx, c) }); n != 0 {
		t.Fatalf("unexpected allocations per instrumented request; got %v; want 0", n)
	}
	lm := newLimiter(Limit{Rate: 1e9, Burst: 1e6})
	if n := testing.AllocsPerRun(1000, func() { lm.allow() }); n != 0 {
		t.Fatalf("unexpected allocations per rate-limit check; got %v; want 0", n)
	}
}
