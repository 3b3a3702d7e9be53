package server

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/artemis-go/artemis/cluster"
	"github.com/artemis-go/artemis/core"
)

// WebSocket sessions. Two transports carry them (PushConfig.Library): the
// default reads and writes frames with gobwas/ws straight on Hertz's netpoll
// connection (ctx.Hijack, ws_netpoll.go); the alternative is gorilla/websocket
// behind Hertz's net/http adaptor (ws_gorilla.go). Everything else — queues,
// reloads, pings, lifetime, counts — is this file's and the hub's, shared by
// both. Text frames carry JSON.

// WebSocket libraries PushConfig.Library accepts.
const (
	LibraryGobwas  = "gobwas"
	LibraryGorilla = "gorilla"
)

// WSLibraries lists the accepted values of PushConfig.Library, default first.
var WSLibraries = []string{LibraryGobwas, LibraryGorilla}

// transport is one library's side of a session. Every write is made with
// the session's wmu held.
type transport interface {
	// writeTexts writes text messages, each as prepared by the hub's
	// prepare function, as one flush where the library allows.
	writeTexts(msgs [][]byte) error
	writePing() error
	// writeClose sends a close frame with code and reason.
	writeClose(code int, reason string) error
	close() error
}

// Close codes the server sends (RFC 6455 §7.4.1).
const (
	closeGoingAway       = 1001 // shutdown, end of the session's lifetime
	closePolicyViolation = 1008 // a subscriber that keeps falling behind
	closeMessageTooBig   = 1009 // a message over the body cap
)

// session is one WebSocket connection.
type session struct {
	h        *hub
	kind     int
	tr       transport
	services map[string]string // lower-cased id -> id as subscribed; guarded by hub.mu
	cell     uint8             // the client's cell, for PushConfig.ClientShare; set before add
	expires  time.Time         // end of the session's lifetime; read-only
	lastPing time.Time         // owned by the hub's maintenance goroutine

	wmu sync.Mutex // serializes writes on tr
	one [1][]byte  // the answer answer writes, as writeTexts takes it; guarded by wmu

	// The outgoing queue. A writer goroutine exists only while there is
	// something to write (an idle session costs no goroutine for writing).
	qmu       sync.Mutex
	queue     [][]byte // prepared frames; bounded by PushConfig.SendQueue
	spare     [][]byte // the other buffer of the double-buffered queue
	reloadDue bool     // the queue was dropped: send reloads instead
	pingDue   bool
	writing   bool // a writer goroutine runs (or the session is closed)

	written           atomic.Int64 // frames written
	writtenAtOverflow atomic.Int64 // written at the last overflow; -1 before the first
	strikes           atomic.Int64 // overflows in a row with nothing written between
	lastStrikeAt      atomic.Int64 // unix ns of the last strike (or progress)
	closeOnce         sync.Once
	closed            chan struct{}
}

func (h *hub) newSession(kind int, tr transport) *session {
	now := time.Now()
	// Lifetimes are spread over their last tenth, so sessions opened
	// together (after a restart) do not all reconnect in the same instant.
	life := h.cfg.SessionLifetime - time.Duration(rand.Int64N(int64(h.cfg.SessionLifetime/10)+1))
	ss := &session{h: h, kind: kind, tr: tr, services: map[string]string{}, expires: now.Add(life),
		lastPing: now, closed: make(chan struct{})}
	ss.writtenAtOverflow.Store(-1)
	return ss
}

// wsHandler serves one WebSocket endpoint with the configured library.
func (s *Server) wsHandler(kind int) app.HandlerFunc {
	if s.hub.cfg.Library == LibraryGorilla {
		return s.gorillaHandler(kind)
	}
	return s.netpollHandler(kind)
}

// onMessage handles one client message; a non-nil result is the answer to
// write back.
func (s *Server) onMessage(ss *session, msg []byte) []byte {
	switch ss.kind {
	case wsHeartbeat:
		return s.wsHeartbeat(msg)
	case wsInstanceChange:
		var dc discoveryConfig
		// dc.ServiceID aliases msg, which the reader reuses: the hub copies it.
		if err := json.UnmarshalFromString(b2s(msg), &dc); err == nil && dc.ServiceID != "" {
			if why := s.hub.subscribe(ss, dc.ServiceID); why != "" {
				ss.end(closePolicyViolation, why)
			}
		}
	}
	return nil
}

// answer writes a heartbeat answer from the reading goroutine (answers
// are never dropped: a client that does not read them is cut off by the
// write deadline). A constant answer is written pre-framed.
func (ss *session) answer(msg []byte) bool {
	frame := ss.h.frame(msg)
	ss.wmu.Lock()
	ss.one[0] = frame
	err := ss.tr.writeTexts(ss.one[:])
	ss.one[0] = nil
	ss.wmu.Unlock()
	if err != nil {
		ss.close(0, "")
		return false
	}
	return true
}

// wsHeartbeat answers one heartbeat message as heartbeat.json would.
func (s *Server) wsHeartbeat(msg []byte) []byte {
	if !s.limiters[opHeartbeat].allow() {
		return rateLimitedBody
	}
	b := acquireBatch()
	defer releaseBatch(b)
	if !b.decodeKeys(msg) {
		if err := json.UnmarshalFromString(b2s(msg), &b.keys); err != nil {
			return mustMarshal(statusOnly{failStatus(codeBadRequest, "cannot decode message: "+shortError(err))})
		}
	}
	if len(b.keys.Instances) > s.cfg.MaxInstancesPerRequest {
		return mustMarshal(statusOnly{failStatus(codeBadRequest, "too many instances in one message")})
	}
	insts := b.keyed()
	if len(b.keys.Instances) > 0 && len(insts) == 0 {
		insts = []*core.Instance{nil}
	}
	// The answer is a package-level constant or encoded anew: nothing in
	// it aliases b or msg, which are reused once this returns.
	return s.applyBatch(insts, b, s.reg.HeartbeatEach, s.replicate[cluster.OpHeartbeat], false)
}

// enqueue queues a prepared frame; false when the queue is full.
func (ss *session) enqueue(b []byte) bool {
	ss.qmu.Lock()
	if len(ss.queue) >= ss.h.cfg.SendQueue {
		ss.qmu.Unlock()
		return false
	}
	ss.queue = append(ss.queue, b)
	start := !ss.writing
	ss.writing = true
	ss.qmu.Unlock()
	if start {
		go ss.flush()
	}
	return true
}

// signal sets a flag for the writer (reload or ping) and makes sure one runs.
func (ss *session) signal(reload bool) {
	ss.qmu.Lock()
	if reload {
		ss.reloadDue = true
		clear(ss.queue) // replaced by the reloads
		ss.queue = ss.queue[:0]
	} else {
		ss.pingDue = true
	}
	start := !ss.writing
	ss.writing = true
	ss.qmu.Unlock()
	if start {
		go ss.flush()
	}
}

// flush is the session's writer: it writes what is queued, as one batch per
// round, and exits when the queue is empty.
func (ss *session) flush() {
	for {
		ss.qmu.Lock()
		batch, reload, ping := ss.queue, ss.reloadDue, ss.pingDue
		if len(batch) == 0 && !reload && !ping {
			ss.writing = false
			ss.qmu.Unlock()
			return
		}
		ss.queue, ss.reloadDue, ss.pingDue = ss.spare[:0], false, false
		ss.qmu.Unlock()
		select {
		case <-ss.closed:
			return // writing stays set: no writer starts again
		default:
		}
		if reload {
			for _, id := range ss.subscribed() {
				batch = append(batch, ss.h.prepare(reloadFrame(id, time.Now())))
			}
		}
		ss.wmu.Lock()
		err := ss.tr.writeTexts(batch)
		if err == nil && ping {
			err = ss.tr.writePing()
		}
		ss.wmu.Unlock()
		if err != nil {
			ss.close(0, "")
			return
		}
		ss.written.Add(int64(len(batch)))
		clear(batch)
		ss.qmu.Lock()
		ss.spare = batch[:0]
		ss.qmu.Unlock()
	}
}

// overflow is called by the hub when the send queue is full: the queue is
// replaced by reloads. An overflow at least strikeGap after the previous
// one, with nothing written between them, is a strike, and maxOverflows
// strikes in a row disconnect the session. A subscriber that reads is
// never cut off by a burst, however far the burst outran its writer
// (overflows within strikeGap, or with frames written between them, do
// not strike); one that stopped reading is, after a few strikeGaps of
// changes (and in any case by the write deadline).
func (ss *session) overflow() {
	now := time.Now().UnixNano()
	written := ss.written.Load()
	progressed := ss.writtenAtOverflow.Swap(written) != written
	switch {
	case progressed:
		ss.strikes.Store(0)
		ss.lastStrikeAt.Store(now)
	case now-ss.lastStrikeAt.Load() >= int64(ss.h.strikeGap):
		ss.lastStrikeAt.Store(now)
		if ss.strikes.Add(1) >= maxOverflows {
			ss.h.kicked.Add(1)
			ss.close(closePolicyViolation, "subscriber too slow")
			return
		}
	}
	ss.signal(true)
}

// subscribed lists the services whose reloads s must be sent. An
// all-changes subscriber gets one reload with an empty serviceId: reload
// everything.
func (ss *session) subscribed() []string {
	if ss.kind == wsAllInstanceChange {
		return []string{""}
	}
	ss.h.mu.RLock()
	defer ss.h.mu.RUnlock()
	ids := make([]string, 0, len(ss.services))
	for _, id := range ss.services {
		ids = append(ids, id)
	}
	return ids
}

// close marks the session closed at once, then sends a close frame with
// code and reason (when code is set and no write is in progress) and
// closes the socket, without blocking the caller (the hub may call it
// while routing changes).
func (ss *session) close(code int, reason string) {
	ss.closeOnce.Do(func() {
		close(ss.closed)
		if ss.tr == nil {
			return
		}
		go func() {
			// A writer stuck on a full socket holds wmu until its
			// deadline: such a session is closed without a close frame.
			if code != 0 && ss.wmu.TryLock() {
				ss.tr.writeClose(code, reason)
				ss.wmu.Unlock()
			}
			ss.tr.close()
		}()
	})
}

// end closes the session from its own reader, which may wait: the close
// frame is written before the reader returns and the connection goes back
// to Hertz (close, from another goroutine, could find it gone by then).
func (ss *session) end(code int, reason string) {
	ss.closeOnce.Do(func() {
		close(ss.closed)
		if ss.tr == nil {
			return
		}
		ss.wmu.Lock()
		ss.tr.writeClose(code, reason)
		ss.wmu.Unlock()
		ss.tr.close()
	})
}

// wsStats answers /api/status/websocket.json.
func (s *Server) wsStats(_ context.Context, c *app.RequestContext) {
	writeJSON(c, 200, struct {
		PushStats
		ResponseStatus responseStatus `json:"responseStatus"`
	}{s.hub.stats(), okStatus})
}
