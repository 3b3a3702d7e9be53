package console

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/common/config"
	"github.com/cloudwego/hertz/pkg/common/hlog"
	"github.com/cloudwego/hertz/pkg/common/ut"
	"github.com/cloudwego/hertz/pkg/route"
	"github.com/google/go-cmp/cmp"

	"github.com/artemis-go/artemis/core"
)

func newEngine(t *testing.T, opts Options) *route.Engine {
	t.Helper()
	e := route.NewEngine(config.NewOptions(nil))
	Register(e, opts)
	return e
}

type answer struct {
	code   int
	body   []byte
	header func(string) string
}

func get(e *route.Engine, path string, headers ...ut.Header) answer {
	w := ut.PerformRequest(e, "GET", path, nil, append([]ut.Header{{Key: "Host", Value: "127.0.0.1:8080"}}, headers...)...)
	r := w.Result()
	return answer{code: r.StatusCode(), body: append([]byte(nil), r.Body()...), header: func(k string) string { return string(r.Header.Peek(k)) }}
}

// hashedLinks returns the names index.html links: app.<hash>.js and so on.
func hashedLinks(t *testing.T, index []byte) map[string]string {
	t.Helper()
	links := map[string]string{}
	for _, m := range regexp.MustCompile(`"((app|icon)\.[0-9a-f]{12}\.(js|css|svg))"`).FindAllSubmatch(index, -1) {
		links[string(m[3])] = string(m[1])
	}
	if len(links) != 3 {
		t.Fatalf("unexpected links in index.html; got %v; want a hashed js, css and svg", links)
	}
	return links
}

func checkSecurityHeaders(t *testing.T, path string, a answer) {
	t.Helper()
	csp := a.header("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'",
		"connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: unexpected Content-Security-Policy %q; want it to contain %q", path, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("%s: unexpected unsafe source in Content-Security-Policy %q", path, csp)
	}
	if got := a.header("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: unexpected X-Content-Type-Options %q; want nosniff", path, got)
	}
}

func TestAssets(t *testing.T) {
	e := newEngine(t, Options{})
	index := get(e, "/console/")
	if index.code != 200 {
		t.Fatalf("unexpected status of /console/ %d; want 200", index.code)
	}
	links := hashedLinks(t, index.body)
	for _, tc := range []struct {
		path, contentType, cache string
		contains                 string
	}{
		{"/console/", "text/html; charset=utf-8", "no-cache", "<title>Artemis console</title>"},
		{"/console/index.html", "text/html; charset=utf-8", "no-cache", "<title>Artemis console</title>"},
		{"/console/" + links["js"], "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", "function servicesPage"},
		{"/console/" + links["css"], "text/css; charset=utf-8", "public, max-age=31536000, immutable", "prefers-color-scheme: dark"},
		{"/console/" + links["svg"], "image/svg+xml", "public, max-age=31536000, immutable", "<svg"},
		{"/console/app.js", "text/javascript; charset=utf-8", "no-cache", "function servicesPage"},
		{"/console/app.css", "text/css; charset=utf-8", "no-cache", "prefers-color-scheme"},
	} {
		a := get(e, tc.path)
		if a.code != 200 {
			t.Errorf("%s: unexpected status %d; want 200", tc.path, a.code)
			continue
		}
		if got := a.header("Content-Type"); got != tc.contentType {
			t.Errorf("%s: unexpected Content-Type %q; want %q", tc.path, got, tc.contentType)
		}
		if got := a.header("Cache-Control"); got != tc.cache {
			t.Errorf("%s: unexpected Cache-Control %q; want %q", tc.path, got, tc.cache)
		}
		if got := a.header("ETag"); !regexp.MustCompile(`^"[0-9a-f]{12}"$`).MatchString(got) {
			t.Errorf("%s: unexpected ETag %q", tc.path, got)
		}
		if a.header("Content-Encoding") != "" {
			t.Errorf("%s: unexpected Content-Encoding %q without Accept-Encoding", tc.path, a.header("Content-Encoding"))
		}
		if !bytes.Contains(a.body, []byte(tc.contains)) {
			t.Errorf("%s: unexpected body; want it to contain %q", tc.path, tc.contains)
		}
		checkSecurityHeaders(t, tc.path, a)

		// The same again with the ETag: 304, no body.
		again := get(e, tc.path, ut.Header{Key: "If-None-Match", Value: a.header("ETag")})
		if again.code != 304 || len(again.body) != 0 {
			t.Errorf("%s: unexpected answer to If-None-Match: %d with %d bytes; want 304 and none", tc.path, again.code, len(again.body))
		}
	}
}

// TestIndexHasNoInlineCode: the CSP forbids inline script and style, so
// the page must not depend on them.
func TestIndexHasNoInlineCode(t *testing.T) {
	index := get(newEngine(t, Options{}), "/console/").body
	for _, bad := range []string{"<style", " style=", "<script>", " onclick=", " onload=", "javascript:", "http://", "https://"} {
		if bytes.Contains(index, []byte(bad)) {
			t.Errorf("unexpected %q in index.html", bad)
		}
	}
	if !bytes.Contains(index, []byte(`<script type="module" src="app.`)) {
		t.Errorf("index.html does not load the module from this origin")
	}
	js := get(newEngine(t, Options{}), "/console/app.js").body
	for _, bad := range []string{"innerHTML", "eval(", "new Function", "setAttribute('style'", "http://", "https://"} {
		if bytes.Contains(js, []byte(bad)) {
			t.Errorf("unexpected %q in app.js", bad)
		}
	}
}

// TestFirstLoadSize: index.html, the module, the style sheet and the icon,
// as a browser fetches them (gzipped), stay well under 200 KB.
func TestFirstLoadSize(t *testing.T) {
	e := newEngine(t, Options{})
	index := get(e, "/console/", ut.Header{Key: "Accept-Encoding", Value: "gzip, deflate, br"})
	total := len(index.body)
	raw := get(e, "/console/")
	for _, name := range hashedLinks(t, raw.body) {
		a := get(e, "/console/"+name, ut.Header{Key: "Accept-Encoding", Value: "gzip, deflate, br"})
		total += len(a.body)
		if a.header("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(a.body))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if want := get(e, "/console/"+name).body; !bytes.Equal(plain, want) {
				t.Errorf("%s: gzipped body does not inflate to the plain one", name)
			}
		}
	}
	if total >= 200<<10 {
		t.Errorf("unexpected first load of %d bytes; want < 200 KB", total)
	}
	t.Logf("first load: %d bytes gzipped", total)
}

func TestRedirects(t *testing.T) {
	e := newEngine(t, Options{})
	for _, path := range []string{"/", "/console"} {
		a := get(e, path)
		if a.code != 302 || a.header("Location") != "/console/" {
			t.Errorf("%s: unexpected answer %d Location %q; want 302 to /console/", path, a.code, a.header("Location"))
		}
		checkSecurityHeaders(t, path, a)
	}
	e = newEngine(t, Options{NoRootRedirect: true})
	if a := get(e, "/"); a.code != 404 {
		t.Errorf("unexpected status of / with NoRootRedirect %d; want 404", a.code)
	}
}

func TestUnknownConsolePath(t *testing.T) {
	a := get(newEngine(t, Options{}), "/console/nope.js")
	if a.code != 404 || a.header("Cache-Control") != "no-store" {
		t.Errorf("unexpected answer %d, Cache-Control %q; want 404, no-store", a.code, a.header("Cache-Control"))
	}
	checkSecurityHeaders(t, "/console/nope.js", a)
}

func TestCSPHost(t *testing.T) {
	e := newEngine(t, Options{})
	f := func(host, want string) {
		t.Helper()
		w := ut.PerformRequest(e, "GET", "/console/", nil, ut.Header{Key: "Host", Value: host})
		csp := string(w.Result().Header.Peek("Content-Security-Policy"))
		if got := csp[strings.Index(csp, "connect-src"):]; got != want {
			t.Errorf("Host %q: unexpected connect-src %q; want %q", host, got, want)
		}
	}
	f("example.com", "connect-src 'self' ws://example.com wss://example.com")
	f("[::1]:8080", "connect-src 'self' ws://[::1]:8080 wss://[::1]:8080")
	f("evil; script-src *", "connect-src 'self'")
	f("a b", "connect-src 'self'")
}

func TestAcceptsGzip(t *testing.T) {
	f := func(header string, want bool) {
		t.Helper()
		if got := acceptsGzip([]byte(header)); got != want {
			t.Errorf("acceptsGzip(%q): unexpected %v; want %v", header, got, want)
		}
	}
	f("", false)
	f("gzip", true)
	f("deflate, gzip;q=1.0, br", true)
	f("GZIP", true)
	f("gzip;q=0", false)
	f("gzip; q=0.000", false)
	f("gzip;q=0.5", true)
	f("br", false)
}

func TestSummary(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := now
	reg, err := core.New(core.Config{Region: "r1", Zone: "z1", LeaseTTL: 20 * time.Second, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	inst := func(svc, id, status string) *core.Instance {
		return &core.Instance{RegionID: "r1", ServiceID: svc, InstanceID: id, URL: "http://" + id, Status: status}
	}
	if failed := reg.Register([]*core.Instance{
		inst("order", "o-1", "up"), inst("order", "o-2", "UP"), inst("order", "o-3", "starting"),
		inst("pay", "p-1", "up"), inst("pay", "p-2", "down"),
	}, nil); len(failed) != 0 {
		t.Fatalf("unexpected failures %v", failed)
	}
	// A management-like filter hides p-1 from discovery: it counts as pulled out.
	reg.SetFilters(core.FilterFunc(func(v *core.ServiceView) {
		out := v.Records[:0]
		for _, r := range v.Records {
			if r.InstanceID() != "p-1" {
				out = append(out, r)
			}
		}
		v.Records = out
	}))
	got := Summarize(reg)
	want := []ServiceCount{
		{ServiceID: "order", Up: 2, Down: 1},
		{ServiceID: "pay", Down: 1, PulledOut: 1},
	}
	if diff := cmp.Diff(want, got.Services); diff != "" {
		t.Errorf("unexpected services (-want +got):\n%s", diff)
	}
	if got.Region != "r1" || got.Zone != "z1" || got.Instances != 5 || got.Now != now.UnixMilli() || got.Version == 0 {
		t.Errorf("unexpected node fields %+v", got)
	}

	// Served as JSON, not cached by the browser, computed at most once per SummaryMaxAge.
	e := newEngine(t, Options{Registry: reg, SummaryMaxAge: time.Hour})
	a := get(e, "/console/api/summary.json")
	if a.code != 200 || a.header("Content-Type") != "application/json; charset=utf-8" || a.header("Cache-Control") != "no-store" {
		t.Fatalf("unexpected answer %d %q %q", a.code, a.header("Content-Type"), a.header("Cache-Control"))
	}
	checkSecurityHeaders(t, "summary.json", a)
	var decoded Summary
	if err := json.Unmarshal(a.body, &decoded); err != nil {
		t.Fatalf("cannot decode summary %s: %v", a.body, err)
	}
	if diff := cmp.Diff(want, decoded.Services); diff != "" {
		t.Errorf("unexpected served services (-want +got):\n%s", diff)
	}
	reg.Register([]*core.Instance{inst("zeta", "z-1", "up")}, nil)
	if b := get(e, "/console/api/summary.json").body; !bytes.Equal(b, a.body) {
		t.Errorf("unexpected new summary within SummaryMaxAge: %s", b)
	}
	if s := Summarize(reg); len(s.Services) != 3 {
		t.Errorf("unexpected %d services after a register; want 3", len(s.Services))
	}
}

func TestSummaryCountsExpired(t *testing.T) {
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	reg, err := core.New(core.Config{Region: "r1", LeaseTTL: 20 * time.Second, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	reg.Register([]*core.Instance{{RegionID: "r1", ServiceID: "s", InstanceID: "a", URL: "u", Status: "up"}}, nil)
	f := func(after time.Duration, want int) {
		t.Helper()
		s := summarize(reg, clock.Add(after).UnixMilli())
		if len(s.Services) != 1 || s.Services[0].Expired != want {
			t.Errorf("%v after the register: unexpected services %+v; want s with %d expired", after, s.Services, want)
		}
	}
	f(19*time.Second, 0)
	f(21*time.Second, 1) // as self-preservation would keep it
}

func TestSummaryNilRegistry(t *testing.T) {
	a := get(newEngine(t, Options{}), "/console/api/summary.json")
	var s Summary
	if err := json.Unmarshal(a.body, &s); err != nil || s.Services == nil || len(s.Services) != 0 {
		t.Errorf("unexpected summary of no registry %s (%v); want no services", a.body, err)
	}
}

func init() { hlog.SetLevel(hlog.LevelWarn) } // no route listing per engine

func TestReplication(t *testing.T) {
	var got Replication
	a := get(newEngine(t, Options{}), "/console/api/replication.json")
	if err := json.Unmarshal(a.body, &got); err != nil || got.Peers == nil || len(got.Peers) != 0 || a.header("Cache-Control") != "no-store" {
		t.Errorf("unexpected answer of a single node %s (%v, %q); want no peers, not stored", a.body, err, a.header("Cache-Control"))
	}
	checkSecurityHeaders(t, "replication.json", a)
	want := Replication{Peers: []PeerReplication{{URL: "http://b", Status: "up", LastSeen: 5, Queue: 1, Batches: 2, Instances: 3, LagMs: 1.5}}, Dropped: 7}
	a = get(newEngine(t, Options{Replication: func() Replication { return want }}), "/console/api/replication.json")
	got = Replication{}
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unexpected replication (-want +got):\n%s", diff)
	}
}
