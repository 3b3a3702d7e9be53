package server

import (
	"bufio"
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/common/ut"

	"github.com/artemis-go/artemis/core"
)

// discoveryRequests are the reads whose answers must not depend on the
// answer cache: every form of service.json and lookup.json, a service named
// in another case, gzip negotiation, unknown and blank services.
var discoveryRequests = []struct {
	method, path, body string
	headers            []ut.Header
}{
	{"GET", "/api/discovery/service.json?serviceId=svc", "", nil},
	{"GET", "/api/discovery/service.json?serviceid=SVC", "", nil},
	{"GET", "/api/discovery/service.json?serviceId=svc", "", []ut.Header{{Key: "Accept-Encoding", Value: "gzip, deflate"}}},
	{"POST", "/api/discovery/service.json", `{"discoveryConfig":{"serviceId":"Svc"},"regionId":"sha"}`, nil},
	{"POST", "/api/discovery/service.json", `{"discoveryConfig":{"serviceId":"svc"}}`, []ut.Header{{Key: "Accept-Encoding", Value: "gzip"}}},
	{"GET", "/api/discovery/service.json?serviceId=nobody", "", nil},
	{"GET", "/api/discovery/service.json?serviceId=", "", nil},
	{"POST", "/api/discovery/lookup.json", `{"discoveryConfigs":[{"serviceId":"svc"}]}`, nil},
	{"POST", "/api/discovery/lookup.json", `{"discoveryConfigs":[{"serviceId":"svc"},{"serviceId":"SVC"}]}`, []ut.Header{{Key: "Accept-Encoding", Value: "gzip"}}},
	{"POST", "/api/discovery/lookup.json", `{"discoveryConfigs":[{"serviceId":"svc"},{"serviceId":"other"},{"serviceId":"nobody"}]}`, nil},
	{"POST", "/api/discovery/lookup.json", `{"discoveryConfigs":[{"serviceId":"nobody"}]}`, nil},
	{"GET", "/api/discovery/services.json", "", nil},
}

// rawAnswer is a response as the handler left it: status, every header, body.
func rawAnswer(s *Server, method, path, body string, headers ...ut.Header) string {
	var b *ut.Body
	if body != "" {
		b = &ut.Body{Body: strings.NewReader(body), Len: len(body)}
	}
	r := ut.PerformRequest(s.Engine(), method, path, b, headers...).Result()
	return string(r.Header.Header()) + string(r.Body())
}

// TestAnswerCacheSameAnswers: a node with the answer cache answers every
// discovery read with the bytes (status, headers, body) a node without it
// does: served twice (a miss, then a hit), after its service changes, after
// a management pull-out rebuilds its snapshot, and once it is gone.
func TestAnswerCacheSameAnswers(t *testing.T) {
	cached := newTestServer(t, Config{AdminToken: adminToken})
	copied := newTestServer(t, Config{AdminToken: adminToken, ResponseCacheBytes: -1})
	if cached.answers == nil || copied.answers != nil {
		t.Fatalf("unexpected caches: %v, %v", cached.answers, copied.answers)
	}
	both := func(method, path, body string, headers ...ut.Header) {
		t.Helper()
		for _, s := range []*Server{cached, copied} {
			if r := do(s, method, path, body, headers...); r.code != 200 || inBandFailure([]byte(r.body)) != "" {
				t.Fatalf("%s %s answered %d %s", method, path, r.code, r.body)
			}
		}
	}
	compare := func(stage string) {
		t.Helper()
		for range 2 {
			for _, rq := range discoveryRequests {
				want := rawAnswer(copied, rq.method, rq.path, rq.body, rq.headers...)
				if got := rawAnswer(cached, rq.method, rq.path, rq.body, rq.headers...); got != want {
					t.Fatalf("%s: %s %s %s: unexpected cached answer\n got %q\nwant %q", stage, rq.method, rq.path, rq.body, got, want)
				}
			}
		}
	}
	register := func(ids ...string) {
		t.Helper()
		parts := make([]string, len(ids))
		for i, id := range ids {
			parts[i] = inst("svc", id)
		}
		both("POST", "/api/registry/register.json", `{"instances":[`+strings.Join(parts, ",")+`,`+inst("other", "o1")+`]}`)
	}

	register("a1", "a2")
	compare("registered")
	hits := cached.answers.hits.Load()
	if hits == 0 {
		t.Fatalf("the second round of reads hit nothing: the comparison proves nothing")
	}
	register("a3")
	compare("an instance added")
	if cached.answers.stale.Load() == 0 {
		t.Fatal("no entry was replaced after the service changed")
	}
	both("POST", "/api/management/operate-instance.json", strings.Replace(pullOutA1, "%s", "false", 1), bearer)
	compare("a1 pulled out")
	if body := rawAnswer(cached, "GET", "/api/discovery/service.json?serviceId=svc", ""); strings.Contains(body, `"a1"`) {
		t.Fatalf("a pulled-out instance is still served: %s", body)
	}
	both("POST", "/api/registry/unregister.json", `{"instances":[`+inst("svc", "a1")+`,`+inst("svc", "a2")+`,`+inst("svc", "a3")+`]}`)
	compare("svc unregistered")
}

// TestAnswerCacheOnTheWire compares whole HTTP responses, as read from the
// socket (the Date header aside), of a node with the cache and one without:
// Content-Length, Content-Type and body come out of netpoll the same.
func TestAnswerCacheOnTheWire(t *testing.T) {
	cached, cachedBase := startLoopback(t, Config{})
	_, copiedBase := startLoopback(t, Config{ResponseCacheBytes: -1})
	var sb strings.Builder
	for i := range 40 { // about 4 KiB and more: netpoll links the body rather than copying it
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(inst("svc", "instance-"+strconv.Itoa(i)))
	}
	for _, base := range []string{cachedBase, copiedBase} {
		httpDo(t, "POST", base+"/api/registry/register.json", `{"instances":[`+sb.String()+`]}`)
	}
	wire := func(base, request string) string {
		t.Helper()
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, request); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		resp.Header.Del("Date")
		var out bytes.Buffer
		resp.Write(&out)
		return out.String()
	}
	get := "GET /api/discovery/service.json?serviceId=svc HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
	lookup := `{"discoveryConfigs":[{"serviceId":"SVC"}]}`
	post := "POST /api/discovery/lookup.json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(lookup)) + "\r\n\r\n" + lookup
	for round := range 3 {
		for _, rq := range []string{get, post} {
			want := wire(copiedBase, rq)
			if got := wire(cachedBase, rq); got != want {
				t.Fatalf("round %d: unexpected cached answer on the wire\n got %q\nwant %q", round, got, want)
			}
			if !strings.Contains(want, "Content-Length: ") || strings.Contains(want, "Content-Encoding") {
				t.Fatalf("unexpected framing %.300q", want)
			}
		}
		if round == 1 {
			for _, base := range []string{cachedBase, copiedBase} {
				httpDo(t, "POST", base+"/api/registry/unregister.json", `{"instances":[`+inst("svc", "instance-7")+`]}`)
			}
		}
	}
	if st := cached.answers.stats(); st.Hits == 0 || st.Entries != 2 {
		t.Fatalf("unexpected cache use %+v; want hits and two entries", st)
	}
}

// TestAnswerCacheConcurrentChanges reads a service from many goroutines
// while it changes (run it with -race): every answer is the whole service as
// some snapshot had it, and once the changes stop the cached answer is the
// uncached one.
func TestAnswerCacheConcurrentChanges(t *testing.T) {
	s := newTestServer(t, Config{RateLimits: &RateLimits{}})
	do(s, "POST", "/api/registry/register.json", `{"instances":[`+inst("svc", "i0")+`]}`)
	const writes = 200
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 4 {
		wg.Go(func() {
			for n := 0; n < 100 || !done.Load(); n++ {
				r := do(s, "GET", "/api/discovery/service.json?serviceId=svc", "")
				var got struct {
					Service struct {
						ServiceID string
						Instances []struct{ InstanceID string }
					}
				}
				if err := stdjson.Unmarshal([]byte(r.body), &got); err != nil || got.Service.ServiceID != "svc" {
					errs <- fmt.Sprintf("unexpected answer %v: %.200s", err, r.body)
					return
				}
				// Instances are registered in order and sorted by id: a
				// snapshot lists i0..i(n-1) for some n.
				seen := map[string]bool{}
				for _, in := range got.Service.Instances {
					seen[in.InstanceID] = true
				}
				for i := range len(got.Service.Instances) {
					if !seen["i"+strconv.Itoa(i)] {
						errs <- fmt.Sprintf("answer of no snapshot: %.300s", r.body)
						return
					}
				}
			}
		})
	}
	for i := 1; i <= writes; i++ {
		do(s, "POST", "/api/registry/register.json", `{"instances":[`+inst("svc", "i"+strconv.Itoa(i))+`]}`)
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if s.answers.hits.Load() == 0 {
		t.Fatal("no read hit the cache")
	}
	want := string(appendAnswer(nil, answerService, s.reg.Service("svc")))
	for range 2 {
		if r := do(s, "GET", "/api/discovery/service.json?serviceId=svc", ""); r.body != want {
			t.Fatalf("unexpected answer once the changes stopped\n got %.300s\nwant %.300s", r.body, want)
		}
	}
	if st := s.answers.stats(); st.Entries != 1 || st.Bytes != int64(len(want)+answerEntryOverhead+len("svc")) {
		t.Fatalf("unexpected cache %+v after the changes; want one entry of %d bytes", st, len(want))
	}
}

// answerRegistry returns a registry with services svc-00..svc-(n-1) of
// per instances each, and their snapshots.
func answerRegistry(t testing.TB, n, per int) (*core.Registry, []*core.Snapshot) {
	t.Helper()
	reg, err := core.New(core.Config{Region: "SHA", Zone: "sha-a", Now: func() time.Time { return testClock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	snaps := make([]*core.Snapshot, n)
	for sv := range n {
		id := fmt.Sprintf("svc-%02d", sv) // every answer of the same size
		var ins []*core.Instance
		for i := range per {
			ip := fmt.Sprintf("10.0.%d.%d", i/256, i%256)
			ins = append(ins, &core.Instance{RegionID: "SHA", ZoneID: "sha-a", ServiceID: id, InstanceID: fmt.Sprintf("i%04d", i), IP: ip, Port: 8080,
				URL: "http://" + ip + ":8080/api", HealthCheckURL: "http://" + ip + ":8080/health", Status: "up",
				Metadata: map[string]string{"version": "1.4.2", "env": "prod", "hostname": "host-" + ip}})
		}
		if failed := reg.Register(ins, nil); len(failed) > 0 {
			t.Fatal(failed)
		}
		snaps[sv] = reg.Service(id)
	}
	return reg, snaps
}

// TestAnswerCacheLimit fills a cache past its limit: it never holds more
// than the limit, serves the right bytes, refuses answers over an eighth of
// it, and replaces live entries for at most an eighth of the limit per
// second.
func TestAnswerCacheLimit(t *testing.T) {
	_, snaps := answerRegistry(t, 40, 3)
	entry := int64(answerSize(answerService, snaps[0]) + answerEntryOverhead + len("svc-00"))
	limit := 16 * entry // 16 entries; the budget is 2 entries a second
	now := testClock
	c := newAnswerCache(limit, func() time.Time { return now })
	check := func(i int, wantCached bool) {
		t.Helper()
		body := c.answer(answerService, snaps[i])
		if (body != nil) != wantCached {
			t.Fatalf("svc-%d: cached %v; want %v (%+v)", i, body != nil, wantCached, c.stats())
		}
		if want := appendAnswer(nil, answerService, snaps[i]); body != nil && !bytes.Equal(body, want) {
			t.Fatalf("svc-%d: unexpected body %q; want %q", i, body, want)
		}
		if st := c.stats(); st.Bytes > limit || int64(len(c.ring)) != st.Entries {
			t.Fatalf("unexpected cache %+v over a limit of %d (ring %d)", st, limit, len(c.ring))
		}
	}
	for i := range 16 {
		check(i, true)
	}
	for range 3 { // hits: svc-0..15 now each read 3 more times
		for i := range 16 {
			check(i, true)
		}
	}
	if st := c.stats(); st.Entries != 16 || st.Bytes != limit || st.Hits != 48 || st.Misses != 16 || st.Evicted != 0 {
		t.Fatalf("unexpected full cache %+v", st)
	}
	check(16, true) // the budget: two entries a second
	check(17, true)
	check(18, false)
	check(19, false)
	if st := c.stats(); st.Evicted != 2 || st.Refused != 2 || st.Entries != 16 {
		t.Fatalf("unexpected cache %+v after the budget was spent", st)
	}
	now = now.Add(500 * time.Millisecond)
	check(18, true)
	check(19, false)
	now = now.Add(2 * time.Second)
	check(19, true)
	check(20, true)
	check(21, false)
	if st := c.stats(); st.Entries != 16 || st.Bytes != limit {
		t.Fatalf("unexpected cache %+v at the limit", st)
	}

	small := newAnswerCache(8*entry-1, func() time.Time { return now }) // an answer is over an eighth of it
	if body := small.answer(answerService, snaps[0]); body != nil || small.stats().Refused != 1 || small.stats().Bytes != 0 {
		t.Fatalf("an answer over an eighth of the limit was cached: %+v", small.stats())
	}
	var off *answerCache
	if off.answer(answerService, snaps[0]) != nil || off.stats() != (answerCacheStats{}) {
		t.Fatal("a nil cache cached something")
	}
}

// TestAnswerCacheDropsStale: an entry whose snapshot is gone (its service
// changed and was not read since) leaves at the next miss, and a service's
// entry is replaced when its snapshot changes.
func TestAnswerCacheDropsStale(t *testing.T) {
	reg, snaps := answerRegistry(t, 2, 2)
	c := newAnswerCache(64<<20, time.Now)
	c.answer(answerService, snaps[0])
	c.answer(answerLookup, snaps[0])
	if st := c.stats(); st.Entries != 2 {
		t.Fatalf("unexpected cache %+v", st)
	}
	reg.Register([]*core.Instance{{RegionID: "SHA", ServiceID: "svc-00", InstanceID: "new", URL: "http://x"}}, nil)
	fresh := reg.Service("svc-00")
	if fresh == snaps[0] {
		t.Fatal("a register did not make a new snapshot")
	}
	body := c.answer(answerService, fresh)
	if want := appendAnswer(nil, answerService, fresh); !bytes.Equal(body, want) {
		t.Fatalf("unexpected answer after the change %q; want %q", body, want)
	}
	if st := c.stats(); st.Entries != 2 || st.Stale != 1 {
		t.Fatalf("unexpected cache %+v after svc-00 changed; want its service answer replaced", st)
	}
	// The lookup entry still refers to the old snapshot: once it is
	// collected, misses drop the entry.
	snaps[0] = nil
	for range 10 {
		runtime.GC()
		if v, _ := c.index.Load(answerKey{"svc-00", answerLookup}); v.(*answerEntry).snap.Value() == nil {
			break
		}
	}
	for range 20 { // each miss samples two entries of the ring
		c.answer(answerService, snaps[1])
		c.answer(answerLookup, snaps[1])
		if _, ok := c.index.Load(answerKey{"svc-00", answerLookup}); !ok {
			return
		}
		dropEntriesOf(c, "svc-01")
	}
	t.Fatalf("an entry of a collected snapshot stayed: %+v", c.stats())
}

// dropEntriesOf removes the entries of service id, so its next reads miss.
func dropEntriesOf(c *answerCache, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for kind := range numAnswerKinds {
		if v, ok := c.index.Load(answerKey{id, uint8(kind)}); ok {
			c.removeLocked(v.(*answerEntry))
		}
	}
}

// TestDefaultResponseCacheBytes: 64 MiB, or a sixteenth of the memory limit.
func TestDefaultResponseCacheBytes(t *testing.T) {
	old := debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetMemoryLimit(old)
	if got := DefaultResponseCacheBytes(); got != 64<<20 {
		t.Fatalf("unexpected default without a memory limit %d", got)
	}
	debug.SetMemoryLimit(512 << 20)
	if got := DefaultResponseCacheBytes(); got != 32<<20 {
		t.Fatalf("unexpected default under a 512 MiB memory limit %d; want 32 MiB", got)
	}
	if got := newTestServer(t, Config{}).answers.limit; got != 32<<20 {
		t.Fatalf("unexpected limit of a server's cache %d; want 32 MiB", got)
	}
}

// BenchmarkAnswerCache: the cost of a service.json body with the cache
// (a hit hands out the cached bytes) against copying it (a reused buffer,
// as the pooled response buffer is), for one service read again and again
// and for a scan over 1,000 services with a cache that holds a tenth of
// them (most reads are refused and copied; the budget bounds the turnover).
func BenchmarkAnswerCache(b *testing.B) {
	_, snaps := answerRegistry(b, 1000, 100)
	entry := int64(answerSize(answerService, snaps[0]) + answerEntryOverhead + len("svc-000"))
	read := func(b *testing.B, c *answerCache, scan bool) {
		var next atomic.Uint64
		b.SetBytes(int64(answerSize(answerService, snaps[0])))
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var buf []byte
			for pb.Next() {
				snap := snaps[0]
				if scan {
					snap = snaps[next.Add(1)%uint64(len(snaps))]
				}
				if body := c.answer(answerService, snap); body == nil {
					buf = appendAnswer(buf[:0], answerService, snap)
				}
			}
		})
	}
	b.Run("read=one/cache=off", func(b *testing.B) { read(b, nil, false) })
	b.Run("read=one/cache=on", func(b *testing.B) { read(b, newAnswerCache(64<<20, time.Now), false) })
	b.Run("read=scan/cache=off", func(b *testing.B) { read(b, nil, true) })
	b.Run("read=scan/cache=tenth", func(b *testing.B) { read(b, newAnswerCache(100*entry, time.Now), true) })
}
