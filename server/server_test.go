package server

import (
	"bytes"
	"compress/gzip"
	"context"
	stdjson "encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/common/ut"

	"github.com/artemis-go/artemis/core"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testClock is a fixed clock, so versions and lease times are deterministic.
var testClock = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newTestServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	reg, err := core.New(core.Config{Region: "SHA", Zone: "sha-a", Now: func() time.Time { return testClock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := New(reg, cfg)
	t.Cleanup(s.closeBackground)
	return s
}

type response struct {
	code   int
	body   string
	header func(string) string
}

func do(s *Server, method, path, body string, headers ...ut.Header) response {
	var b *ut.Body
	if body != "" {
		b = &ut.Body{Body: strings.NewReader(body), Len: len(body)}
	}
	w := ut.PerformRequest(s.Engine(), method, path, b, headers...)
	r := w.Result()
	return response{code: r.StatusCode(), body: string(r.Body()), header: func(k string) string { return string(r.Header.Peek(k)) }}
}

// golden compares got with testdata/name.json, rewriting it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".json")
	var pretty bytes.Buffer
	if err := stdjson.Indent(&pretty, []byte(got), "", "  "); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, got)
	}
	pretty.WriteByte('\n')
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cannot read golden file (run go test -update): %v", err)
	}
	if pretty.String() != string(want) {
		t.Fatalf("unexpected response for %s;\ngot:\n%s\nwant:\n%s", name, pretty.String(), want)
	}
}

const (
	instA = `{"regionId":"sha","zoneId":"sha-a","groupId":"g1","serviceId":"Order-Service","instanceId":"a",` +
		`"machineName":"host-a","ip":"10.0.0.1","port":8080,"protocol":"http","url":"http://10.0.0.1:8080",` +
		`"healthCheckUrl":"http://10.0.0.1:8080/health","status":"up","metadata":{"version":"1.0"}}`
	// instB is instance b in PascalCase, as the .NET client sends it.
	instB = `{"RegionId":"SHA","ZoneId":"sha-b","ServiceId":"order-service","InstanceId":"b","IP":"10.0.0.2",` +
		`"Port":8080,"Url":"http://10.0.0.2:8080","Status":"starting","Metadata":{"Weight":"3"}}`
	instOther = `{"regionId":"pek","serviceId":"order-service","instanceId":"c","url":"http://c"}`
	instBad   = `{"regionId":"sha","serviceId":"order-service","instanceId":"d","url":" "}`
)

func TestRegistryEndpoints(t *testing.T) {
	s := newTestServer(t, Config{})
	steps := []struct {
		name, path, body string
	}{
		{"register_ok", "/api/registry/register.json", `{"instances":[` + instA + `]}`},
		{"register_pascal_case", "/api/registry/register.json", `{"Instances":[` + instB + `,null]}`},
		{"register_partial_fail", "/api/registry/register.json", `{"instances":[` + instOther + `,` + instBad + `]}`},
		{"register_empty", "/api/registry/register.json", `{"instances":[]}`},
		{"heartbeat_ok", "/api/registry/heartbeat.json", `{"instances":[` + instA + `,` + instB + `]}`},
		{"heartbeat_unknown", "/api/registry/heartbeat.json", `{"instances":[{"regionId":"sha","serviceId":"order-service","instanceId":"zz"}]}`},
		{"service_after_register", "/api/discovery/service.json", `{"discoveryConfig":{"serviceId":"ORDER-SERVICE"}}`},
		{"unregister_ok", "/api/registry/unregister.json", `{"instances":[` + instB + `,{"regionId":"sha","serviceId":"x","instanceId":"unknown"}]}`},
		{"service_after_unregister", "/api/discovery/service.json", `{"discoveryConfig":{"serviceId":"order-service"}}`},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := do(s, "POST", st.path, st.body)
			if r.code != 200 {
				t.Fatalf("unexpected HTTP status %d; want 200: %s", r.code, r.body)
			}
			golden(t, st.name, r.body)
		})
	}
}

func TestDiscoveryEndpoints(t *testing.T) {
	s := newTestServer(t, Config{})
	start := s.reg.Version()
	do(s, "POST", "/api/registry/register.json", `{"instances":[`+instA+`,`+instB+`,`+
		`{"regionId":"sha","serviceId":"pay","instanceId":"p1","url":"http://p1"}]}`)
	do(s, "POST", "/api/registry/unregister.json", `{"instances":[`+instB+`]}`)
	steps := []struct {
		name, method, path, body string
	}{
		{"service_get", "GET", "/api/discovery/service.json?ServiceId=Pay&regionId=sha", ""},
		{"service_unknown", "POST", "/api/discovery/service.json", `{"discoveryConfig":{"serviceId":"nope"}}`},
		{"service_blank", "POST", "/api/discovery/service.json", `{"discoveryConfig":{"serviceId":"  "}}`},
		{"service_no_config", "POST", "/api/discovery/service.json", `{}`},
		{"lookup", "POST", "/api/discovery/lookup.json", `{"discoveryConfigs":[{"serviceId":"pay"},{"serviceId":"nope"},null,{"serviceId":"order-service"}],"regionId":"sha","zoneId":"sha-a"}`},
		{"services_post", "POST", "/api/discovery/services.json", `{"regionId":"sha"}`},
		{"services_get", "GET", "/api/discovery/services.json", ""},
		{"delta_from_start", "POST", "/api/discovery/services-delta.json", `{"version":` + itoa(start) + `}`},
		{"delta_current", "POST", "/api/discovery/services-delta.json", `{"version":` + itoa(start+4) + `}`},
		{"delta_zero", "POST", "/api/discovery/services-delta.json", `{"version":0}`},
		{"delta_future", "POST", "/api/discovery/services-delta.json", `{"version":` + itoa(start+99) + `}`},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := do(s, st.method, st.path, st.body)
			if r.code != 200 {
				t.Fatalf("unexpected HTTP status %d; want 200: %s", r.code, r.body)
			}
			golden(t, st.name, r.body)
		})
	}
}

func itoa(v int64) string { b, _ := stdjson.Marshal(v); return string(b) }

func TestStatusEndpoints(t *testing.T) {
	s := newTestServer(t, Config{NodeURL: "http://10.1.1.1:8080"})
	do(s, "POST", "/api/registry/register.json", `{"instances":[`+instA+`]}`)
	steps := []struct {
		name, method, path, body string
	}{
		{"node_post", "POST", "/api/status/node.json", `{}`},
		{"node_get", "GET", "/api/status/node.json", ""},
		{"cluster", "POST", "/api/status/cluster.json", ""},
		{"leases_get", "GET", "/api/status/leases.json?appIds=order-service&appIds=none", ""},
		{"leases_post", "POST", "/api/status/leases.json", `{"serviceIds":["ORDER-SERVICE"]}`},
		{"config", "GET", "/api/status/config.json", ""},
		{"up_registry_nodes", "POST", "/api/cluster/up-registry-nodes.json", `{"regionId":"sha","zoneId":"sha-a"}`},
		{"up_discovery_nodes_get", "GET", "/api/cluster/up-discovery-nodes.json", ""},
		{"up_nodes_other_region", "POST", "/api/cluster/up-registry-nodes.json", `{"regionId":"pek"}`},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := do(s, st.method, st.path, st.body)
			if r.code != 200 {
				t.Fatalf("unexpected HTTP status %d; want 200: %s", r.code, r.body)
			}
			golden(t, st.name, r.body)
		})
	}
	t.Run("deployment", func(t *testing.T) {
		r := do(s, "GET", "/api/status/deployment.json", "")
		var d deploymentResponse
		if err := stdjson.Unmarshal([]byte(r.body), &d); err != nil {
			t.Fatal(err)
		}
		if d.RegionID != "SHA" || d.ZoneID != "sha-a" || d.IP != "10.1.1.1" || d.Port != 8080 || d.ResponseStatus != okStatus {
			t.Fatalf("unexpected deployment %+v", d)
		}
	})
	t.Run("health", func(t *testing.T) {
		if r := do(s, "GET", "/health", ""); r.code != 200 || r.body != "OK" {
			t.Fatalf("unexpected health answer %d %q; want 200 OK", r.code, r.body)
		}
	})
}

func gzipped(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.String()
}

func TestInputHandling(t *testing.T) {
	s := newTestServer(t, Config{MaxBodyBytes: 4096, MaxInflatedBytes: 64 << 10})
	gz := ut.Header{Key: "Content-Encoding", Value: "gzip"}
	cases := []struct {
		name    string
		body    string
		headers []ut.Header
		code    int
		errCode string
	}{
		{"gzip body", gzipped(`{"instances":[` + instA + `]}`), []ut.Header{gz}, 200, "success"},
		{"gzip upper case", gzipped(`{"instances":[` + instA + `]}`), []ut.Header{{Key: "Content-Encoding", Value: "GZIP"}}, 200, "success"},
		{"not json", `this is not json`, nil, 400, "bad-request"},
		{"truncated json", `{"instances":[{"regionId":"sha"`, nil, 400, "bad-request"},
		{"wrong type", `{"instances":"many"}`, nil, 400, "bad-request"},
		{"array body", `[1,2,3]`, nil, 400, "bad-request"},
		{"port as string", `{"instances":[{"regionId":"sha","serviceId":"s","instanceId":"i","url":"u","port":"80"}]}`, nil, 400, "bad-request"},
		{"empty body", ``, nil, 400, "bad-request"},
		{"null body", `null`, nil, 200, "bad-request"},
		{"oversized body", `{"instances":[` + strings.Repeat(instA+",", 40) + instA + `]}`, nil, 413, "bad-request"},
		{"gzip bomb", gzipped(`{"instances":[` + strings.Repeat(" ", 200<<10) + `]}`), []ut.Header{gz}, 413, "bad-request"},
		{"broken gzip", "\x1f\x8b\x08\x00garbage", []ut.Header{gz}, 400, "bad-request"},
		{"gzip header on plain body", `{"instances":[]}`, []ut.Header{gz}, 400, "bad-request"},
		{"unsupported encoding", `{"instances":[]}`, []ut.Header{{Key: "Content-Encoding", Value: "br"}}, 400, "bad-request"},
		{"unknown fields ignored", `{"instances":[` + instA + `],"extra":{"deep":[1,2]}}`, nil, 200, "success"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(s, "POST", "/api/registry/register.json", tc.body, tc.headers...)
			var got statusOnly
			if err := stdjson.Unmarshal([]byte(r.body), &got); err != nil {
				t.Fatalf("answer is not JSON: %v: %q", err, r.body)
			}
			if r.code != tc.code || got.ResponseStatus.ErrorCode != tc.errCode {
				t.Fatalf("unexpected answer %d %s; want %d %s: %s", r.code, got.ResponseStatus.ErrorCode, tc.code, tc.errCode, r.body)
			}
			if r.header("Access-Control-Allow-Origin") != "*" {
				t.Fatalf("CORS header missing")
			}
		})
	}
}

func TestRoutingAndCORS(t *testing.T) {
	s := newTestServer(t, Config{})
	r := do(s, "OPTIONS", "/api/registry/register.json", "",
		ut.Header{Key: "Origin", Value: "http://ui"}, ut.Header{Key: "Access-Control-Request-Method", Value: "POST"})
	if r.code != 200 || r.header("Access-Control-Allow-Origin") != "*" || !strings.Contains(r.header("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("unexpected preflight answer %d %q %q", r.code, r.header("Access-Control-Allow-Origin"), r.header("Access-Control-Allow-Methods"))
	}
	if r := do(s, "GET", "/api/nope.json", ""); r.code != 404 || !strings.Contains(r.body, `"bad-request"`) || r.header("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("unexpected 404 answer %d %s", r.code, r.body)
	}
	if r := do(s, "GET", "/api/registry/register.json", ""); r.code != 405 || !strings.Contains(r.body, `"bad-request"`) {
		t.Fatalf("unexpected 405 answer %d %s", r.code, r.body)
	}
}

func TestPanicIsRecovered(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	s.Engine().GET("/boom", func(context.Context, *app.RequestContext) { panic("kaboom") })
	for range 50 {
		r := do(s, "GET", "/boom", "")
		if r.code != 500 || !strings.Contains(r.body, codeInternalError) {
			t.Fatalf("unexpected answer to a panic %d %s", r.code, r.body)
		}
		if got := r.header("Access-Control-Allow-Origin"); got != "*" {
			t.Fatalf("unexpected Access-Control-Allow-Origin %q on the 500; want *", got)
		}
	}
	if s.Panics() != 50 {
		t.Fatalf("unexpected panic count %d; want 50", s.Panics())
	}
	// Error logs are rate-limited: a burst of errLogBurst, then about errLogRate a second.
	if n := strings.Count(logs.String(), "kaboom"); n < 1 || n > errLogBurst+errLogRate {
		t.Fatalf("panic logged %d times; want 1..%d", n, errLogBurst+errLogRate)
	}
	if r := do(s, "GET", "/health", ""); r.code != 200 {
		t.Fatalf("server unhealthy after panics: %d", r.code)
	}
}

func TestShutdownRefusesRegistrations(t *testing.T) {
	s := newTestServer(t, Config{})
	s.state.Store(nodeDown)
	r := do(s, "POST", "/api/registry/register.json", `{"instances":[`+instA+`]}`)
	if r.code != 200 || !strings.Contains(r.body, codeServiceUnavailable) {
		t.Fatalf("unexpected answer while down %d %s", r.code, r.body)
	}
	r = do(s, "POST", "/api/cluster/up-registry-nodes.json", `{}`)
	if !strings.Contains(r.body, codeDataNotFound) {
		t.Fatalf("unexpected nodes answer while down %s", r.body)
	}
}

func TestPprof(t *testing.T) {
	// ut.PerformRequest comes from 0.0.0.0, not loopback: refused.
	if r := do(newTestServer(t, Config{Pprof: true}), "GET", "/debug/pprof/", ""); r.code != 403 || !strings.Contains(r.body, codeNoPermission) {
		t.Fatalf("unexpected answer to a non-loopback pprof client %d %s", r.code, r.body)
	}
	if r := do(newTestServer(t, Config{}), "GET", "/debug/pprof/", ""); r.code != 404 {
		t.Fatalf("pprof served without Pprof: %d", r.code)
	}
	// A loopback client over a real connection is served.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, Config{Pprof: true, Listener: ln})
	go s.Run()
	defer s.Shutdown(context.Background())
	base := "http://" + ln.Addr().String()
	var body string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(base + "/debug/pprof/heap?debug=1")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				body = string(b)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pprof never answered: %v", err)
		}
	}
	if !strings.Contains(body, "heap profile") {
		t.Fatalf("unexpected heap profile %.200s", body)
	}
	http.DefaultClient.CloseIdleConnections()
}
