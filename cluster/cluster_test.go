package cluster

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artemis-go/artemis/core"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newRegistry(t testing.TB) *core.Registry {
	t.Helper()
	reg, err := core.New(core.Config{Region: "r", Zone: "z"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return reg
}

func instance(svc, id string) *core.Instance {
	return &core.Instance{RegionID: "r", ServiceID: svc, InstanceID: id, URL: "http://10.0.0.1/" + id,
		Metadata: map[string]string{"line": "a\nb"}}
}

func TestConfigPeers(t *testing.T) {
	f := func(self string, peers []string, want []string) {
		t.Helper()
		c, err := Config{Self: self, Peers: peers}.withDefaults()
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		if !slices.Equal(c.Peers, want) {
			t.Fatalf("unexpected peers %v; want %v", c.Peers, want)
		}
	}
	f("http://a:1", nil, []string{})
	f("http://a:1", []string{"http://a:1", "http://b:2", "HTTP://B:2/", " http://c:3 ", ""}, []string{"http://b:2", "http://c:3"})
	f("http://A:1/", []string{"http://a:1"}, []string{})
	for _, bad := range []string{"b:2", "ftp://b", "http://"} {
		if _, err := (Config{Self: "http://a:1", Peers: []string{bad}}).withDefaults(); err == nil {
			t.Fatalf("peer %q accepted", bad)
		}
	}
}

// A peer name that resolves to several addresses is one node per address
// (this node's own address skipped); one address keeps the name.
func TestExpandResolvesNames(t *testing.T) {
	addrs := map[string][]string{"headless": {"10.0.0.2", "10.0.0.1", "10.0.0.3"}, "single": {"10.0.0.9"}, "self-only": {"10.0.0.1"}}
	c, err := New(newRegistry(t), Config{Self: "http://10.0.0.1:8080", Peers: []string{"http://headless:8080", "http://single:8080",
		"http://self-only:8080", "http://unresolvable:8080", "http://10.0.0.5:8080"}, Logger: quiet(),
		Resolve: func(h string) ([]string, error) {
			if a, ok := addrs[h]; ok {
				return a, nil
			}
			return nil, errors.New("no such host")
		}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://10.0.0.2:8080", "http://10.0.0.3:8080", "http://single:8080", "http://unresolvable:8080", "http://10.0.0.5:8080"}
	var got []string
	for _, p := range c.Peers() {
		got = append(got, p.URL)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("unexpected peers %v; want %v", got, want)
	}
	if n := c.NodeCount(); n != 6 {
		t.Fatalf("unexpected node count %d; want 6", n)
	}
	// The headless Service scales: re-resolving adds and removes peers.
	addrs["headless"] = []string{"10.0.0.1", "10.0.0.4"}
	c.setPeers(c.expand())
	got = got[:0]
	for _, p := range c.Peers() {
		got = append(got, p.URL)
	}
	if got[0] != "http://10.0.0.4:8080" || slices.Contains(got, "http://10.0.0.2:8080") {
		t.Fatalf("unexpected peers after scaling %v", got)
	}
}

// fakePeer records the replication requests it receives and answers with
// the codes answer gives.
type fakePeer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []string // op:instanceIds per request
	status  atomic.Value
	answer  func(n int) (int, string) // by request number
	auth    []string
	gzipped int
}

func newFakePeer(t *testing.T, answer func(n int) (int, string)) *fakePeer {
	p := &fakePeer{answer: answer}
	p.status.Store("up")
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/status/node.json" {
			io.WriteString(w, `{"nodeStatus":{"node":{"url":"x","zone":{"regionId":"r","zoneId":"z"}},"status":"`+p.status.Load().(string)+`"},"responseStatus":{"errorCode":"success"}}`)
			return
		}
		body := io.Reader(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Errorf("bad gzip: %v", err)
				return
			}
			body = zr
		}
		var req struct{ Instances []core.Instance }
		if err := json.NewDecoder(body).Decode(&req); err != nil {
			t.Errorf("bad body: %v", err)
		}
		var ids []string
		for _, in := range req.Instances {
			ids = append(ids, in.InstanceID)
		}
		op := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/replication/registry/"), ".json")
		p.mu.Lock()
		n := len(p.got)
		p.got = append(p.got, op+":"+strings.Join(ids, ","))
		p.auth = append(p.auth, r.Header.Get("Authorization"))
		if r.Header.Get("Content-Encoding") == "gzip" {
			p.gzipped++
		}
		p.mu.Unlock()
		code, errorCode := 200, "success"
		if p.answer != nil {
			code, errorCode = p.answer(n)
		}
		status := "success"
		if errorCode != "success" {
			status = "fail"
		}
		w.WriteHeader(code)
		io.WriteString(w, `{"responseStatus":{"status":"`+status+`","errorCode":"`+errorCode+`"}}`)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakePeer) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func startCluster(t *testing.T, reg *core.Registry, cfg Config) *Cluster {
	t.Helper()
	cfg.Self, cfg.Logger = "http://127.0.0.1:1", quiet()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	c, err := New(reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	t.Cleanup(c.Close)
	waitFor(t, func() bool {
		for _, p := range c.Peers() {
			if p.Status != StatusUp {
				return false
			}
		}
		return true
	}, "the peers seen up")
	return c
}

// Operations reach every peer in order, runs of one operation per request,
// heartbeats of an instance already waiting sent once, with the token.
func TestReplicationBatchesInOrder(t *testing.T) {
	reg := newRegistry(t)
	p1, p2 := newFakePeer(t, nil), newFakePeer(t, nil)
	c := startCluster(t, reg, Config{Peers: []string{p1.srv.URL, p2.srv.URL}, Token: "tok", FlushDelay: 50 * time.Millisecond,
		HeartbeatDelay: time.Hour})
	var recs []*core.Record
	reg.RegisterEach([]*core.Instance{instance("s", "a"), instance("s", "b")}, nil, func(r *core.Record) { recs = append(recs, r) })
	// One flush: register a, b; heartbeat a (twice: once sent); unregister b; register b.
	c.Replicate(OpRegister, recs[0])
	c.Replicate(OpRegister, recs[1])
	c.Replicate(OpHeartbeat, recs[0])
	c.Replicate(OpHeartbeat, recs[0])
	c.Replicate(OpUnregister, recs[1])
	c.Replicate(OpRegister, recs[1])
	want := []string{"register:a,b", "heartbeat:a", "unregister:b", "register:b"}
	for _, p := range []*fakePeer{p1, p2} {
		waitFor(t, func() bool { return len(p.requests()) == len(want) }, "4 requests at a peer")
		if got := p.requests(); !slices.Equal(got, want) {
			t.Fatalf("unexpected requests %v; want %v", got, want)
		}
		for _, a := range p.auth {
			if a != "Bearer tok" {
				t.Fatalf("unexpected Authorization %q", a)
			}
		}
	}
	st := c.Stats()
	if st[0].Batches != 4 || st[0].Instances != 5 || st[0].Failures != 0 {
		t.Fatalf("unexpected stats %+v", st[0])
	}
}

// Transient failures are retried until accepted; permanent ones dropped and
// counted; a batch over the gzip threshold is sent gzipped.
func TestReplicationRetries(t *testing.T) {
	reg := newRegistry(t)
	var rec *core.Record
	reg.RegisterEach([]*core.Instance{instance("s", "a")}, nil, func(r *core.Record) { rec = r })
	transient := newFakePeer(t, func(n int) (int, string) {
		switch n {
		case 0:
			return 503, "service-unavailable"
		case 1:
			return 200, "rate-limited"
		}
		return 200, "success"
	})
	permanent := newFakePeer(t, func(int) (int, string) { return 400, "bad-request" })
	c := startCluster(t, reg, Config{Peers: []string{transient.srv.URL, permanent.srv.URL}, FlushDelay: 20 * time.Millisecond})
	c.Replicate(OpRegister, rec)
	waitFor(t, func() bool { return c.Stats()[0].Batches == 1 }, "the batch delivered after two retries")
	waitFor(t, func() bool { return c.Stats()[1].Failures == 1 }, "the refused batch dropped")
	if st := c.Stats(); st[0].Retries != 2 || st[0].Failures != 0 || len(permanent.requests()) != 1 {
		t.Fatalf("unexpected stats %+v / %+v, %d attempts at the refusing peer", st[0], st[1], len(permanent.requests()))
	}
	// A large batch is gzipped: each instance alone is over a quarter of
	// the threshold, so however the dispatcher cuts them, batches of
	// several are gzipped.
	var many []*core.Instance
	for i := range 40 {
		in := instance("big", "i"+strconv.Itoa(i))
		in.Metadata = map[string]string{"pad": strings.Repeat("x", gzipThreshold/3)}
		many = append(many, in)
	}
	reg.RegisterEach(many, nil, func(r *core.Record) { c.Replicate(OpRegister, r) })
	waitFor(t, func() bool { return c.Stats()[0].Instances == 41 }, "the large batch delivered")
	transient.mu.Lock()
	gzipped := transient.gzipped
	transient.mu.Unlock()
	if gzipped == 0 {
		t.Fatal("a batch over the gzip threshold was sent plain")
	}
}

// A peer that is neither up nor starting is not sent anything; a peer whose
// queue is full drops batches (counted) without holding up the others.
func TestReplicationSkipsAndBoundsPeers(t *testing.T) {
	reg := newRegistry(t)
	block := make(chan struct{})
	slow := newFakePeer(t, nil)
	slow.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/status/node.json" {
			io.WriteString(w, `{"nodeStatus":{"node":{"zone":{}},"status":"up"}}`)
			return
		}
		<-block
	})
	defer close(block)
	fast, down := newFakePeer(t, nil), newFakePeer(t, nil)
	c := startCluster(t, reg, Config{Peers: []string{slow.srv.URL, fast.srv.URL, down.srv.URL}, QueueBatches: 2,
		FlushDelay: time.Millisecond, RequestTimeout: time.Minute, RetryFor: time.Minute})
	down.status.Store("down")
	waitFor(t, func() bool { return c.Peers()[2].Status == StatusDown }, "the peer seen down")
	for i := range 10 {
		var rec *core.Record
		reg.RegisterEach([]*core.Instance{instance("s", "i"+strconv.Itoa(i))}, nil, func(r *core.Record) { rec = r })
		c.Replicate(OpRegister, rec)
		want := i + 1
		waitFor(t, func() bool { return c.Stats()[1].Instances == int64(want) }, "the fast peer served")
	}
	st := c.Stats()
	if st[0].Failures < 7 || st[0].Queue != 2 {
		t.Fatalf("the stuck peer: %+v; want its queue of 2 full and the rest dropped", st[0])
	}
	if len(down.requests()) != 0 || st[2].Skipped != 10 {
		t.Fatalf("the down peer got %d requests, skipped %d; want none sent, 10 skipped", len(down.requests()), st[2].Skipped)
	}
}

// The outbox is bounded: operations over MaxPending are dropped and counted.
func TestOutboxBound(t *testing.T) {
	reg := newRegistry(t)
	c, err := New(reg, Config{Self: "http://127.0.0.1:1", Peers: []string{"http://127.0.0.1:2"}, MaxPending: 3, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var recs []*core.Record
	reg.RegisterEach([]*core.Instance{instance("s", "a"), instance("s", "b"), instance("s", "c"), instance("s", "d")}, nil,
		func(r *core.Record) { recs = append(recs, r) })
	for _, r := range recs {
		c.Replicate(OpRegister, r)
	}
	if d := c.Dropped(); d != 1 {
		t.Fatalf("unexpected dropped %d; want 1", d)
	}
	if got := len(c.out.take(nil)); got != 3 {
		t.Fatalf("unexpected waiting operations %d; want 3 (the bound)", got)
	}
}

// WriteServices and readServices copy a registry, in the line format and
// from any other formatting of the same JSON.
func TestServicesRoundTrip(t *testing.T) {
	src := newRegistry(t)
	var insts []*core.Instance
	for i := range 2500 {
		insts = append(insts, instance("svc-"+strconv.Itoa(i%7), "i"+strconv.Itoa(i)))
	}
	src.Register(insts, nil)
	var out bytes.Buffer
	if err := WriteServices(&out, src); err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		ResponseStatus struct{ ErrorCode string }
		Services       []struct {
			ServiceID string
			Instances []core.Instance
		}
	}
	if err := json.Unmarshal(out.Bytes(), &parsed); err != nil || parsed.ResponseStatus.ErrorCode != "success" || len(parsed.Services) != 7 {
		t.Fatalf("the answer is not the contract's JSON: %v, %d services", err, len(parsed.Services))
	}
	for name, body := range map[string][]byte{"lines": out.Bytes(), "compact": compact(t, out.Bytes()), "indented": indent(t, out.Bytes())} {
		dst := newRegistry(t)
		n, err := readServices(bytes.NewReader(body), dst)
		if err != nil || n != 2500 || dst.Stats().Instances != 2500 {
			t.Fatalf("%s: copied %d (%d held), %v; want 2500", name, n, dst.Stats().Instances, err)
		}
		var meta string
		dst.Leases([]string{"svc-3"}, func(_ string, ls []core.LeaseInfo) { meta = ls[0].Record.Instance().Metadata["line"] })
		if meta != "a\nb" {
			t.Fatalf("%s: metadata not copied: %q", name, meta)
		}
	}
	for name, body := range map[string]string{
		"truncated":  out.String()[:out.Len()/2],
		"no frame":   `{"regionId":"r"}` + "\n",
		"bad line":   string(syncHead) + string(svcHeadStart) + `"s"` + string(svcHeadEnd) + "{oops\n",
		"stray line": string(syncHead) + `{"regionId":"r","serviceId":"s","instanceId":"i"}` + "\n" + string(syncTail),
	} {
		if _, err := readServices(strings.NewReader(body), newRegistry(t)); err == nil {
			t.Fatalf("%s: read without error", name)
		}
	}
}

func compact(t *testing.T, b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func indent(t *testing.T, b []byte) []byte {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// FuzzReadServices: whatever a peer answers, reading it ends with an error
// or a copy, never a panic, and copies only valid instances.
func FuzzReadServices(f *testing.F) {
	src, _ := core.New(core.Config{Region: "r"})
	defer src.Close()
	src.Register([]*core.Instance{instance("a", "1"), instance("b", "2")}, nil)
	var out bytes.Buffer
	WriteServices(&out, src)
	f.Add(out.Bytes())
	f.Add([]byte(`{"services":[{"serviceId":"a","instances":[{"regionId":"r","serviceId":"a","instanceId":"x","url":"u"}]}]}`))
	f.Add([]byte(string(syncHead) + "]}\n]}\n"))
	reg, _ := core.New(core.Config{Region: "r", Shards: 1})
	defer reg.Close()
	f.Fuzz(func(t *testing.T, body []byte) {
		before := reg.Stats().Instances
		n, _ := readServices(bytes.NewReader(body), reg)
		if added := reg.Stats().Instances - before; added > int64(n) {
			t.Fatalf("%d instances added; %d reported copied", added, n)
		}
	})
}

// One node named twice (a name and its address) is one peer, and this
// node's own address under another name is not a peer.
func TestExpandDeduplicatesNames(t *testing.T) {
	resolve := func(h string) ([]string, error) {
		switch h {
		case "localhost", "me":
			return []string{"127.0.0.1"}, nil
		}
		return nil, errors.New("no such host")
	}
	c, err := New(newRegistry(t), Config{Self: "http://me:19005", Logger: quiet(), Resolve: resolve,
		Peers: []string{"http://127.0.0.1:19005", "http://localhost:19005/", "http://localhost:19001", "http://127.0.0.1:19001", "HTTP://127.0.0.1:19001/"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.Peers() {
		got = append(got, p.URL)
	}
	if !slices.Equal(got, []string{"http://localhost:19001"}) || c.NodeCount() != 2 {
		t.Fatalf("unexpected peers %v (%d nodes); want http://localhost:19001 only, 2 nodes", got, c.NodeCount())
	}
}

func TestPeerTarget(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		st   PeerStatus
		want bool
	}{
		{PeerStatus{Status: StatusUp, LastSeen: now}, true},
		{PeerStatus{Status: StatusStarting, LastSeen: now}, true},
		{PeerStatus{Status: StatusDown, LastSeen: now}, false},
		{PeerStatus{Status: StatusUnknown}, true}, // never reached: the first poll may have come too early
		{PeerStatus{Status: StatusUnknown, LastSeen: now.Add(-time.Second)}, true},
		{PeerStatus{Status: StatusUnknown, LastSeen: now.Add(-unknownGrace - time.Second)}, false},
	} {
		if got := tc.st.target(now); got != tc.want {
			t.Errorf("%+v: target %v; want %v", tc.st, got, tc.want)
		}
	}
}
