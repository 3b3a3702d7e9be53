package server

import (
	stdjson "encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

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

func TestInstanceChangePush(t *testing.T) {
	_, base := startLoopback(t, Config{})
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

func TestWebSocketHeartbeat(t *testing.T) {
	_, base := startLoopback(t, Config{})
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
	s, base := startLoopback(t, Config{Push: PushConfig{SessionLifetime: 300 * time.Millisecond}})
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

// TestSlowSubscriber: a full queue is never waited for; the subscriber is
// told to reload, and disconnected when it keeps falling behind.
func TestSlowSubscriber(t *testing.T) {
	s := newTestServer(t, Config{})
	h := s.hub
	ss := &session{h: h, kind: wsInstanceChange, send: make(chan []byte, 1), reload: make(chan struct{}, 1),
		services: map[string]string{}, closed: make(chan struct{})}
	h.deliver(ss, []byte("1"))
	h.deliver(ss, []byte("2")) // full: dropped, reload signalled
	select {
	case <-ss.reload:
	default:
		t.Fatalf("no reload signalled to a slow subscriber")
	}
	if h.dropped.Load() != 1 || h.pushed.Load() != 1 {
		t.Fatalf("unexpected counters pushed=%d dropped=%d", h.pushed.Load(), h.dropped.Load())
	}
	for range maxOverflows {
		h.deliver(ss, []byte("x"))
	}
	select {
	case <-ss.closed:
	default:
		t.Fatalf("a subscriber that keeps falling behind was not disconnected")
	}
	if h.kicked.Load() != 1 {
		t.Fatalf("unexpected disconnections %d; want 1", h.kicked.Load())
	}
	if got := string(reloadFrame("svc", time.UnixMilli(5))); got != `{"changeType":"reload","changeTime":5,"instance":{"serviceId":"svc","instanceId":"reload"}}` {
		t.Fatalf("unexpected reload frame %s", got)
	}
}
