// Package servertest starts Artemis nodes on loopback for the tests,
// examples and benchmarks of other packages.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/server"
)

// Node is a running registry node.
type Node struct {
	URL      string // http://127.0.0.1:PORT
	Server   *server.Server
	Registry *core.Registry
	stopped  bool
}

// Start runs a node on a free loopback port and waits until it answers. A
// nil t is allowed (examples); otherwise the node stops when the test ends.
func Start(t testing.TB, rc core.Config, sc server.Config) *Node {
	fail := func(err error) {
		if t == nil {
			panic(err)
		}
		t.Helper()
		t.Fatal(err)
	}
	reg, err := core.New(rc)
	if err != nil {
		fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	sc.Listener = ln
	if sc.Logger == nil {
		sc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n := &Node{URL: "http://" + ln.Addr().String(), Server: server.New(reg, sc), Registry: reg}
	go n.Server.Run()
	if t != nil {
		t.Cleanup(n.Stop)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		req, _ := http.NewRequest("GET", n.URL+"/health", nil)
		req.Close = true // an idle keep-alive would delay Stop
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return n
		}
		if time.Now().After(deadline) {
			fail(context.DeadlineExceeded)
		}
	}
}

// Stop shuts the node down; idle keep-alive connections get no grace.
func (n *Node) Stop() {
	if n.stopped {
		return
	}
	n.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	n.Server.Shutdown(ctx)
	n.Registry.Close()
}
