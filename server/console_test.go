package server

import (
	stdjson "encoding/json"
	"strings"
	"testing"

	"github.com/cloudwego/hertz/pkg/common/ut"
)

// TestConsoleMounted: the server serves the console, redirects / to it,
// keeps answering other unknown paths with the JSON 404, and the console's
// summary reads this server's registry.
func TestConsoleMounted(t *testing.T) {
	s := newTestServer(t, Config{})
	host := ut.Header{Key: "Host", Value: "127.0.0.1:8080"}
	// Registered before the first summary: the summary is computed at most every 500 ms.
	do(s, "POST", "/api/registry/register.json", `{"instances":[{"regionId":"SHA","serviceId":"order","instanceId":"o-1","url":"http://o-1","status":"up"}]}`)

	r := do(s, "GET", "/", "", host)
	if r.code != 302 || r.header("Location") != "/console/" {
		t.Errorf("unexpected answer to GET /: %d, Location %q; want 302 to /console/", r.code, r.header("Location"))
	}
	for _, path := range []string{"/", "/console/", "/console/app.js", "/console/api/summary.json", "/console/nope"} {
		r := do(s, "GET", path, "", host)
		if csp := r.header("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "connect-src 'self' ws://127.0.0.1:8080") {
			t.Errorf("%s: unexpected Content-Security-Policy %q", path, csp)
		}
		if r.header("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: unexpected X-Content-Type-Options %q", path, r.header("X-Content-Type-Options"))
		}
	}
	if r := do(s, "GET", "/console/", "", host); r.code != 200 || r.header("Content-Type") != "text/html; charset=utf-8" || r.header("Cache-Control") != "no-cache" {
		t.Errorf("unexpected /console/: %d %q %q", r.code, r.header("Content-Type"), r.header("Cache-Control"))
	}
	if r := do(s, "GET", "/console/api/replication.json", ""); r.body != `{"peers":[],"dropped":0}` {
		t.Errorf("unexpected replication of a single node %s", r.body)
	}
	if r := do(s, "GET", "/nope", ""); r.code != 404 || !strings.Contains(r.body, `"errorCode":"bad-request"`) {
		t.Errorf("unexpected answer to an unknown path: %d %s; want the JSON 404", r.code, r.body)
	}

	var sum struct {
		Region   string
		Services []struct {
			ServiceID string
			Up        int
		}
	}
	r = do(s, "GET", "/console/api/summary.json", "")
	if err := stdjson.Unmarshal([]byte(r.body), &sum); err != nil {
		t.Fatalf("cannot decode the summary %s: %v", r.body, err)
	}
	if sum.Region != "SHA" || len(sum.Services) != 1 || sum.Services[0].ServiceID != "order" || sum.Services[0].Up != 1 {
		t.Errorf("unexpected summary %s; want order with one instance up", r.body)
	}
}
