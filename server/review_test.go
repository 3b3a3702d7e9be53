package server

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/artemis-go/artemis/core"
)

// Regression tests of the defects a review found (issue 10), one per
// defect, each failing before its fix.

// subscriptions lists the hub's subscription keys of ss, and every key of
// byService, under the hub's lock.
func hubKeys(s *Server) []string {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	var keys []string
	for k := range s.hub.byService {
		keys = append(keys, k)
	}
	return keys
}

// A session that subscribes to two services in two messages gets the
// changes of both (the second message must not overwrite the first id),
// and a closed session leaves nothing in the hub.
func TestSubscriptionsOwnTheirIDs(t *testing.T) {
	eachLibrary(t, Config{}, func(t *testing.T, s *Server, base string) {
		sub := dial(t, base, "/ws/discovery/instance-change")
		sub.WriteMessage(websocket.TextMessage, []byte(`{"serviceId":"svc-aa"}`))
		sub.WriteMessage(websocket.TextMessage, []byte(`{"serviceId":"svc-bb"}`))
		waitFor(t, func() bool { return len(hubKeys(s)) == 2 }, "two subscriptions")
		// A third message of the same length must not change the keys.
		sub.WriteMessage(websocket.TextMessage, []byte(`{"serviceId":"svc-bb"}`))
		sub.WriteMessage(websocket.TextMessage, []byte(`{"serviceId":"xxx-xx"}`))
		waitFor(t, func() bool { return len(hubKeys(s)) == 3 }, "three subscriptions")
		keys := strings.Join(sortedStrings(hubKeys(s)), ",")
		if keys != "svc-aa,svc-bb,xxx-xx" {
			t.Fatalf("unexpected subscription keys %q; want svc-aa,svc-bb,xxx-xx", keys)
		}
		httpDo(t, "POST", base+"/api/registry/register.json", `{"instances":[`+inst("svc-aa", "a1")+`]}`)
		httpDo(t, "POST", base+"/api/registry/register.json", `{"instances":[`+inst("svc-bb", "b1")+`]}`)
		var got []string
		for range 2 {
			c, ok := next(t, sub, 2*time.Second)
			if !ok {
				t.Fatalf("subscriber got only %v; want changes of svc-aa and svc-bb", got)
			}
			got = append(got, c.Instance.ServiceID+"/"+c.Instance.InstanceID)
		}
		if strings.Join(got, ",") != "svc-aa/a1,svc-bb/b1" {
			t.Fatalf("unexpected changes %v; want svc-aa/a1,svc-bb/b1", got)
		}
		sub.Close()
		waitFor(t, func() bool { return len(hubKeys(s)) == 0 }, "the closed session's subscriptions removed")
	})
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	return out
}

// A subscribed serviceId is at most core.MaxFieldLen bytes, and the
// subscriptions of every session together hold at most
// MaxSubscriptionBytes; over either, the session is closed with 1008 and
// nothing is kept. Closing sessions gives the budget back.
func TestSubscriptionBounds(t *testing.T) {
	const budget = 4 * (1024 + subscriptionOverhead)
	s := newTestServer(t, Config{Push: PushConfig{MaxSubscriptionBytes: budget, ClientShare: 1}})
	open := func() (*session, *fakeTransport) {
		tr := &fakeTransport{}
		ss := s.hub.newSession(wsInstanceChange, tr)
		s.hub.add(ss)
		return ss, tr
	}
	sub := func(ss *session, id string) { s.onMessage(ss, []byte(`{"serviceId":"`+id+`"}`)) }
	closedWith := func(tr *fakeTransport, what string) {
		t.Helper()
		waitFor(t, tr.isClosed, what)
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if tr.closeCode != closePolicyViolation {
			t.Fatalf("%s: closed with %d; want %d", what, tr.closeCode, closePolicyViolation)
		}
	}

	bad, badT := open()
	s.onMessage(bad, []byte("{\"serviceId\":\"raw\xff\"}"))
	closedWith(badT, "a session subscribing an id that is not UTF-8")
	s.hub.remove(bad)

	long, longT := open()
	sub(long, strings.Repeat("x", 1025))
	closedWith(longT, "a session subscribing a 1,025-byte id")
	if n := len(long.services); n != 0 {
		t.Fatalf("the refused id was kept: %d subscriptions", n)
	}
	s.hub.remove(long)

	var sessions []*session
	for i := range 4 { // exactly the budget: four 1,024-byte ids
		ss, tr := open()
		sub(ss, strings.Repeat(string(rune('a'+i)), 1024))
		if tr.isClosed() {
			t.Fatalf("subscription %d within the budget refused", i)
		}
		sessions = append(sessions, ss)
	}
	if got := s.hub.subBytes.Load(); got != budget {
		t.Fatalf("unexpected subscription bytes %d; want %d", got, budget)
	}
	over, overT := open()
	sub(over, "one-byte-too-many")
	closedWith(overT, "a subscription over the node's budget")
	s.hub.remove(over)
	if got := s.hub.subRefused.Load(); got != 3 {
		t.Fatalf("unexpected refused count %d; want 3", got)
	}
	for _, ss := range sessions {
		s.hub.remove(ss)
	}
	if b, n := s.hub.subBytes.Load(), s.hub.subCount.Load(); b != 0 || n != 0 {
		t.Fatalf("subscriptions left after every session closed: %d bytes, %d", b, n)
	}
}

func postGzip(t testing.TB, url string, body []byte) (int, string) {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Concurrent gzip leases.json and up-*-nodes.json callers each get the
// answer to their own request: the decoded ids must not alias an inflate
// buffer that another request refills.
func TestGzipStatusBodiesOwnTheirIDs(t *testing.T) {
	limits := DefaultRateLimits
	limits.Status = Limit{} // unlimited: every answer is a real one
	_, base := startLoopback(t, Config{RateLimits: &limits})
	const services = 16
	for i := range services {
		id := fmt.Sprintf("svc-%02d", i)
		httpDo(t, "POST", base+"/api/registry/register.json", `{"instances":[`+inst(id, "i1")+`]}`)
	}
	var wrong atomic.Int64
	var wg sync.WaitGroup
	for i := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("svc-%02d", i)
			body := []byte(gzipped(`{"serviceIds":["` + id + `"]}`))
			for range 60 {
				code, out := postGzip(t, base+"/api/status/leases.json", body)
				var resp struct{ Leases map[string]any }
				if err := stdjson.Unmarshal([]byte(out), &resp); code != 200 || err != nil {
					t.Errorf("leases.json answered %d %q", code, out)
					return
				}
				if _, ok := resp.Leases[id]; !ok || len(resp.Leases) != 1 {
					if wrong.Add(1) == 1 {
						t.Logf("asked %s, got %.300s", id, out)
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Fatalf("%d of %d gzip leases.json answers were for another request's services", n, services*60)
	}
	for _, path := range []string{"/api/cluster/up-registry-nodes.json", "/api/cluster/up-discovery-nodes.json"} {
		if code, out := postGzip(t, base+path, []byte(gzipped(`{"regionId":"sha"}`))); code != 200 || !strings.Contains(out, `"errorCode":"success"`) {
			t.Fatalf("gzip %s of this node's region answered %d %s; want success", path, code, out)
		}
	}
}

// lookup.json answers each service once, however often the request names
// it, and refuses more than MaxLookupServices configs with 413.
func TestLookupBounded(t *testing.T) {
	const limit = 50
	s := newTestServer(t, Config{MaxLookupServices: limit})
	do(s, "POST", "/api/registry/register.json", `{"instances":[`+instA+`]}`)
	lookup := func(ids ...string) (int, []string) {
		t.Helper()
		dcs := make([]string, len(ids))
		for i, id := range ids {
			dcs[i] = `{"serviceId":"` + id + `"}`
		}
		r := do(s, "POST", "/api/discovery/lookup.json", `{"discoveryConfigs":[`+strings.Join(dcs, ",")+`]}`)
		var resp struct {
			Services []struct{ ServiceID string }
		}
		if err := stdjson.Unmarshal([]byte(r.body), &resp); err != nil {
			t.Fatalf("answer is not JSON: %v: %.200q", err, r.body)
		}
		var got []string
		for _, svc := range resp.Services {
			got = append(got, svc.ServiceID)
		}
		return r.code, got
	}
	many := make([]string, limit) // at the cap: one service, named limit times in varying case
	for i := range many {
		many[i] = []string{"order-service", "ORDER-service", "Order-Service"}[i%3]
	}
	if code, got := lookup(many...); code != 200 || len(got) != 1 || !strings.EqualFold(got[0], "order-service") {
		t.Fatalf("a lookup naming one service %d times answered %d with %d services %v; want 200 with it once", limit, code, len(got), got)
	}
	if code, got := lookup("b", "order-service", "a", "B", "order-service"); code != 200 || strings.ToLower(strings.Join(got, ",")) != "b,order-service,a" {
		t.Fatalf("unexpected services %v (%d); want b,order-service,a (first appearance order)", got, code)
	}
	distinct := make([]string, limit+1)
	for i := range distinct {
		distinct[i] = "svc-" + strconv.Itoa(i)
	}
	if code, _ := lookup(distinct[:limit]...); code != 200 {
		t.Fatalf("a lookup of %d services (the cap) answered %d; want 200", limit, code)
	}
	r := do(s, "POST", "/api/discovery/lookup.json", `{"discoveryConfigs":[`+strings.Repeat(`{"serviceId":"x"},`, limit)+`{"serviceId":"x"}]}`)
	if code, ec := answer(t, r); code != 413 || ec != "bad-request" {
		t.Fatalf("a lookup of %d configs answered %d %s; want 413 bad-request", limit+1, code, ec)
	}
}

// leases.json, like lookup.json, answers each service once and refuses more
// than MaxLookupServices ids.
func TestLeasesBounded(t *testing.T) {
	const limit = 20
	s := newTestServer(t, Config{MaxLookupServices: limit})
	do(s, "POST", "/api/registry/register.json", `{"instances":[`+instA+`]}`)
	ids := `"order-service"` + strings.Repeat(`,"ORDER-SERVICE"`, limit-1)
	r := do(s, "POST", "/api/status/leases.json", `{"serviceIds":[`+ids+`]}`)
	var resp struct{ Leases map[string][]any }
	if err := stdjson.Unmarshal([]byte(r.body), &resp); err != nil || r.code != 200 || len(resp.Leases) != 1 {
		t.Fatalf("leases of one service named %d times answered %d %.300s; want one service", limit, r.code, r.body)
	}
	r = do(s, "POST", "/api/status/leases.json", `{"serviceIds":[`+ids+`,"x"]}`)
	if code, ec := answer(t, r); code != 413 || ec != "bad-request" {
		t.Fatalf("leases of %d ids answered %d %s; want 413 bad-request", limit+1, code, ec)
	}
}

// After one large message each, idle sessions hold about what they held
// before it: the message buffer is not kept for the session's life.
func TestIdleSessionsDropLargeBuffers(t *testing.T) {
	eachLibrary(t, Config{}, func(t *testing.T, s *Server, base string) {
		const sessions, size = 20, 2 << 20
		httpDo(t, "POST", base+"/api/registry/register.json", `{"instances":[`+inst("svc", "known")+`]}`)
		msg := `{"instances":[` + inst("svc", "known") + `]` + strings.Repeat(" ", size) + `}`
		heap := func() uint64 {
			runtime.GC()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return ms.HeapAlloc
		}
		conns := make([]*websocket.Conn, sessions)
		for i := range conns {
			conns[i] = dial(t, base, "/ws/registry/heartbeat")
		}
		before := heap()
		for _, c := range conns {
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, answer, err := c.ReadMessage(); err != nil || !strings.Contains(string(answer), `"success"`) {
				t.Fatalf("heartbeat answered %q, %v", answer, err)
			}
			// A small message after it must not bring the large buffer back,
			// nor a ping last (the Java SDK pings every second).
			c.WriteMessage(websocket.TextMessage, []byte(`{"instances":[`+inst("svc", "known")+`]}`))
			if _, answer, err := c.ReadMessage(); err != nil || !strings.Contains(string(answer), `"success"`) {
				t.Fatalf("heartbeat answered %q, %v", answer, err)
			}
			c.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second))
		}
		time.Sleep(100 * time.Millisecond) // the pings read
		after := heap()
		perSession := (int64(after) - int64(before)) / sessions
		if perSession > 256<<10 {
			t.Fatalf("each idle session holds %d KiB more after one %d KiB message; want the message buffer dropped (< 256 KiB)",
				perSession>>10, size>>10)
		}
		t.Logf("%d KiB more per idle session after one %d KiB message", perSession>>10, size>>10)
	})
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address local (127.0.0.0/8 is all loopback on Linux).
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func errorCodeOf(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got statusOnly
	if err := stdjson.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("%s: answer is not JSON: %v", url, err)
	}
	return got.ResponseStatus.ErrorCode
}

// A client flooding the status reads spends its own share of their limit:
// node.json (never limited), the cluster endpoints (their own limiter) and
// other clients' status reads still answer success.
func TestStatusLimitsApart(t *testing.T) {
	limits := DefaultRateLimits
	limits.Status = Limit{Rate: 1, Burst: 40}
	limits.Cluster = Limit{Rate: 1, Burst: 40}
	limits.ClientShare = 0.25 // 10 requests of burst per client
	_, base := startLoopback(t, Config{RateLimits: &limits})
	flooder, other := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	limited := 0
	for range 30 {
		if errorCodeOf(t, flooder, base+"/api/status/config.json") == "rate-limited" {
			limited++
		}
	}
	if limited < 14 || limited > 20 { // a share of 10, plus a refill of 0.25/s however slow the machine
		t.Fatalf("the flooding client was refused %d of 30 config.json reads; want 14-20 (its share is 10)", limited)
	}
	for _, path := range []string{"/api/status/node.json", "/api/cluster/up-registry-nodes.json", "/api/cluster/up-discovery-nodes.json", "/api/status/cluster.json"} {
		if ec := errorCodeOf(t, flooder, base+path); ec != "success" {
			t.Fatalf("%s answered %s to the client that flooded config.json; want success", path, ec)
		}
	}
	if ec := errorCodeOf(t, other, base+"/api/status/config.json"); ec != "success" {
		t.Fatalf("another client's config.json answered %s; want success", ec)
	}
	for range 100 {
		if ec := errorCodeOf(t, flooder, base+"/api/status/node.json"); ec != "success" {
			t.Fatalf("node.json answered %s under a flood; want success (never limited)", ec)
		}
	}
}

// The change log is bounded in bytes: after re-registrations with large
// metadata, a delta from before them answers "reload everything" instead
// of an answer the size of every change, and the metric shows the bound.
func TestChangeLogBytesBoundDeltas(t *testing.T) {
	const bound = 1 << 20
	reg, err := core.New(core.Config{Region: "SHA", ChangeLogBytes: bound})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	s := New(reg, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(s.closeBackground)
	start := reg.Version()
	meta := `{"k":"` + strings.Repeat("\\u0001", 1000) + `"}` // escaped: the record grows
	for i := range 300 {
		body := `{"instances":[{"regionId":"sha","serviceId":"svc","instanceId":"i","url":"http://x","metadata":` +
			strings.Replace(meta, `"k"`, `"k`+strconv.Itoa(i)+`"`, 1) + `}]}`
		if code, ec := answer(t, do(s, "POST", "/api/registry/register.json", body)); code != 200 || ec != "success" {
			t.Fatalf("register %d answered %d %s", i, code, ec)
		}
	}
	if st := reg.Stats().ChangeLog; st.Bytes > bound || st.Entries >= 300 {
		t.Fatalf("the change log holds %d changes, %d bytes; want at most %d bytes", st.Entries, st.Bytes, bound)
	}
	r := do(s, "GET", "/api/discovery/services-delta.json?version="+strconv.FormatInt(start, 10), "")
	if code, ec := answer(t, r); code != 200 || ec != "data-not-found" || !strings.Contains(r.body, "fetch services.json") {
		t.Fatalf("a delta from before the retained log answered %d %s %.200s; want the reload answer", code, ec, r.body)
	}
	if len(r.body) > 1024 {
		t.Fatalf("the reload answer is %d bytes", len(r.body))
	}
	if out := scrape(t, s); !strings.Contains(out, "artemis_changelog_bytes ") {
		t.Fatal("metrics lack artemis_changelog_bytes")
	}
}

// A subscriber that reads as fast as it can is never disconnected by a
// burst of changes, however far the burst outruns it: it is sent reloads,
// and strikes only count overflows with nothing written between them.
func TestBurstDoesNotDisconnectAReader(t *testing.T) {
	const queue = 8
	s := newTestServer(t, Config{Push: PushConfig{SendQueue: queue, Library: LibraryGorilla}})
	tr := &fakeTransport{}
	ss := s.hub.newSession(wsInstanceChange, tr)
	s.hub.add(ss)
	s.hub.subscribe(ss, "svc")
	for round := range 5 { // five bursts of 500 new instances each
		insts := make([]*core.Instance, 500)
		for i := range insts {
			id := "i" + strconv.Itoa(round*1000+i)
			insts[i] = &core.Instance{RegionID: "SHA", ServiceID: "svc", InstanceID: id, URL: "http://" + id}
		}
		if failed := s.reg.Register(insts, nil); len(failed) > 0 {
			t.Fatalf("cannot register: %+v", failed)
		}
		want := s.reg.Version()
		waitFor(t, func() bool { return s.hub.version() == want }, "the hub through the burst")
	}
	if tr.isClosed() || s.hub.kicked.Load() != 0 {
		t.Fatalf("a reading subscriber was disconnected by bursts (kicked %d)", s.hub.kicked.Load())
	}
	waitFor(t, func() bool {
		g := tr.got()
		return len(g) > 0 && strings.Contains(g[len(g)-1], `"serviceId":"svc"`)
	}, "the subscriber's last frame")
}

// deployment.json reports the advertised node URL's host and port (a
// listen address such as ":8080" names no host).
func TestNodeAddr(t *testing.T) {
	f := func(url, host string, port int) {
		t.Helper()
		if h, p := nodeAddr(url); h != host || p != port {
			t.Fatalf("unexpected nodeAddr(%q) %q, %d; want %q, %d", url, h, p, host, port)
		}
	}
	f("http://10.1.1.1:8080", "10.1.1.1", 8080)
	f("https://artemis.example.com", "artemis.example.com", 443)
	f("http://[::1]:9090/", "::1", 9090)
	f("http://node-1", "node-1", 80)
}

// Status answers whose responseStatus does not lead the body are counted
// by their in-band result too.
func TestMetricsClassifyTrailingStatus(t *testing.T) {
	s := newTestServer(t, Config{})
	do(s, "GET", "/api/cluster/up-registry-nodes.json?regionId=elsewhere", "")
	do(s, "GET", "/api/cluster/up-registry-nodes.json", "")
	out := scrape(t, s)
	for _, want := range []string{
		`artemis_http_requests_total{endpoint="/api/cluster/up-registry-nodes.json",result="fail"} 1`,
		`artemis_http_requests_total{endpoint="/api/cluster/up-registry-nodes.json",result="success"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Fatalf("metrics lack %s", want)
		}
	}
}

// One client (IP) may hold at most ClientShare of the node's subscription
// budget: a client that spends its share cannot take another's.
func TestSubscriptionClientShare(t *testing.T) {
	const per = 100 + subscriptionOverhead
	s := newTestServer(t, Config{Push: PushConfig{MaxSubscriptionBytes: 8 * per, ClientShare: 0.25}}) // 2 each
	hog, victim := &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}
	if s.hub.clientCell(hog) == s.hub.clientCell(victim) {
		t.Skip("the two addresses share a cell under this seed") // 1 in 256
	}
	open := func(addr net.Addr) (*session, *fakeTransport) {
		tr := &fakeTransport{}
		ss := s.hub.newSession(wsInstanceChange, tr)
		ss.cell = s.hub.clientCell(addr)
		s.hub.add(ss)
		return ss, tr
	}
	id := func(i int) string { return fmt.Sprintf("%0100d", i) }
	h1, _ := open(hog)
	h2, _ := open(hog)
	if why := s.hub.subscribe(h1, id(1)); why != "" {
		t.Fatal(why)
	}
	if why := s.hub.subscribe(h2, id(2)); why != "" {
		t.Fatal(why)
	}
	if why := s.hub.subscribe(h2, id(3)); why != refuseClient {
		t.Fatalf("a client's third subscription (over its share of 2) answered %q; want %q", why, refuseClient)
	}
	v, _ := open(victim)
	if why := s.hub.subscribe(v, id(4)); why != "" {
		t.Fatalf("another client was refused after the first spent its share: %q", why)
	}
	s.hub.remove(h1)
	if why := s.hub.subscribe(h2, id(3)); why != "" {
		t.Fatalf("a closed session did not give its client's share back: %q", why)
	}
}

// Hertz's own log lines (one per aborted request) go through a budget: a
// burst, then about errLogRate a second, with a count of those dropped.
func TestHertzLogThrottled(t *testing.T) {
	var out bytes.Buffer
	w := newThrottledWriter(&out)
	for range 1000 {
		w.Write([]byte("[Error] HERTZ: Error=unexpected EOF when reading request\n"))
	}
	lines := strings.Count(out.String(), "unexpected EOF")
	if lines < errLogBurst || lines > errLogBurst+errLogRate {
		t.Fatalf("%d of 1000 lines written; want about %d", lines, errLogBurst)
	}
	if w.suppressed.Load() != int64(1000-lines) {
		t.Fatalf("suppressed %d; want %d", w.suppressed.Load(), 1000-lines)
	}
}
