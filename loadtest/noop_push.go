package loadtest

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/network"

	"github.com/artemis-go/artemis/server"
)

// The no-op twin of the push scenario: the least a server can do to push a
// change to every subscriber on this machine. Its WebSocket endpoint
// accepts any subscription and holds the socket; a register or unregister
// answers at once and writes one frame (the request's instance, wrapped
// as an InstanceChange) to every subscriber, the writes spread over
// GOMAXPROCS goroutines. No registry, no change log, no queues: what is
// left is Hertz, netpoll and the kernel's loopback TCP, the floor that the
// registry's push latency is compared with.

type noopSubscriber struct {
	mu   sync.Mutex // one write at a time; taken before conn goes back to Hertz
	conn network.Conn
	gone bool
}

type noopPush struct {
	mu   sync.RWMutex
	subs map[*noopSubscriber]struct{}
}

func (p *noopPush) ws(_ context.Context, c *app.RequestContext) {
	c.SetStatusCode(101)
	c.Response.Header.Set("Upgrade", "websocket")
	c.Response.Header.Set("Connection", "Upgrade")
	c.Response.Header.Set("Sec-WebSocket-Accept", server.AcceptKey(c.Request.Header.Peek("Sec-WebSocket-Key")))
	c.Response.Header.SetNoDefaultContentType(true)
	conn := c.GetConn() // see server/ws_netpoll.go: the hijack handle is pooled
	c.Hijack(func(network.Conn) {
		s := &noopSubscriber{conn: conn}
		p.mu.Lock()
		p.subs[s] = struct{}{}
		p.mu.Unlock()
		buf := make([]byte, 512)
		for { // client frames are discarded; the session ends when the socket does
			if _, err := conn.Read(buf); err != nil {
				break
			}
		}
		p.mu.Lock()
		delete(p.subs, s)
		p.mu.Unlock()
		s.mu.Lock() // no write may be in flight when Hertz frees the connection
		s.gone = true
		s.mu.Unlock()
	})
}

// change answers a registry request and pushes its instance to everyone.
func (p *noopPush) change(kind string) app.HandlerFunc {
	return func(_ context.Context, c *app.RequestContext) {
		c.SetStatusCode(200)
		c.Response.Header.SetContentType("application/json; charset=utf-8")
		c.Response.SetBodyString(`{"responseStatus":{"status":"success","errorCode":"success","message":""}}`)
		p.mu.RLock()
		none := len(p.subs) == 0
		p.mu.RUnlock()
		if none { // the other scenarios' churn costs what any no-op answer costs
			return
		}
		body := c.Request.Body()
		inst := bytes.TrimSuffix(bytes.TrimPrefix(bytes.TrimSpace(body), []byte(`{"instances":[`)), []byte(`]}`))
		payload := append([]byte(`{"changeType":"`+kind+`","changeTime":`+strconv.FormatInt(time.Now().UnixMilli(), 10)+`,"instance":`), inst...)
		payload = append(payload, '}')
		frame := server.TextFrame(payload)
		p.mu.RLock()
		subs := make([]*noopSubscriber, 0, len(p.subs))
		for s := range p.subs {
			subs = append(subs, s)
		}
		p.mu.RUnlock()
		n := runtime.GOMAXPROCS(0)
		for w := range n {
			go func() {
				for i := w; i < len(subs); i += n {
					s := subs[i]
					s.mu.Lock()
					if !s.gone {
						s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
						if _, err := s.conn.WriteBinary(frame); err != nil || s.conn.Flush() != nil {
							s.gone = true // its reader ends when the client goes
						}
					}
					s.mu.Unlock()
				}
			}()
		}
	}
}
