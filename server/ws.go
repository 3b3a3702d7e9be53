package server

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/common/adaptor"
	"github.com/gorilla/websocket"

	"github.com/artemis-go/artemis/core"
)

// WebSocket endpoints, served by gorilla/websocket through Hertz's net/http
// adaptor (which hijacks the connection; the handler goroutine waits for it
// to close). Text frames carry JSON.

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true }, // CORS is open on every path
}

// session is one WebSocket connection.
type session struct {
	h        *hub
	kind     int
	conn     *websocket.Conn
	send     chan []byte
	reload   chan struct{}     // cap 1: the writer must send reloads
	services map[string]string // lower-cased id -> id as subscribed; guarded by hub.mu

	overflows   atomic.Int64
	firstOverAt atomic.Int64
	closeOnce   sync.Once
	closed      chan struct{}
	reason      atomic.Value // string
}

func (s *Server) wsHandler(kind int) app.HandlerFunc {
	return adaptor.HertzHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // the upgrader has answered 400
		}
		ss := &session{h: s.hub, kind: kind, conn: conn, send: make(chan []byte, s.hub.cfg.SendQueue),
			reload: make(chan struct{}, 1), services: map[string]string{}, closed: make(chan struct{})}
		conn.SetReadLimit(int64(s.cfg.MaxBodyBytes))
		s.hub.add(ss)
		defer s.hub.remove(ss)
		go ss.writeLoop()
		s.readLoop(ss)
		ss.close("")
	}))
}

// readLoop reads client frames until the connection fails or closes.
func (s *Server) readLoop(ss *session) {
	cfg := s.hub.cfg
	ss.conn.SetReadDeadline(time.Now().Add(cfg.PongWait))
	ss.conn.SetPongHandler(func(string) error { return ss.conn.SetReadDeadline(time.Now().Add(cfg.PongWait)) })
	ping := ss.conn.PingHandler()
	ss.conn.SetPingHandler(func(data string) error {
		ss.conn.SetReadDeadline(time.Now().Add(cfg.PongWait))
		return ping(data) // answers with a pong
	})
	for {
		_, msg, err := ss.conn.ReadMessage()
		if err != nil {
			return
		}
		ss.conn.SetReadDeadline(time.Now().Add(cfg.PongWait))
		switch ss.kind {
		case wsHeartbeat:
			if !ss.queue(s.wsHeartbeat(msg), cfg.WriteWait) {
				return
			}
		case wsInstanceChange:
			var dc discoveryConfig
			if err := json.UnmarshalFromString(b2s(msg), &dc); err == nil && dc.ServiceID != "" {
				s.hub.subscribe(ss, dc.ServiceID)
			}
		}
	}
}

// wsHeartbeat answers one heartbeat message as heartbeat.json would.
func (s *Server) wsHeartbeat(msg []byte) []byte {
	if !s.limiters[opHeartbeat].allow() {
		return rateLimitedBody
	}
	b := acquireBatch()
	defer releaseBatch(b)
	if err := json.UnmarshalFromString(b2s(msg), &b.keys); err != nil {
		return mustMarshal(statusOnly{failStatus(codeBadRequest, "cannot decode message: "+shortError(err))})
	}
	if len(b.keys.Instances) > s.cfg.MaxInstancesPerRequest {
		return mustMarshal(statusOnly{failStatus(codeBadRequest, "too many instances in one message")})
	}
	insts := b.keyed()
	if len(b.keys.Instances) > 0 && len(insts) == 0 {
		insts = []*core.Instance{nil}
	}
	// The answer is queued after b is released: copy what aliases it.
	out := s.applyBatch(insts, b, s.reg.Heartbeat)
	return append([]byte(nil), out...)
}

// queue hands a frame to the writer, waiting up to d (heartbeat answers are
// never dropped; a client that does not read them is disconnected).
func (ss *session) queue(b []byte, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case ss.send <- b:
		return true
	case <-ss.closed:
	case <-t.C:
		ss.close("client does not read its heartbeat answers")
	}
	return false
}

// overflow is called by the hub when the send queue is full.
func (ss *session) overflow() {
	now := time.Now().UnixNano()
	if first := ss.firstOverAt.Load(); first == 0 || now-first > int64(overflowWindow) {
		ss.firstOverAt.Store(now)
		ss.overflows.Store(0)
	}
	if ss.overflows.Add(1) > maxOverflows {
		ss.h.kicked.Add(1)
		ss.close("subscriber too slow")
		return
	}
	select {
	case ss.reload <- struct{}{}:
	default:
	}
}

// writeLoop is the connection's only writer of data frames.
func (ss *session) writeLoop() {
	cfg := ss.h.cfg
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	life := time.NewTimer(cfg.SessionLifetime)
	defer life.Stop()
	write := func(b []byte) bool {
		ss.conn.SetWriteDeadline(time.Now().Add(cfg.WriteWait))
		return ss.conn.WriteMessage(websocket.TextMessage, b) == nil
	}
	for {
		select {
		case b := <-ss.send:
			if !write(b) {
				ss.close("")
				return
			}
		case <-ss.reload:
			ss.drain()
			for _, id := range ss.subscribed() {
				if !write(reloadFrame(id, time.Now())) {
					ss.close("")
					return
				}
			}
		case <-ping.C:
			if ss.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteWait)) != nil {
				ss.close("")
				return
			}
		case <-life.C:
			ss.close("session lifetime reached; reconnect")
			return
		case <-ss.closed:
			return
		}
	}
}

// drain discards queued frames (they are replaced by reloads).
func (ss *session) drain() {
	for {
		select {
		case <-ss.send:
		default:
			return
		}
	}
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
// reason (when set) and closes the socket without blocking the caller (the
// hub may call it while routing changes).
func (ss *session) close(reason string) {
	ss.closeOnce.Do(func() {
		close(ss.closed)
		if ss.conn == nil { // a session under test without a connection
			return
		}
		go func() {
			if reason != "" {
				msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, reason)
				ss.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			}
			ss.conn.Close()
		}()
	})
}

// wsStats answers /api/status/websocket.json.
func (s *Server) wsStats(_ context.Context, c *app.RequestContext) {
	writeJSON(c, 200, struct {
		PushStats
		ResponseStatus responseStatus `json:"responseStatus"`
	}{s.hub.stats(), okStatus})
}
