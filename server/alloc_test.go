//go:build !race

package server

import (
	"context"
	"testing"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/artemis-go/artemis/core"
)

// TestInstrumentDoesNotAllocate: the metrics wrapper around every handler
// (rate limit, counter, histogram, result classification) allocates
// nothing.
func TestInstrumentDoesNotAllocate(t *testing.T) {
	s := newTestServer(t, Config{})
	h := s.metrics.instrument("/test", s.gate(opHeartbeat), func(_ context.Context, c *app.RequestContext) {
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

// TestUnfollowedChangeIsNotEncoded: the hub neither encodes nor frames a
// change of a service nobody follows (most changes, in most fleets).
func TestUnfollowedChangeIsNotEncoded(t *testing.T) {
	s := newTestServer(t, Config{})
	v := s.reg.Version()
	if failed := s.reg.Register([]*core.Instance{{RegionID: "SHA", ServiceID: "quiet", InstanceID: "q1", URL: "http://q"}}, nil); len(failed) > 0 {
		t.Fatal(failed)
	}
	changes, _, err := s.reg.ChangesSince(v, nil)
	if err != nil || len(changes) != 1 {
		t.Fatalf("no change to publish: %v", err)
	}
	c := changes[0]
	if n := testing.AllocsPerRun(1000, func() { s.hub.publish(c) }); n != 0 {
		t.Fatalf("publishing a change nobody follows allocates %v times; want 0", n)
	}
	s.hub.subscribe(s.hub.newSession(wsInstanceChange, &fakeTransport{}), "quiet")
	if n := testing.AllocsPerRun(100, func() { s.hub.publish(c) }); n == 0 {
		t.Fatalf("a followed change was not framed (0 allocations): the gate above proves nothing")
	}
}

// TestCachedAnswerDoesNotAllocate: a service.json read that finds its
// answer cached (GET, through the handler) allocates nothing, and neither
// does the cache's hit path alone.
func TestCachedAnswerDoesNotAllocate(t *testing.T) {
	s := newTestServer(t, Config{RateLimits: &RateLimits{}})
	if failed := s.reg.Register([]*core.Instance{{RegionID: "SHA", ServiceID: "svc", InstanceID: "i1", URL: "http://x"}}, nil); len(failed) > 0 {
		t.Fatal(failed)
	}
	snap := s.reg.Service("svc")
	if s.answers.answer(answerService, snap) == nil {
		t.Fatal("the answer was not cached")
	}
	if n := testing.AllocsPerRun(1000, func() { s.answers.answer(answerService, snap) }); n != 0 {
		t.Fatalf("unexpected allocations per cache hit; got %v; want 0", n)
	}
	c := app.NewContext(0)
	c.Request.Header.SetMethod("GET")
	c.Request.SetRequestURI("/api/discovery/service.json?serviceId=svc")
	ctx := context.Background()
	hits := s.answers.hits.Load()
	if n := testing.AllocsPerRun(1000, func() { s.service(ctx, c) }); n != 0 {
		t.Fatalf("unexpected allocations per cached service.json; got %v; want 0", n)
	}
	if s.answers.hits.Load()-hits < 1000 || string(c.Response.Body()) != string(appendAnswer(nil, answerService, snap)) {
		t.Fatalf("the gate did not read the cached answer: %q", c.Response.Body())
	}
}
