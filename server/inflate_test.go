package server

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	stdjson "encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/common/ut"
	"github.com/prometheus/common/expfmt"
)

var gzipHeader = ut.Header{Key: "Content-Encoding", Value: "gzip"}

// registerBody is a register request of instA padded with spaces to n bytes.
func registerBody(t *testing.T, n int) string {
	t.Helper()
	b := `{"instances":[` + instA + `]}`
	if n < len(b) {
		t.Fatalf("cannot pad %d bytes to %d", len(b), n)
	}
	return b[:len(b)-1] + strings.Repeat(" ", n-len(b)) + "}"
}

func answer(t *testing.T, r response) (int, string) {
	t.Helper()
	var got statusOnly
	if err := stdjson.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatalf("answer is not JSON: %v: %q", err, r.body)
	}
	return r.code, got.ResponseStatus.ErrorCode
}

// A gzip body may inflate to exactly MaxInflatedBytes; one byte more is 413.
// Bodies whose trailer lies about their size, and bodies of several gzip
// members, still inflate whole and are still capped.
func TestInflateLimits(t *testing.T) {
	const limit = 64 << 10
	s := newTestServer(t, Config{MaxBodyBytes: limit, MaxInflatedBytes: limit})
	post := func(body string) (int, string) {
		return answer(t, do(s, "POST", "/api/registry/register.json", body, gzipHeader))
	}
	lying := func(body string, size uint32) string {
		b := []byte(gzipped(body))
		binary.LittleEndian.PutUint32(b[len(b)-4:], size)
		return string(b)
	}
	members := func(parts ...string) string {
		var out string
		for _, p := range parts {
			out += gzipped(p)
		}
		return out
	}
	at := registerBody(t, limit)
	over := registerBody(t, limit+1)
	for _, tc := range []struct {
		name    string
		body    string
		code    int
		errCode string
	}{
		{"exactly the limit", gzipped(at), 200, "success"},
		{"one byte over", gzipped(over), 413, "bad-request"},
		{"a trailer that lies is corrupt", lying(at, 10), 400, "bad-request"},
		{"a trailer over the limit that lies", lying(registerBody(t, 300), 1<<31), 400, "bad-request"},
		// The last member's trailer is all the hint says: the buffer grows.
		{"two members", members(at[:limit-100], at[limit-100:]), 200, "success"},
		{"many small members", members(strings.SplitAfter(at, " ")[:1000]...) + gzipped(strings.Join(strings.SplitAfter(at, " ")[1000:], "")), 200, "success"},
		{"two members over the limit", members(over[:limit-100], over[limit-100:]), 413, "bad-request"},
	} {
		if code, ec := post(tc.body); code != tc.code || ec != tc.errCode {
			t.Errorf("%s: answered %d %s; want %d %s", tc.name, code, ec, tc.code, tc.errCode)
		}
	}
	if n := s.inflating.inUse.Load(); n != 0 {
		t.Fatalf("%d bytes of the inflating budget still reserved after every request ended", n)
	}
}

// While the node's inflating budget is spent, a gzip body waits briefly and
// is answered 503 service-unavailable; plain bodies are not affected, and
// once the budget is given back gzip bodies are served again.
func TestInflateBudget(t *testing.T) {
	const limit = 64 << 10
	s := newTestServer(t, Config{MaxInflatedBytes: limit, MaxInflatingBytes: 1}) // raised to 2*(limit+1)
	if got, want := s.cfg.MaxInflatingBytes, 2*(limit+1); got != want {
		t.Fatalf("unexpected MaxInflatingBytes %d; want %d (twice the body cap, plus one each)", got, want)
	}
	body := `{"instances":[` + instA + `]}`
	if !s.inflating.reserve(s.cfg.MaxInflatingBytes, time.Now()) {
		t.Fatal("cannot take the whole budget")
	}
	if code, ec := answer(t, do(s, "POST", "/api/registry/register.json", gzipped(body), gzipHeader)); code != 503 || ec != "service-unavailable" {
		t.Fatalf("gzip body with the budget spent answered %d %s; want 503 service-unavailable", code, ec)
	}
	if code, ec := answer(t, do(s, "POST", "/api/registry/register.json", body)); code != 200 || ec != "success" {
		t.Fatalf("plain body with the budget spent answered %d %s; want 200 success", code, ec)
	}
	if n := s.inflating.refused.Load(); n != 1 {
		t.Fatalf("unexpected refused count %d; want 1", n)
	}
	s.inflating.give(s.cfg.MaxInflatingBytes)
	if code, ec := answer(t, do(s, "POST", "/api/registry/register.json", gzipped(body), gzipHeader)); code != 200 || ec != "success" {
		t.Fatalf("gzip body after the budget came back answered %d %s; want 200 success", code, ec)
	}
	// The metrics show the budget.
	out := scrape(t, s)
	for _, want := range []string{"artemis_inflating_bytes 0", "artemis_inflate_refused_total 1"} {
		if !strings.Contains(out, want+"\n") {
			t.Fatalf("metrics lack %q", want)
		}
	}
}

func TestInflateHint(t *testing.T) {
	f := func(raw []byte, limit, want int) {
		t.Helper()
		if got := inflateHint(raw, limit); got != want {
			t.Fatalf("unexpected inflateHint over %d bytes; got %d; want %d", len(raw), got, want)
		}
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(bytes.Repeat([]byte("a"), 10_000))
	zw.Close()
	f(b.Bytes(), 1<<20, 10_001)       // the trailer's size, plus one
	f(b.Bytes(), 4096, 4097)          // at most the cap plus one
	f([]byte("\x1f\x8b"), 1<<20, 512) // too short for a trailer
	f(make([]byte, 18), 1<<20, 512)   // a trailer of 0: the least reserve
	f(append(make([]byte, 1100), 255, 255, 255, 255), 1<<20, 1<<20+1)
	// A tiny body whose trailer claims 32 MiB reserves what 26 bytes can
	// inflate to at most, not 32 MiB.
	tiny := append(make([]byte, 22), 0, 0, 0, 2)
	f(tiny, 32<<20+1, maxDeflateRatio*26+1)
}

// scrape gathers s's metrics in the Prometheus text format.
func scrape(t *testing.T, s *Server) string {
	t.Helper()
	mfs, err := s.metrics.reg.Gather()
	if err != nil {
		t.Fatalf("cannot gather metrics: %v", err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
