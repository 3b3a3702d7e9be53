package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The end-to-end test builds bin/artemis, runs it as a user would, and talks
// to it over loopback with net/http only, the way an independent client does.

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startBinary(t *testing.T, args ...string) (string, *exec.Cmd, *bytes.Buffer) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "artemis")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("cannot build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, append([]string{"server", "--addr", addr}, args...)...)
	cmd.Dir = t.TempDir() // the default management store (artemis-data/) lands there
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; {
		if resp, err := http.Get(base + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return base, cmd, &logs
}

type e2eClient struct {
	t    *testing.T
	base string
}

func (c e2eClient) post(path string, body any, gz bool) (int, map[string]any) {
	c.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(b)
	}
	req, _ := http.NewRequest("POST", c.base+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(raw)
		zw.Close()
		req, _ = http.NewRequest("POST", c.base+path, &buf)
		req.Header.Set("Content-Encoding", "gzip")
	}
	return c.send(req)
}

func (c e2eClient) get(path string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+path, nil)
	return c.send(req)
}

func (c e2eClient) send(req *http.Request) (int, map[string]any) {
	c.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("%s %s answered non-JSON %q", req.Method, req.URL, b)
	}
	return resp.StatusCode, m
}

// text GETs path and returns the body, which need not be JSON.
func (c e2eClient) text(path string) string {
	c.t.Helper()
	resp, err := http.Get(c.base + path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

func errCode(m map[string]any) string {
	rs, _ := m["responseStatus"].(map[string]any)
	s, _ := rs["errorCode"].(string)
	return s
}

func instanceIDsOf(service any) []string {
	svc, _ := service.(map[string]any)
	insts, _ := svc["instances"].([]any)
	var ids []string
	for _, i := range insts {
		ids = append(ids, i.(map[string]any)["instanceId"].(string))
	}
	return ids
}

func TestBinaryEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	base, cmd, logs := startBinary(t, "--region", "R1", "--zone", "Z1", "--lease-ttl", "3s")
	c := e2eClient{t: t, base: base}
	inst := func(id string) map[string]any {
		return map[string]any{"regionId": "r1", "zoneId": "z1", "serviceId": "e2e-svc", "instanceId": id,
			"ip": "127.0.0.1", "port": 9000, "url": "http://127.0.0.1:9000/" + id, "status": "up",
			"metadata": map[string]string{"k": "v"}}
	}

	if code, m := c.post("/api/registry/register.json", map[string]any{"instances": []any{inst("a")}}, true); code != 200 || errCode(m) != "success" {
		t.Fatalf("gzip register: %d %v", code, m)
	}
	pascal := `{"Instances":[{"RegionId":"R1","ServiceId":"E2E-SVC","InstanceId":"b","Url":"http://b","IP":"127.0.0.2","Port":1}]}`
	if code, m := c.post("/api/registry/register.json", pascal, false); code != 200 || errCode(m) != "success" {
		t.Fatalf("PascalCase register: %d %v", code, m)
	}
	_, m := c.get("/api/discovery/service.json?serviceId=e2e-svc")
	if got := instanceIDsOf(m["service"]); strings.Join(got, ",") != "a,b" {
		t.Fatalf("unexpected instances %v; want [a b]", got)
	}
	_, m = c.post("/api/discovery/services.json", map[string]any{"regionId": "r1"}, false)
	version := int64(m["version"].(float64))

	if code, m := c.post("/api/registry/unregister.json", map[string]any{"instances": []any{inst("b")}}, false); code != 200 || errCode(m) != "success" {
		t.Fatalf("unregister: %d %v", code, m)
	}
	_, m = c.post("/api/discovery/services-delta.json", fmt.Sprintf(`{"version":%d}`, version), false)
	delta, _ := m["delta"].(map[string]any)
	if changes, _ := delta["e2e-svc"].([]any); len(changes) != 1 || changes[0].(map[string]any)["changeType"] != "delete" {
		t.Fatalf("unexpected delta %v", m)
	}
	if code, m := c.post("/api/registry/heartbeat.json", "{garbage", false); code != 400 || errCode(m) != "bad-request" {
		t.Fatalf("garbage body: %d %v", code, m)
	}
	if code, m := c.post("/api/registry/heartbeat.json", map[string]any{"instances": []any{inst("b")}}, false); code != 200 || errCode(m) != "partial_fail" {
		t.Fatalf("heartbeat of an unregistered instance: %d %v", code, m)
	}
	_, m = c.get("/api/status/node.json")
	if node := m["nodeStatus"].(map[string]any)["node"].(map[string]any); node["zone"].(map[string]any)["regionId"] != "R1" {
		t.Fatalf("unexpected node %v", node)
	}

	// Lease expiry: "a" stops heartbeating and is evicted after its 3 s TTL.
	// Every answer until then is a success listing "a"; afterwards the
	// delta, the metrics and a heartbeat say it left by eviction.
	_, m = c.post("/api/discovery/services.json", map[string]any{"regionId": "r1"}, false)
	beforeExpiry := int64(m["version"].(float64))
	deadline := time.Now().Add(30 * time.Second) // a guard against hanging, not a bound on eviction
	for {
		code, m := c.get("/api/discovery/service.json?serviceId=e2e-svc")
		if code != 200 || errCode(m) != "success" {
			t.Fatalf("service.json while waiting for the eviction: %d %v", code, m)
		}
		ids := instanceIDsOf(m["service"])
		if len(ids) == 0 {
			break
		}
		if strings.Join(ids, ",") != "a" {
			t.Fatalf("unexpected instances %v while waiting for the eviction; want [a]", ids)
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance was never evicted: %v", m)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, m = c.post("/api/discovery/services-delta.json", fmt.Sprintf(`{"version":%d}`, beforeExpiry), false)
	delta, _ = m["delta"].(map[string]any)
	changes, _ := delta["e2e-svc"].([]any)
	if len(changes) != 1 || changes[0].(map[string]any)["changeType"] != "delete" ||
		changes[0].(map[string]any)["instance"].(map[string]any)["instanceId"] != "a" {
		t.Fatalf("unexpected delta after the expiry; want one delete of a: %v", m)
	}
	metrics := c.text("/metrics")
	for _, want := range []string{"artemis_evictions_total 1\n", "artemis_unregistrations_total 1\n"} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %q (a evicted, b unregistered)", want)
		}
	}
	if code, m := c.post("/api/registry/heartbeat.json", map[string]any{"instances": []any{inst("a")}}, false); code != 200 || errCode(m) != "partial_fail" {
		t.Fatalf("heartbeat of an evicted instance: %d %v", code, m)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("unclean exit after SIGTERM: %v\n%s", err, logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("server did not exit after SIGTERM:\n%s", logs)
	}
}

func TestServerFlags(t *testing.T) {
	cfg, _, err := loadServerConfig([]string{"--addr", "127.0.0.1:1", "--region", "R", "--zone", "Z", "--lease-ttl", "3s", "--no-self-preservation"},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rc, sc := cfg.Registry, cfg.Server
	if sc.Addr != "127.0.0.1:1" || rc.Region != "R" || rc.Zone != "Z" || rc.LeaseTTL != 3*time.Second || !rc.SelfPreservation.Disabled {
		t.Fatalf("unexpected configs %+v %+v", rc, sc)
	}
	if _, _, err := loadServerConfig([]string{"--lease-ttl", "soon"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatalf("a bad duration was accepted")
	}
	if code := run([]string{"server", "--lease-ttl", "1ms"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("unexpected exit code %d for an invalid lease TTL; want 2", code)
	}
	var out bytes.Buffer
	if code := run([]string{"version"}, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "artemis ") {
		t.Fatalf("unexpected version output %q (%d)", out.String(), code)
	}
	if code := run([]string{"bogus"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("unexpected exit code %d for an unknown command", code)
	}
}
