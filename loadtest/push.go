package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Push measurements (issue 4): Subscribers WebSocket sessions follow one
// service while the generator registers and unregisters instances of it at
// Rate changes per second; each subscriber times every frame from the moment
// the change's request was sent. IdleConns opens that many sessions and
// reports the server's memory per connection.

// PushResult is the outcome of a push run.
type PushResult struct {
	Subscribers    int              `json:"subscribers"`
	Changes        int              `json:"changes"`
	FramesExpected int              `json:"framesExpected"`
	FramesReceived int              `json:"framesReceived"`
	Latency        LatencyQuantiles `json:"latency"`
	Server         *ProcessStats    `json:"server,omitempty"`
}

// IdleResult is the outcome of an idle-connections run.
type IdleResult struct {
	Connections     int   `json:"connections"`
	StillOpen       int   `json:"stillOpen"`
	RSSBeforeBytes  int64 `json:"rssBeforeBytes"`
	RSSAfterBytes   int64 `json:"rssAfterBytes"`
	BytesPerConn    int64 `json:"bytesPerConnection"`
	GoroutinesAfter int   `json:"goroutinesAfter"`
	// The Go runtime's view after (from /metrics): goroutine stacks and
	// heap in use, the two parts of RSS the server's code decides.
	StackInuseBytes int64 `json:"stackInuseBytes"`
	HeapInuseBytes  int64 `json:"heapInuseBytes"`
}

const pushService = "push-svc"

func dialSubscriber(ctx context.Context, base, service string) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws/discovery/instance-change", nil)
	if err != nil {
		return nil, err
	}
	msg := []byte(`{"serviceId":"` + service + `","regionId":"default"}`)
	if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// runPush measures register → frame latency at every subscriber.
func runPush(ctx context.Context, base string, pid int, cfg Config, logf func(string, ...any)) (*PushResult, error) {
	conns := make([]*websocket.Conn, 0, cfg.Subscribers)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range cfg.Subscribers {
		c, err := dialSubscriber(ctx, base, pushService)
		if err != nil {
			return nil, fmt.Errorf("cannot open subscriber %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond) // subscriptions are applied by the server's readers
	logf("%d subscribers on %s", len(conns), pushService)

	var sent sync.Map // "new:id" or "delete:id" -> time.Time
	var mu sync.Mutex
	var lat []time.Duration
	var received atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for {
				_, msg, err := c.ReadMessage()
				now := time.Now()
				if err != nil {
					break
				}
				// The frame's key without a JSON decoder (the generator must
				// stay cheap): changeType and instanceId are plain strings.
				if key, ok := frameKey(msg); ok {
					if t0, ok := sent.Load(key); ok {
						local = append(local, now.Sub(t0.(time.Time)))
						received.Add(1)
					}
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}

	client := httpClient()
	defer client.CloseIdleConnections()
	smp := startSampler(pid, cfg.ServerCPUs)
	tick := time.NewTicker(time.Second / time.Duration(cfg.Rate))
	deadline := time.Now().Add(cfg.Duration)
	changes := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		<-tick.C
		id := "push-" + strconv.Itoa(changes/2)
		op, kind := "register", "new"
		if changes%2 == 1 {
			op, kind = "unregister", "delete"
		}
		body := []byte(`{"instances":[{"regionId":"default","serviceId":"` + pushService + `","instanceId":"` + id + `","url":"http://` + id + `"}]}`)
		sent.Store(kind+":"+id, time.Now())
		resp, err := client.Post(base+"/api/registry/"+op+".json", "application/json", bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("cannot %s: %w", op, err)
		}
		drain(resp.Body)
		changes++
	}
	tick.Stop()
	time.Sleep(time.Second) // let the last frames arrive
	server := smp.stop()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	return &PushResult{Subscribers: len(conns), Changes: changes, FramesExpected: changes * len(conns),
		FramesReceived: int(received.Load()), Latency: quantiles(lat), Server: server}, nil
}

// runIdle opens n subscriber sessions, holds them, and reports memory.
func runIdle(ctx context.Context, base string, pid int, n int, hold time.Duration) (*IdleResult, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("the idle-connections run needs a server it started (no -target)")
	}
	before, _, _ := readRSS(pid)
	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := dialSubscriber(ctx, base, "idle-svc-"+strconv.Itoa(i%100))
		if err != nil {
			return nil, fmt.Errorf("cannot open connection %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	time.Sleep(hold)
	after, _, _ := readRSS(pid)
	open := 0
	for _, c := range conns {
		if c.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)) == nil {
			open++
		}
	}
	return &IdleResult{Connections: n, StillOpen: open, RSSBeforeBytes: before, RSSAfterBytes: after,
		BytesPerConn: (after - before) / int64(n), GoroutinesAfter: scrapeGauge(ctx, base+"/metrics", "go_goroutines"),
		StackInuseBytes: int64(scrapeGauge(ctx, base+"/metrics", "go_memstats_stack_inuse_bytes")),
		HeapInuseBytes:  int64(scrapeGauge(ctx, base+"/metrics", "go_memstats_heap_inuse_bytes"))}, nil
}

// frameKey extracts "changeType:instanceId" from an InstanceChange frame.
func frameKey(msg []byte) (string, bool) {
	ct, ok := field(msg, `"changeType":"`)
	if !ok {
		return "", false
	}
	id, ok := field(msg, `"instanceId":"`)
	if !ok {
		return "", false
	}
	return ct + ":" + id, true
}

func field(msg []byte, key string) (string, bool) {
	i := bytes.Index(msg, []byte(key))
	if i < 0 {
		return "", false
	}
	rest := msg[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	return string(rest[:j]), true
}
