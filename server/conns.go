package server

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	hnetpoll "github.com/cloudwego/hertz/pkg/network/netpoll"
	"github.com/cloudwego/netpoll"
)

// Connection bounds. netpoll's read timeout is per read, so a client that
// drips one header byte (or one body chunk) every few seconds would hold
// its connection (and a goroutine) for ever. The tracker bounds what the
// read timeout does not:
//   - at most MaxConnections connections are open; one accepted over it is
//     shut down at once;
//   - a request must arrive whole (header and body, chunked or not) within
//     RequestReadTimeout of its start, else the connection is closed. A
//     request starts when Hertz starts reading it (its tracer's Start): on
//     a new connection at once, on a kept-alive one when its first bytes
//     arrive; it ends when its handler runs. A watchdog looks at every
//     connection each connSweep; a connection serving a request, or taken
//     over by a WebSocket session (which has its own pong deadline), is
//     left alone.
// Idle keep-alive connections are bounded by IdleTimeout as before.

// connSweep is how often the watchdog looks at waiting connections; a slow
// request is shut down between RequestReadTimeout and RequestReadTimeout +
// connSweep after its first byte.
const connSweep = time.Second

// States of a tracked connection.
const (
	connWaiting  int32 = iota // between requests, or reading one
	connServing               // a handler runs
	connHijacked              // a WebSocket session owns it
)

type trackedConn struct {
	conn    netpoll.Connection
	state   atomic.Int32
	reading atomic.Int64 // monoNow()+1 when the request being read started; 0: none
}

// shutdown closes the connection from outside its reader, as netpoll's own
// idle timeout does (netpoll wakes a reader blocked on it and frees its
// buffers only when no reader holds them). Only waiting connections are
// closed this way: never one a WebSocket writer may be using.
func (tc *trackedConn) shutdown() { tc.conn.Close() }

type connTracker struct {
	max         int64
	readTimeout time.Duration
	sweep       time.Duration

	open     atomic.Int64
	refused  atomic.Int64 // accepted over MaxConnections and shut down
	timedOut atomic.Int64 // shut down for a request not read within RequestReadTimeout

	mu       sync.Mutex
	conns    map[*trackedConn]struct{} // guarded by mu
	watching bool                      // the watchdog runs; guarded by mu
	closed   bool                      // guarded by mu
	done     chan struct{}
	wg       sync.WaitGroup
}

type connKey struct{}

func newConnTracker(max int, readTimeout, sweep time.Duration) *connTracker {
	return &connTracker{max: int64(max), readTimeout: readTimeout, sweep: sweep,
		conns: map[*trackedConn]struct{}{}, done: make(chan struct{})}
}

// close stops the watchdog; it may be called more than once.
func (t *connTracker) close() {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		close(t.done)
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// onAccept tracks a new connection (Hertz's OnAccept hook); the context it
// returns is the one every request of the connection is served with.
func (t *connTracker) onAccept(c net.Conn) context.Context {
	ctx := context.Background()
	hc, ok := c.(*hnetpoll.Conn)
	if !ok {
		return ctx
	}
	nc, ok := hc.Conn.(netpoll.Connection)
	if !ok {
		return ctx
	}
	tc := &trackedConn{conn: nc}
	if t.open.Add(1) > t.max {
		t.open.Add(-1)
		t.refused.Add(1)
		tc.shutdown()
		return ctx
	}
	t.mu.Lock()
	t.conns[tc] = struct{}{}
	if !t.watching && !t.closed { // started by the first connection
		t.watching = true
		t.wg.Add(1)
		go t.watch()
	}
	t.mu.Unlock()
	nc.AddCloseCallback(func(netpoll.Connection) error {
		t.mu.Lock()
		delete(t.conns, tc)
		t.mu.Unlock()
		t.open.Add(-1)
		return nil
	})
	return context.WithValue(ctx, connKey{}, tc)
}

// serving marks the connection of a request whose handlers start serving;
// it returns the connection for served (nil when it is not tracked).
func (t *connTracker) serving(ctx context.Context) *trackedConn {
	tc, _ := ctx.Value(connKey{}).(*trackedConn)
	if tc != nil {
		tc.state.Store(connServing)
		tc.reading.Store(0)
	}
	return tc
}

// served marks tc, whose request's handlers are done, waiting for its next
// request, or taken over by a WebSocket session.
func (t *connTracker) served(tc *trackedConn, c *app.RequestContext) {
	if tc == nil {
		return
	}
	if c.Hijacked() {
		tc.state.Store(connHijacked)
		return
	}
	tc.state.Store(connWaiting)
}

// requestTracer tells the tracker when Hertz starts reading a request (a
// Hertz tracer: Start runs before the header is read).
type requestTracer struct{}

func (requestTracer) Start(ctx context.Context, _ *app.RequestContext) context.Context {
	if tc, _ := ctx.Value(connKey{}).(*trackedConn); tc != nil {
		tc.reading.Store(monoNow() + 1) // one clock read, not time.Now's two
	}
	return ctx
}

func (requestTracer) Finish(context.Context, *app.RequestContext) {}

// watch shuts down connections whose request has been arriving for longer
// than readTimeout.
func (t *connTracker) watch() {
	defer t.wg.Done()
	tick := time.NewTicker(t.sweep)
	defer tick.Stop()
	var waiting []*trackedConn
	for {
		select {
		case <-t.done:
			return
		case <-tick.C:
			now := monoNow() + 1
			t.mu.Lock()
			for tc := range t.conns {
				if tc.state.Load() == connWaiting {
					waiting = append(waiting, tc)
				}
			}
			t.mu.Unlock()
			for _, tc := range waiting {
				t.check(tc, now)
			}
			clear(waiting)
			waiting = waiting[:0]
		}
	}
}

func (t *connTracker) check(tc *trackedConn, now int64) {
	start := tc.reading.Load()
	if start != 0 && now-start > int64(t.readTimeout) && tc.state.Load() == connWaiting {
		t.timedOut.Add(1)
		tc.shutdown()
	}
}
