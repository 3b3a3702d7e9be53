package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	artemis "github.com/artemis-go/artemis/client"
	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/server"
	"github.com/artemis-go/artemis/server/servertest"
)

func startInProcess(t *testing.T) string {
	return servertest.Start(t, core.Config{}, server.Config{}).URL
}

func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCLI(t *testing.T) {
	base := startInProcess(t)
	code, out, errOut := cli(t, "instance", "register", "--server", base, "--service", "shop", "--id", "shop-1",
		"--url", "http://10.0.0.9:80", "--ip", "10.0.0.9", "--port", "80", "--meta", "version=2")
	if code != 0 || !strings.Contains(out, "register shop/shop-1: ok") {
		t.Fatalf("register: %d %q %q", code, out, errOut)
	}
	if code, out, _ := cli(t, "service", "list", "--server", base); code != 0 || !strings.Contains(out, "shop") || !strings.Contains(out, "1 services") {
		t.Fatalf("service list: %d %q", code, out)
	}
	if code, out, _ := cli(t, "service", "get", "shop", "--server", base); code != 0 || !strings.Contains(out, "shop-1") || !strings.Contains(out, "10.0.0.9:80") {
		t.Fatalf("service get: %d %q", code, out)
	}
	if code, out, _ := cli(t, "service", "get", "shop", "--server", base, "--json"); code != 0 || !strings.Contains(out, `"version": "2"`) {
		t.Fatalf("service get --json: %d %q", code, out)
	}
	if code, out, _ := cli(t, "instance", "heartbeat", "--server", base, "--service", "shop", "--id", "shop-1"); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("heartbeat: %d %q", code, out)
	}
	if code, _, errOut := cli(t, "instance", "heartbeat", "--server", base, "--service", "shop", "--id", "ghost"); code != 1 || !strings.Contains(errOut, "data-not-found") {
		t.Fatalf("heartbeat of an unknown instance: %d %q", code, errOut)
	}
	if code, _, errOut := cli(t, "instance", "register", "--server", base, "--service", "shop", "--id", "bad"); code != 1 || !strings.Contains(errOut, "url is blank") {
		t.Fatalf("register without url: %d %q", code, errOut)
	}
	if code, out, _ := cli(t, "instance", "unregister", "--server", base, "--service", "shop", "--id", "shop-1"); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("unregister: %d %q", code, out)
	}
	if code, _, _ := cli(t, "service", "get", "--server", base); code != 2 {
		t.Fatalf("service get without an id: %d; want 2", code)
	}
	if code, _, errOut := cli(t, "service", "list", "--server", "http://127.0.0.1:1"); code != 1 || !strings.Contains(errOut, "cannot reach") {
		t.Fatalf("unreachable server: %d %q", code, errOut)
	}
}

// TestWatchPrinter: artemis watch prints the first state, then +/- lines.
func TestWatchPrinter(t *testing.T) {
	base := startInProcess(t)
	ctx := context.Background()
	var mu sync.Mutex
	var out bytes.Buffer
	p := newWatchPrinter(writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(b) }), false)
	d, err := artemis.NewDiscovery(ctx, []string{base}, artemis.WithReconcileInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Watch(ctx, "live", p.print); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the subscription reaches the node
	cli(t, "instance", "register", "--server", base, "--service", "live", "--id", "l-1", "--url", "http://l1")
	cli(t, "instance", "register", "--server", base, "--service", "live", "--id", "l-2", "--url", "http://l2")
	cli(t, "instance", "unregister", "--server", base, "--service", "live", "--id", "l-1")
	want := []string{"live: 0 instances", "live: + l-1", "live: + l-2", "live: - l-1 (1 instances)"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := out.String()
		mu.Unlock()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(got, w)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch output lacks %q:\n%s", want, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
