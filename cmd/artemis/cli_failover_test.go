package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// With several --server URLs the CLI moves on from a node that is down,
// answers 5xx or 429, or says service-unavailable or rate-limited; a
// client's mistake (bad-request) is final.
func TestCLIFailsOver(t *testing.T) {
	real := startInProcess(t)
	var hits atomic.Int64
	answer := func(code int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			hits.Add(1)
			w.WriteHeader(code)
			io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	draining := answer(200, `{"responseStatus":{"status":"fail","errorCode":"service-unavailable","message":"node is shutting down"}}`)
	limited := answer(200, `{"responseStatus":{"status":"fail","errorCode":"rate-limited"}}`)
	broken := answer(502, `bad gateway`)
	down := "http://" + freeAddr(t)
	servers := strings.Join([]string{down, draining, limited, broken, real}, ",")
	code, out, errOut := cli(t, "instance", "register", "--server", servers, "--service", "shop", "--id", "shop-1", "--url", "http://10.0.0.9:80")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("register through failing nodes: %d %q %q", code, out, errOut)
	}
	if code, out, _ := cli(t, "service", "get", "shop", "--server", servers); code != 0 || !strings.Contains(out, "shop-1") {
		t.Fatalf("service get through failing nodes: %d %q", code, out)
	}
	if hits.Load() != 6 {
		t.Fatalf("the failing nodes were asked %d times; want 6 (each once per command)", hits.Load())
	}
	refusing := answer(200, `{"responseStatus":{"status":"fail","errorCode":"bad-request","message":"no"}}`)
	if code, _, errOut := cli(t, "instance", "register", "--server", refusing+","+real, "--service", "shop", "--id", "x", "--url", "u"); code != 1 || !strings.Contains(errOut, "bad-request") {
		t.Fatalf("a bad-request was not final: %d %q", code, errOut)
	}
	if code, _, errOut := cli(t, "service", "list", "--server", down+","+draining); code != 1 || !strings.Contains(errOut, "cannot reach") || !strings.Contains(errOut, "service-unavailable") {
		t.Fatalf("every node failing: %d %q; want both reasons", code, errOut)
	}
}
