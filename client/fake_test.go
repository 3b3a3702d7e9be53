package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const (
	registerPath   = "/api/registry/register.json"
	heartbeatPath  = "/api/registry/heartbeat.json"
	unregisterPath = "/api/registry/unregister.json"
	lookupPath     = "/api/discovery/lookup.json"
)

// fastRetries keeps the backoff of the tests short. Nothing is timed: the
// tests count requests.
func fastRetries() Option { return WithRetries(3, time.Millisecond, 2*time.Millisecond) }

// newTestRegistry is a registry client over urls (in that order) that does
// not heartbeat on its own.
func newTestRegistry(t *testing.T, urls []string, opts ...Option) *Registry {
	t.Helper()
	opts = append([]Option{WithStaticNodes(), fastRetries(), WithHeartbeatInterval(time.Hour)}, opts...)
	r, err := NewRegistry(context.Background(), urls, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// fakeNode is an in-process Artemis node that answers the Java JSON from a
// script, and counts and keeps what it was asked. It lets a test make one
// node draining, rate-limited or broken while another is healthy.
type fakeNode struct {
	*httptest.Server

	// answer, when set, scripts the answer to the hit-th request (from 1)
	// to path; a zero code falls back to the healthy answer.
	answer func(path string, hit int) (code int, body string)
	// ws, when set, serves the WebSocket paths (others answer 404).
	ws func(path string, conn *websocket.Conn)
	// services are what lookup.json answers (exact serviceId match).
	services map[string][]Instance
	// nodes are what up-*-nodes.json answers (data-not-found when empty).
	nodes []string

	mu     sync.Mutex
	hits   map[string]int      // guarded by mu
	bodies map[string][][]byte // guarded by mu
}

func newFakeNode(t testing.TB) *fakeNode {
	f := &fakeNode{hits: map[string]int{}, bodies: map[string][][]byte{}, services: map[string][]Instance{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

const successStatus = `{"status":"success","errorCode":"success","message":""}`

// failBody is an in-band failure with errorCode code.
func failBody(code string) string {
	return `{"responseStatus":{"status":"fail","errorCode":"` + code + `","message":"` + code + `"}}`
}

// always answers every request to path with code and body.
func always(path string, code int, body string) func(string, int) (int, string) {
	return func(p string, _ int) (int, string) {
		if p == path {
			return code, body
		}
		return 0, ""
	}
}

func (f *fakeNode) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.hits[r.URL.Path]++
	hit := f.hits[r.URL.Path]
	f.bodies[r.URL.Path] = append(f.bodies[r.URL.Path], body)
	f.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/ws/") {
		if f.ws == nil {
			http.NotFound(w, r)
			return
		}
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		f.ws(r.URL.Path, conn)
		return
	}
	code, answer := 0, ""
	if f.answer != nil {
		code, answer = f.answer(r.URL.Path, hit)
	}
	if code == 0 {
		code, answer = http.StatusOK, f.healthy(r.URL.Path, body)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	io.WriteString(w, answer)
}

// healthy is a healthy node's answer.
func (f *fakeNode) healthy(path string, body []byte) string {
	switch {
	case path == "/api/discovery/lookup.json":
		var req struct {
			DiscoveryConfigs []struct {
				ServiceID string `json:"serviceId"`
			} `json:"discoveryConfigs"`
		}
		json.Unmarshal(body, &req)
		svcs := make([]Service, 0, len(req.DiscoveryConfigs))
		for _, c := range req.DiscoveryConfigs {
			svcs = append(svcs, Service{ServiceID: c.ServiceID, Instances: f.services[c.ServiceID]})
		}
		b, _ := json.Marshal(svcs)
		return `{"responseStatus":` + successStatus + `,"services":` + string(b) + `}`
	case strings.HasPrefix(path, "/api/cluster/up-"):
		if len(f.nodes) == 0 {
			return `{"nodes":null,"responseStatus":{"status":"fail","errorCode":"data-not-found","message":"no up node"}}`
		}
		nodes := make([]map[string]any, len(f.nodes))
		for i, u := range f.nodes {
			nodes[i] = map[string]any{"url": u, "zone": map[string]string{"regionId": "default", "zoneId": "default"}}
		}
		b, _ := json.Marshal(nodes)
		return `{"nodes":` + string(b) + `,"responseStatus":` + successStatus + `}`
	default:
		return `{"responseStatus":` + successStatus + `}`
	}
}

// count returns how many requests path received.
func (f *fakeNode) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[path]
}

// sent returns the instances of every request body path received, in order.
func (f *fakeNode) sent(path string) [][]Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]Instance
	for _, b := range f.bodies[path] {
		var req struct {
			Instances []Instance `json:"instances"`
		}
		json.Unmarshal(b, &req)
		out = append(out, req.Instances)
	}
	return out
}
