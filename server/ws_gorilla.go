package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/common/adaptor"
	"github.com/gorilla/websocket"
)

// The gorilla/websocket transport, behind Hertz's net/http adaptor (which
// hijacks the connection and keeps the handler goroutine waiting until it
// closes). Kept as PushConfig.Library "gorilla": the alternative the
// default was measured against, and a fallback.

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true }, // CORS is open on every path
}

type gorillaTransport struct {
	conn      *websocket.Conn
	writeWait time.Duration
}

func (t gorillaTransport) writeTexts(msgs [][]byte) error {
	t.conn.SetWriteDeadline(time.Now().Add(t.writeWait))
	for _, m := range msgs {
		if err := t.conn.WriteMessage(websocket.TextMessage, m); err != nil {
			return err
		}
	}
	return nil
}

func (t gorillaTransport) writePing() error {
	return t.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(t.writeWait))
}

func (t gorillaTransport) writeClose(code int, reason string) error {
	msg := websocket.FormatCloseMessage(code, reason)
	return t.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
}

func (t gorillaTransport) close() error { return t.conn.Close() }

func (s *Server) gorillaHandler(kind int) app.HandlerFunc {
	upgrade := s.gorillaUpgrade(kind)
	return func(ctx context.Context, c *app.RequestContext) {
		if _, ok := acceptUpgrade(c); ok { // refusals answered as the default transport answers them
			upgrade(ctx, c)
		}
	}
}

func (s *Server) gorillaUpgrade(kind int) app.HandlerFunc {
	return adaptor.HertzHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // the upgrader has answered 400
		}
		conn.SetReadLimit(int64(s.cfg.MaxBodyBytes))
		ss := s.hub.newSession(kind, gorillaTransport{conn: conn, writeWait: s.hub.cfg.WriteWait})
		ss.cell = s.hub.clientCell(conn.RemoteAddr())
		s.hub.add(ss)
		defer s.hub.remove(ss)
		s.gorillaRead(ss, conn)
		ss.close(0, "")
	}))
}

// gorillaRead reads client frames until the connection fails or closes.
// gorilla answers pings itself (WriteControl may run beside other writes).
func (s *Server) gorillaRead(ss *session, conn *websocket.Conn) {
	wait := s.hub.cfg.PongWait
	conn.SetReadDeadline(time.Now().Add(wait))
	conn.SetPongHandler(func(string) error {
		releaseInput(conn.UnderlyingConn())
		return conn.SetReadDeadline(time.Now().Add(wait))
	})
	ping := conn.PingHandler()
	conn.SetPingHandler(func(data string) error {
		releaseInput(conn.UnderlyingConn())
		conn.SetReadDeadline(time.Now().Add(wait))
		return ping(data)
	})
	for {
		_, msg, err := conn.ReadMessage()
		if errors.Is(err, websocket.ErrReadLimit) {
			ss.end(closeMessageTooBig, "message too big")
			return
		}
		if err != nil {
			return
		}
		conn.SetReadDeadline(time.Now().Add(wait))
		releaseInput(conn.UnderlyingConn()) // msg is gorilla's own copy
		if out := s.onMessage(ss, msg); out != nil && !ss.answer(out) {
			return
		}
	}
}
