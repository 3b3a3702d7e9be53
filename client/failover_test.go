package client

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestRegisterFailsOverOnServiceUnavailable(t *testing.T) {
	a, b := newFakeNode(t), newFakeNode(t)
	a.answer = always(registerPath, http.StatusOK, failBody("service-unavailable")) // draining
	r := newTestRegistry(t, []string{a.URL, b.URL})
	ctx := context.Background()
	if err := r.Register(ctx, testInstance("orders", "o-1")); err != nil {
		t.Fatalf("unexpected error of a register that a healthy node could take: %v", err)
	}
	if got := b.sent(registerPath); len(got) != 1 || len(got[0]) != 1 || got[0][0].InstanceID != "o-1" {
		t.Fatalf("unexpected registers on the healthy node; got %v; want one of o-1", got)
	}
	// The draining node is de-prioritised: the next call goes to B first.
	if err := r.Register(ctx, testInstance("orders", "o-2")); err != nil {
		t.Fatal(err)
	}
	if got := a.count(registerPath); got != 1 {
		t.Fatalf("unexpected registers sent to the draining node; got %d; want 1", got)
	}
	if got := b.count(registerPath); got != 2 {
		t.Fatalf("unexpected registers sent to the healthy node; got %d; want 2", got)
	}
}

func TestRateLimitedIsRetried(t *testing.T) {
	t.Run("same node", func(t *testing.T) {
		a := newFakeNode(t)
		a.answer = func(path string, hit int) (int, string) {
			if path == registerPath && hit == 1 {
				return http.StatusOK, failBody("rate-limited")
			}
			return 0, ""
		}
		r := newTestRegistry(t, []string{a.URL})
		if err := r.Register(context.Background(), testInstance("orders", "o-1")); err != nil {
			t.Fatalf("unexpected error after one rate-limited answer: %v", err)
		}
		if got := a.count(registerPath); got != 2 {
			t.Fatalf("unexpected register requests; got %d; want 2", got)
		}
	})
	t.Run("another node", func(t *testing.T) {
		a, b := newFakeNode(t), newFakeNode(t)
		a.answer = always(registerPath, http.StatusOK, failBody("rate-limited"))
		r := newTestRegistry(t, []string{a.URL, b.URL})
		if err := r.Register(context.Background(), testInstance("orders", "o-1")); err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if got := b.count(registerPath); got != 1 {
			t.Fatalf("unexpected registers on the second node; got %d; want 1", got)
		}
	})
}

func TestAttemptsAreBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		code string
		want error
	}{
		{"rate-limited", "rate-limited", ErrRateLimited},
		{"service-unavailable", "service-unavailable", ErrServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFakeNode(t), newFakeNode(t)
			a.answer = always(registerPath, http.StatusOK, failBody(tc.code))
			b.answer = a.answer
			// 3 retries: 4 attempts, round the two nodes twice with a
			// backoff between the rounds.
			r := newTestRegistry(t, []string{a.URL, b.URL})
			err := r.Register(context.Background(), testInstance("orders", "o-1"))
			if !errors.Is(err, ErrNoNode) || !errors.Is(err, tc.want) {
				t.Fatalf("unexpected error; got %v; want %v and %v", err, ErrNoNode, tc.want)
			}
			if got := [2]int{a.count(registerPath), b.count(registerPath)}; got != [2]int{2, 2} {
				t.Fatalf("unexpected attempts per node; got %v; want [2 2]", got)
			}
		})
	}
	t.Run("one node", func(t *testing.T) {
		a := newFakeNode(t)
		a.answer = always(registerPath, http.StatusOK, failBody("rate-limited"))
		r := newTestRegistry(t, []string{a.URL})
		if err := r.Register(context.Background(), testInstance("orders", "o-1")); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("unexpected error; got %v; want %v", err, ErrRateLimited)
		}
		if got := a.count(registerPath); got != 4 {
			t.Fatalf("unexpected attempts; got %d; want 4", got)
		}
	})
}

// clock is a settable time for the avoidance tests.
type clock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestFailedNodeIsAvoidedForAWhile(t *testing.T) {
	for _, tc := range []struct {
		code  string
		avoid time.Duration
	}{
		{"service-unavailable", defaultNodeDownFor},
		{"rate-limited", defaultLimitedFor},
	} {
		t.Run(tc.code, func(t *testing.T) {
			a, b := newFakeNode(t), newFakeNode(t)
			a.answer = func(path string, hit int) (int, string) {
				if path == registerPath && hit == 1 {
					return http.StatusOK, failBody(tc.code)
				}
				return 0, ""
			}
			clk := &clock{t: time.Unix(1e9, 0)}
			r := newTestRegistry(t, []string{a.URL, b.URL}, func(o *options) { o.now = clk.now })
			ctx := context.Background()
			register := func(id string, want [2]int) {
				t.Helper()
				if err := r.Register(ctx, testInstance("orders", id)); err != nil {
					t.Fatal(err)
				}
				if got := [2]int{a.count(registerPath), b.count(registerPath)}; got != want {
					t.Fatalf("unexpected registers on [A B] after %s; got %v; want %v", id, got, want)
				}
			}
			register("o-1", [2]int{1, 1}) // A refuses, B takes it
			clk.advance(tc.avoid - time.Millisecond)
			register("o-2", [2]int{1, 2}) // A is still avoided
			clk.advance(time.Millisecond)
			register("o-3", [2]int{2, 2}) // A is the primary again
		})
	}
}

func TestPermanentErrorsAreNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
		body string
	}{
		{"in-band bad-request", http.StatusOK, failBody("bad-request")},
		{"in-band no-permission", http.StatusOK, failBody("no-permission")},
		{"in-band data-not-found", http.StatusOK, failBody("data-not-found")},
		{"HTTP 400 bad-request", http.StatusBadRequest, failBody("bad-request")},
		{"HTTP 413 bad-request", http.StatusRequestEntityTooLarge, failBody("bad-request")},
		{"HTTP 403 no-permission", http.StatusForbidden, failBody("no-permission")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFakeNode(t), newFakeNode(t)
			a.answer = always(registerPath, tc.code, tc.body)
			r := newTestRegistry(t, []string{a.URL, b.URL})
			if err := r.Register(context.Background(), testInstance("orders", "o-1")); err == nil {
				t.Fatalf("a refused register succeeded")
			}
			if got := a.count(registerPath) + b.count(registerPath); got != 1 {
				t.Fatalf("unexpected register requests; got %d; want 1", got)
			}
		})
	}
}

func TestHTTPErrorsFailOver(t *testing.T) {
	for _, code := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			a, b := newFakeNode(t), newFakeNode(t)
			a.answer = always(registerPath, code, failBody("service-unavailable"))
			r := newTestRegistry(t, []string{a.URL, b.URL})
			if err := r.Register(context.Background(), testInstance("orders", "o-1")); err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := b.count(registerPath); got != 1 {
				t.Fatalf("unexpected registers on the second node; got %d; want 1", got)
			}
		})
	}
}

func TestHeartbeatAndUnregisterFailOver(t *testing.T) {
	a, b := newFakeNode(t), newFakeNode(t)
	r := newTestRegistry(t, []string{a.URL, b.URL})
	ctx := context.Background()
	if err := r.Register(ctx, testInstance("orders", "o-1")); err != nil {
		t.Fatal(err)
	}
	// A starts draining. Neither node serves the heartbeat socket, so the
	// heartbeat goes over HTTP.
	a.answer = func(path string, _ int) (int, string) { return http.StatusOK, failBody("service-unavailable") }
	r.Heartbeat(ctx)
	if got := b.sent(heartbeatPath); len(got) != 1 || len(got[0]) != 1 {
		t.Fatalf("unexpected heartbeats on the healthy node; got %v; want one of o-1", got)
	}
	if err := r.Unregister(ctx, testInstance("orders", "o-1")); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if got := b.count(unregisterPath); got != 1 {
		t.Fatalf("unexpected unregisters on the healthy node; got %d; want 1", got)
	}
}

func TestWebSocketHeartbeatFailsOverOnServiceUnavailable(t *testing.T) {
	a, b := newFakeNode(t), newFakeNode(t)
	// A's heartbeat socket answers every message in-band: draining.
	a.ws = func(_ string, conn *websocket.Conn) {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
			conn.WriteMessage(websocket.TextMessage, []byte(failBody("service-unavailable")))
		}
	}
	r := newTestRegistry(t, []string{a.URL, b.URL})
	ctx := context.Background()
	if err := r.Register(ctx, testInstance("orders", "o-1")); err != nil {
		t.Fatal(err)
	}
	r.Heartbeat(ctx)
	if got := b.count(heartbeatPath); got != 1 {
		t.Fatalf("unexpected heartbeats on the healthy node; got %d; want 1", got)
	}
}

func TestLookupFailsOverOnServiceUnavailable(t *testing.T) {
	a, b := newFakeNode(t), newFakeNode(t)
	a.answer = always(lookupPath, http.StatusOK, failBody("service-unavailable"))
	b.services["orders"] = []Instance{testInstance("orders", "o-1")}
	ctx := context.Background()
	d, err := NewDiscovery(ctx, []string{a.URL, b.URL}, WithStaticNodes(), fastRetries(), WithReconcileInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	svc, err := d.Service(ctx, "orders")
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if got := joinIDs(idsOf(svc)); got != "o-1" {
		t.Fatalf("unexpected instances; got [%s]; want [o-1]", got)
	}
}

func TestNodeListBootstrapFailsOver(t *testing.T) {
	a, b := newFakeNode(t), newFakeNode(t)
	a.answer = func(path string, _ int) (int, string) { return http.StatusOK, failBody("service-unavailable") }
	b.nodes = []string{b.URL}
	r, err := NewRegistry(context.Background(), []string{a.URL, b.URL}, fastRetries(), WithHeartbeatInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if got := b.count("/api/cluster/up-registry-nodes.json"); got != 1 {
		t.Fatalf("unexpected node-list requests to the healthy node; got %d; want 1", got)
	}
	if err := r.Register(context.Background(), testInstance("orders", "o-1")); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if got := a.count(registerPath); got != 0 {
		t.Fatalf("unexpected registers sent to the starting node; got %d; want 0", got)
	}
}

func TestCancelStopsBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	a := newFakeNode(t)
	a.answer = func(path string, _ int) (int, string) {
		if path == registerPath {
			cancel() // the caller gives up while the client would back off
		}
		return http.StatusOK, failBody("rate-limited")
	}
	// An hour of backoff: only the context can end the call.
	r := newTestRegistry(t, []string{a.URL}, WithRetries(3, time.Hour, time.Hour))
	if err := r.Register(ctx, testInstance("orders", "o-1")); !errors.Is(err, context.Canceled) {
		t.Fatalf("unexpected error; got %v; want %v", err, context.Canceled)
	}
	if got := a.count(registerPath); got != 1 {
		t.Fatalf("unexpected attempts after the context was cancelled; got %d; want 1", got)
	}
}

func TestChangeSocketMovesOffAGoingAwayNode(t *testing.T) {
	a, b := newFakeNode(t), newFakeNode(t)
	// A accepts the change socket and closes it at once, as a node that is
	// shutting down does (1001 going away).
	a.ws = func(_ string, conn *websocket.Conn) {
		conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "draining"))
	}
	connected := make(chan struct{}, 1)
	b.ws = func(_ string, conn *websocket.Conn) {
		select {
		case connected <- struct{}{}:
		default:
		}
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}
	d, err := NewDiscovery(context.Background(), []string{a.URL, b.URL}, WithStaticNodes(), fastRetries(), WithReconcileInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	select {
	case <-connected:
	case <-time.After(10 * time.Second): // a hang guard, not a speed check
		t.Fatalf("the change socket never moved to the second node; dials of the first: %d", a.count("/ws/discovery/instance-change"))
	}
}
