package server

import (
	"bufio"
	"bytes"
	"context"
	stdjson "encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/artemis-go/artemis/core"
)

// eachLibrary runs f against a server of each WebSocket library.
func eachLibrary(t *testing.T, cfg Config, f func(t *testing.T, s *Server, base string)) {
	for _, lib := range WSLibraries {
		t.Run(lib, func(t *testing.T) {
			c := cfg
			c.Push.Library = lib
			s, base := startLoopback(t, c)
			f(t, s, base)
		})
	}
}

func dial(t *testing.T, base, path string) *websocket.Conn {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+path, nil)
	if err != nil {
		t.Fatalf("cannot dial %s: %v (%v)", path, err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

type change struct {
	ChangeType string `json:"changeType"`
	ChangeTime int64  `json:"changeTime"`
	Instance   struct {
		ServiceID  string `json:"serviceId"`
		InstanceID string `json:"instanceId"`
	} `json:"instance"`
}

// next reads the next change frame within d.
func next(t *testing.T, conn *websocket.Conn, d time.Duration) (change, bool) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(d))
	_, msg, err := conn.ReadMessage()
	if err != nil {
		return change{}, false
	}
	var c change
	if err := stdjson.Unmarshal(msg, &c); err != nil {
		t.Fatalf("frame is not an InstanceChange: %q", msg)
	}
	return c, true
}

func inst(service, id string) string {
	return `{"regionId":"sha","serviceId":"` + service + `","instanceId":"` + id + `","url":"http://x"}`
}

func TestInstanceChangePush(t *testing.T) { eachLibrary(t, Config{}, testInstanceChangePush) }

func testInstanceChangePush(t *testing.T, _ *Server, base string) {
	sub := dial(t, base, "/ws/discovery/instance-change")
	other := dial(t, base, "/ws/discovery/instance-change")
	all := dial(t, base, "/ws/discovery/all-instance-change")
	if err := sub.WriteMessage(websocket.TextMessage, []byte(`{"serviceId":"Svc-A","regionId":"sha"}`)); err != nil {
		t.Fatal(err)
	}
	other.WriteMessage(websocket.TextMessage, []byte(`{"serviceId":"svc-b"}`))
	time.Sleep(50 * time.Millisecond) // subscriptions are applied by the server's reader

	httpDo(t, "POST", base+"/api/registry/register.json", `{"instances":[`+inst("svc-a", "a1")+`]}`)
	httpDo(t, "POST", base+"/api/registry/register.json", `{"instances":[`+inst("svc-b", "b1")+`]}`)
	httpDo(t, "POST", base+"/api/registry/unregister.json", `{"instances":[`+inst("svc-a", "a1")+`]}`)

	for _, want := range []string{"new a1", "delete a1"} {
		c, ok := next(t, sub, time.Second)
		if got := c.ChangeType + " " + c.Instance.InstanceID; !ok || got != want {
			t.Fatalf("subscriber of svc-a got %q (%v); want %q", got, ok, want)
		}
	}
	if c, ok := next(t, other, time.Second); !ok || c.Instance.InstanceID != "b1" || c.ChangeType != "new" {
		t.Fatalf("subscriber of svc-b got %+v (%v); want new b1 only", c, ok)
	}
	if c, ok := next(t, other, 200*time.Millisecond); ok {
		t.Fatalf("subscriber of svc-b got a change of another service: %+v", c)
	}
	var got []string
	for range 3 {
		c, ok := next(t, all, time.Second)
		if !ok {
			t.Fatalf("all-changes subscriber got only %v", got)
		}
		got = append(got, c.ChangeType+" "+c.Instance.InstanceID)
	}
	if strings.Join(got, ",") != "new a1,new b1,delete a1" {
		t.Fatalf("unexpected all-changes stream %v", got)
	}
}

func TestWebSocketHeartbeat(t *testing.T) { eachLibrary(t, Config{}, testWebSocketHeartbeat) }

func testWebSocketHeartbeat(t *testing.T, _ *Server, base string) {
	httpDo(t, "POST", base+"/api/registry/register.json", `{"instances":[`+inst("svc", "known")+`]}`)
	hb := dial(t, base, "/ws/registry/heartbeat")
	for _, tc := range []struct{ body, want string }{
		{`{"instances":[` + inst("svc", "known") + `]}`, `"errorCode":"success"`},
		{`{"instances":[` + inst("svc", "known") + `,` + inst("svc", "ghost") + `]}`, `"errorCode":"data-not-found"`},
		{`not json`, `"errorCode":"bad-request"`},
		{`{"instances":[]}`, `"errorCode":"bad-request"`},
	} {
		if err := hb.WriteMessage(websocket.TextMessage, []byte(tc.body)); err != nil {
			t.Fatal(err)
		}
		hb.SetReadDeadline(time.Now().Add(time.Second))
		_, msg, err := hb.ReadMessage()
		if err != nil || !strings.Contains(string(msg), tc.want) {
			t.Fatalf("heartbeat %s: got %s, %v; want %s", tc.body, msg, err, tc.want)
		}
	}
	// Pings are answered.
	pong := make(chan string, 1)
	hb.SetPongHandler(func(data string) error { pong <- data; return nil })
	if err := hb.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	go hb.ReadMessage() // control frames are handled while reading
	select {
	case got := <-pong:
		if got != "hello" {
			t.Fatalf("unexpected pong %q", got)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("no pong")
	}
}

func TestWebSocketStatsAndLifetime(t *testing.T) {
	eachLibrary(t, Config{Push: PushConfig{SessionLifetime: 300 * time.Millisecond}}, testWebSocketStatsAndLifetime)
}

func testWebSocketStatsAndLifetime(t *testing.T, s *Server, base string) {
	conn := dial(t, base, "/ws/discovery/all-instance-change")
	time.Sleep(50 * time.Millisecond)
	if got := s.hub.stats().Connections["all-instance-change"]; got != 1 {
		t.Fatalf("unexpected connection count %d; want 1", got)
	}
	if body := httpDo(t, "GET", base+"/api/status/websocket.json", ""); !strings.Contains(body, `"all-instance-change":1`) {
		t.Fatalf("status lacks the connection: %s", body)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, _, err := conn.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("unexpected end of session: %v; want a going-away close at the session lifetime", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for s.hub.stats().Connections["all-instance-change"] != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("closed session still counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWebSocketFragmentsAndPings: a message split over several frames is
// joined; the server pings on its own; a message over the body cap ends
// the session.
func TestWebSocketFragmentsAndPings(t *testing.T) {
	cfg := Config{MaxBodyBytes: 4096, Push: PushConfig{PingInterval: 50 * time.Millisecond}}
	eachLibrary(t, cfg, func(t *testing.T, _ *Server, base string) {
		httpDo(t, "POST", base+"/api/registry/register.json", `{"instances":[`+inst("svc", "known")+`]}`)
		d := websocket.Dialer{WriteBufferSize: 64} // gorilla fragments messages longer than its buffer
		hb, _, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/registry/heartbeat", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer hb.Close()
		pings := make(chan struct{}, 16)
		hb.SetPingHandler(func(string) error { pings <- struct{}{}; return nil })
		long := `{"instances":[` + inst("svc", "known") + strings.Repeat(" ", 300) + `]}`
		w, _ := hb.NextWriter(websocket.TextMessage)
		for i := 0; i < len(long); i += 50 { // several frames of at most 64 bytes
			w.Write([]byte(long[i:min(i+50, len(long))]))
		}
		w.Close()
		hb.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, msg, err := hb.ReadMessage()
		if err != nil || !strings.Contains(string(msg), `"errorCode":"success"`) {
			t.Fatalf("fragmented heartbeat: got %s, %v; want success", msg, err)
		}
		ended := make(chan error, 1)
		go func() { // pings are handled while reading
			for {
				if _, _, err := hb.ReadMessage(); err != nil {
					ended <- err
					return
				}
			}
		}()
		select {
		case <-pings:
		case <-time.After(2 * time.Second):
			t.Fatalf("no ping from the server within 2 s at a 50 ms interval")
		}
		// The server may cut the socket before the last fragments are written.
		hb.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 5000)))
		err = <-ended
		var ce *websocket.CloseError
		// 1006: the socket was cut before the close frame was read (the
		// server closes with unread input); TestMessageTooBigCloseCode
		// checks the code itself.
		if errors.As(err, &ce) && ce.Code != websocket.CloseMessageTooBig && ce.Code != websocket.CloseAbnormalClosure {
			t.Fatalf("a message over the body cap was closed with %d; want 1009", ce.Code)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("a message over the body cap did not end the session")
		}
	})
}

// TestWebSocketHandshakeRefused: a plain request or a wrong version gets a
// 400 with the contract's error body, never a hang or a 5xx.
func TestWebSocketHandshakeRefused(t *testing.T) {
	eachLibrary(t, Config{}, testWebSocketHandshakeRefused)
}

func testWebSocketHandshakeRefused(t *testing.T, s *Server, base string) {
	defer func() {
		if n := s.Panics(); n != 0 {
			t.Fatalf("refused handshakes panicked %d times", n)
		}
	}()
	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"no upgrade", nil},
		{"wrong version", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "8", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}},
		{"bad key", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "short"}},
		{"long key", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": strings.Repeat("QUJD", 30)}},
		{"25-byte key", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==A"}},
		{"key of 17 bytes", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQAB"}},
	} {
		req, _ := http.NewRequest("GET", base+"/ws/discovery/instance-change", nil)
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var body struct {
			ResponseStatus struct{ ErrorCode string } `json:"responseStatus"`
		}
		stdjson.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 400 || body.ResponseStatus.ErrorCode != "bad-request" {
			t.Fatalf("%s: got %d %+v; want 400 bad-request", tc.name, resp.StatusCode, body)
		}
	}
}

// TestUpgradeResponse checks the 101 answer byte for byte where it matters:
// the accept key of RFC 6455's example and no body framing headers.
func TestUpgradeResponse(t *testing.T) {
	_, base := startLoopback(t, Config{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET /ws/discovery/all-instance-change HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n" +
		"Upgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"))
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ||
		!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || resp.Header.Get("Content-Length") != "" ||
		resp.Header.Get("Content-Type") != "" {
		t.Fatalf("unexpected upgrade answer %d %v", resp.StatusCode, resp.Header)
	}
}

// fakeTransport records what a session writes; while gated, writes wait
// (a subscriber whose socket is full).
type fakeTransport struct {
	mu        sync.Mutex
	frames    []string
	raw       []string // control answers (pong, close)
	closed    bool
	closeCode int           // of the close frame written, if any
	gate      chan struct{} // nil: writes go through
}

func (f *fakeTransport) writeTexts(msgs [][]byte) error {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	for _, m := range msgs {
		f.frames = append(f.frames, string(m))
	}
	f.mu.Unlock()
	return nil
}
func (f *fakeTransport) writeRaw(p []byte) error {
	f.mu.Lock()
	f.raw = append(f.raw, string(p))
	f.mu.Unlock()
	return nil
}
func (f *fakeTransport) writePing() error { return nil }
func (f *fakeTransport) writeClose(code int, _ string) error {
	f.mu.Lock()
	f.closeCode = code
	f.mu.Unlock()
	return nil
}
func (f *fakeTransport) close() error            { f.mu.Lock(); f.closed = true; f.mu.Unlock(); return nil }
func (f *fakeTransport) setGate(g chan struct{}) { f.mu.Lock(); f.gate = g; f.mu.Unlock() }
func (f *fakeTransport) isClosed() bool          { f.mu.Lock(); defer f.mu.Unlock(); return f.closed }
func (f *fakeTransport) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.frames...)
}

// TestSlowSubscriber: a subscriber whose writes are stuck does not delay
// another of the same service; its full queue is dropped for a reload, and
// it is disconnected when it keeps falling behind.
func TestSlowSubscriber(t *testing.T) {
	const queue = 16
	s := newTestServer(t, Config{Push: PushConfig{SendQueue: queue, Library: LibraryGorilla}}) // unframed: readable
	h := s.hub
	h.strikeGap = 0 // every overflow with nothing written counts
	slowT, fastT := &fakeTransport{}, &fakeTransport{}
	slowT.setGate(make(chan struct{}))
	slow, fast := h.newSession(wsInstanceChange, slowT), h.newSession(wsInstanceChange, fastT)
	for _, ss := range []*session{slow, fast} {
		h.add(ss)
		h.subscribe(ss, "svc")
	}
	registered := 0
	register := func(n int) {
		t.Helper()
		for range n {
			registered++
			id := "i" + strconv.Itoa(registered)
			if failed := s.reg.Register([]*core.Instance{{RegionID: "SHA", ServiceID: "svc", InstanceID: id, URL: "http://" + id}}, nil); len(failed) > 0 {
				t.Fatalf("cannot register %s: %+v", id, failed)
			}
			// Paced by the fast subscriber, which must get every change
			// promptly however stuck the other one is.
			waitFor(t, func() bool { return len(fastT.got()) == registered }, "change "+id+" at the fast subscriber")
		}
	}
	register(40) // the slow one overflows its queue of 16 twice
	if d := h.dropped.Load(); d != 2 {
		t.Fatalf("overflows counted %d; want 2 (40 changes, a queue of %d, writes stuck)", d, queue)
	}
	gate := slowT.gate
	slowT.setGate(nil)
	close(gate) // the slow one catches up: its dropped frames are replaced by a reload
	waitFor(t, func() bool {
		g := slowT.got()
		return len(g) > 0 && strings.Contains(g[len(g)-1], `"changeType":"reload"`) && strings.Contains(g[len(g)-1], `"serviceId":"svc"`)
	}, "a reload for svc as the slow subscriber's last frame")
	if got := len(slowT.got()); got >= 40 {
		t.Fatalf("the slow subscriber was written %d frames: its queue was not bounded", got)
	}
	if slowT.isClosed() {
		t.Fatalf("a subscriber that fell behind twice was disconnected")
	}
	// Overflowing again and again with nothing written between disconnects:
	// the first overflow after progress is forgiven, the next three strike.
	gate = make(chan struct{})
	slowT.setGate(gate)
	register(3 * (queue + 1)) // overflows at 18 (after progress: forgiven) and 35 (a strike)
	if slowT.isClosed() {
		t.Fatal("a stuck subscriber was disconnected after one strike; want three")
	}
	register(2 * (queue + 1)) // overflows at 52 and 69: strikes two and three
	waitFor(t, slowT.isClosed, "the repeatedly slow subscriber disconnected")
	close(gate)
	if h.kicked.Load() != 1 {
		t.Fatalf("unexpected disconnections %d; want 1", h.kicked.Load())
	}
	if fastT.isClosed() || h.pushed.Load() < int64(registered) {
		t.Fatalf("the fast subscriber was disturbed: closed %v, pushed %d", fastT.isClosed(), h.pushed.Load())
	}
	if got := string(reloadFrame("svc", time.UnixMilli(5))); got != `{"changeType":"reload","changeTime":5,"instance":{"serviceId":"svc","instanceId":"reload"}}` {
		t.Fatalf("unexpected reload frame %s", got)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestTextFrame reads the hub's frames back with gobwas's own reader.
func TestTextFrame(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		payload := []byte(strings.Repeat("a", n))
		f, err := ws.ReadFrame(strings.NewReader(string(TextFrame(payload))))
		if err != nil || f.Header.OpCode != ws.OpText || !f.Header.Fin || f.Header.Masked || string(f.Payload) != string(payload) {
			t.Fatalf("frame of %d bytes read back as %+v (%v)", n, f.Header, err)
		}
	}
}

// TestWebSocketClientClose: a client's close is echoed with its code and
// the session is gone from the counts.
func TestWebSocketClientClose(t *testing.T) {
	eachLibrary(t, Config{}, func(t *testing.T, s *Server, base string) {
		conn := dial(t, base, "/ws/discovery/instance-change")
		waitFor(t, func() bool { return s.hub.stats().Connections["instance-change"] == 1 }, "the session counted")
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
		if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _, err := conn.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Fatalf("unexpected answer to a close: %v; want the normal-closure code echoed", err)
		}
		waitFor(t, func() bool { return s.hub.stats().Connections["instance-change"] == 0 }, "the closed session uncounted")
	})
}

// TestPipelinedSubscription: a client that sends its subscription in the
// same write as the handshake (the frame arrives before the 101 is read)
// is subscribed; an unmasked client frame ends the session (RFC 6455 §5.1).
func TestPipelinedSubscription(t *testing.T) {
	_, base := startLoopback(t, Config{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sub := ws.MustCompileFrame(ws.MaskFrameInPlace(ws.NewTextFrame([]byte(`{"serviceId":"piped"}`))))
	conn.Write(append([]byte("GET /ws/discovery/instance-change HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"+
		"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"), sub...))
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("no upgrade: %v %v", resp, err)
	}
	// The server applies the subscription as it reads it, maybe after the
	// first register: register until a change is pushed.
	pushed := false
	for i := 0; i < 30 && !pushed; i++ {
		httpDo(t, "POST", base+"/api/registry/register.json", `{"instances":[`+inst("piped", "p"+strconv.Itoa(i))+`]}`)
		conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if f, err := ws.ReadFrame(br); err == nil {
			if !strings.Contains(string(f.Payload), `"serviceId":"piped"`) {
				t.Fatalf("unexpected push %q", f.Payload)
			}
			pushed = true
		}
	}
	if !pushed {
		t.Fatalf("the pipelined subscription got no push")
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	conn.Write(ws.MustCompileFrame(ws.NewTextFrame([]byte(`{"serviceId":"x"}`)))) // unmasked
	for {
		f, err := ws.ReadFrame(br)
		if err != nil {
			break // closed: what must happen
		}
		if f.Header.OpCode == ws.OpClose {
			continue
		}
		t.Fatalf("unexpected frame after an unmasked client frame: %+v", f.Header)
	}
}

// TestShutdownClosesSessions: a graceful shutdown tells every WebSocket
// client it is going away and does not wait for them to leave.
func TestShutdownClosesSessions(t *testing.T) {
	eachLibrary(t, Config{}, func(t *testing.T, s *Server, base string) {
		conn := dial(t, base, "/ws/discovery/all-instance-change")
		waitFor(t, func() bool { return s.hub.stats().Connections["all-instance-change"] == 1 }, "the session counted")
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done <- s.Shutdown(ctx)
		}()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := conn.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || ce.Text != "server shutting down" {
			t.Fatalf("unexpected end of the session at shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("shutdown with an open session failed: %v", err)
		}
	})
}

// TestMessageTooBigCloseCode: a message over the body cap, in one frame or
// in fragments, ends the session with 1009.
func TestMessageTooBigCloseCode(t *testing.T) {
	s := newTestServer(t, Config{MaxBodyBytes: 100})
	big := strings.Repeat("x", 150)
	for name, stream := range map[string][]byte{
		"one frame": clientFrame(ws.OpText, true, big),
		"fragments": bytes.Join([][]byte{clientFrame(ws.OpText, false, big[:60]), clientFrame(ws.OpContinuation, false, big[60:120]),
			clientFrame(ws.OpContinuation, true, big[120:])}, nil),
	} {
		tr := &fakeTransport{}
		ss := s.hub.newSession(wsHeartbeat, tr)
		s.readFrames(ss, bytes.NewReader(stream), func(time.Time) error { return nil })
		waitFor(t, tr.isClosed, name+": session closed")
		tr.mu.Lock()
		code := tr.closeCode
		tr.mu.Unlock()
		if code != closeMessageTooBig {
			t.Fatalf("%s: closed with %d; want %d", name, code, closeMessageTooBig)
		}
	}
}

// TestSubscriptionCap: one session follows at most maxSubscriptions
// services; the next subscription ends it with 1008.
func TestSubscriptionCap(t *testing.T) {
	s := newTestServer(t, Config{})
	tr := &fakeTransport{}
	ss := s.hub.newSession(wsInstanceChange, tr)
	s.hub.add(ss)
	for i := range maxSubscriptions {
		s.onMessage(ss, []byte(`{"serviceId":"svc-`+strconv.Itoa(i)+`"}`))
	}
	s.onMessage(ss, []byte(`{"serviceId":"svc-0"}`)) // again: not a new one
	if tr.isClosed() || len(ss.services) != maxSubscriptions {
		t.Fatalf("closed %v with %d subscriptions; want open with %d", tr.isClosed(), len(ss.services), maxSubscriptions)
	}
	s.onMessage(ss, []byte(`{"serviceId":"one-too-many"}`))
	waitFor(t, tr.isClosed, "the session closed")
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.closeCode != closePolicyViolation {
		t.Fatalf("closed with %d; want %d", tr.closeCode, closePolicyViolation)
	}
}
