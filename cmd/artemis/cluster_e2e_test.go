package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/artemis-go/artemis/client"
)

// The cluster failure test: three bin/artemis processes, SDK clients
// registering and heartbeating 300 instances through different nodes, one
// node killed with SIGKILL and restarted. The surviving nodes must never
// lose an instance from discovery, the restarted node must have every
// instance when it first reports up, and nothing is lost after two TTLs.

type e2eNode struct {
	addr, base string
	args       []string
	cmd        *exec.Cmd
	logs       *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (n *e2eNode) start(t *testing.T, bin string) {
	t.Helper()
	n.logs = &syncBuffer{}
	n.cmd = exec.Command(bin, n.args...)
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

func (n *e2eNode) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Signal(syscall.SIGKILL)
		n.cmd.Wait()
	}
}

// status is the node's own status ("" when it does not answer).
func (n *e2eNode) status() string {
	resp, err := http.Post(n.base+"/api/status/node.json", "application/json", strings.NewReader("{}"))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var a struct{ NodeStatus struct{ Status string } }
	json.NewDecoder(resp.Body).Decode(&a)
	return a.NodeStatus.Status
}

// instances counts the instances service.json of svc shows on the node
// (-1 when it does not answer with success).
func (n *e2eNode) instances(svc string) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(n.base + "/api/discovery/service.json?serviceId=" + svc)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var a struct {
		ResponseStatus struct{ ErrorCode string }
		Service        struct{ Instances []json.RawMessage }
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || a.ResponseStatus.ErrorCode != "success" {
		return -1
	}
	return len(a.Service.Instances)
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestClusterSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level cluster test; runs without -short (CI runs it)")
	}
	const (
		svc      = "e2e-cluster"
		perNode  = 100
		ttl      = 3 * time.Second
		interval = time.Second
	)
	bin := filepath.Join(t.TempDir(), "artemis")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("cannot build: %v\n%s", err, out)
	}
	nodes := make([]*e2eNode, 3)
	var peers []string
	for i := range nodes {
		addr := freeAddr(t)
		nodes[i] = &e2eNode{addr: addr, base: "http://" + addr}
		peers = append(peers, nodes[i].base)
	}
	for _, n := range nodes {
		n.args = []string{"server", "--addr", n.addr, "--node-url", n.base, "--region", "e2e", "--zone", "z1",
			"--lease-ttl", ttl.String(), "--peers", strings.Join(peers, ","), "--cluster-token", "e2e-token",
			"--sync-timeout", "5s", "--log-level", "warn", "--store", "memory"}
		n.start(t, bin)
		t.Cleanup(n.kill)
	}
	defer func() {
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("logs of %s:\n%s", n.base, n.logs.String())
			}
		}
	}()
	for _, n := range nodes {
		waitUntil(t, 20*time.Second, func() bool { return n.status() == "up" }, n.base+" up")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var regs []*client.Registry
	for i := range nodes { // each client starts on a different node
		urls := []string{nodes[i].base, nodes[(i+1)%3].base, nodes[(i+2)%3].base}
		r, err := client.NewRegistry(ctx, urls, client.WithRegion("e2e"), client.WithHeartbeatInterval(interval),
			client.WithAttemptTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(context.Background())
		var insts []client.Instance
		for j := range perNode {
			id := fmt.Sprintf("n%d-i%03d", i, j)
			insts = append(insts, client.Instance{ServiceID: svc, InstanceID: id, IP: "10.0.0.1", Port: 8080 + j,
				URL: "http://10.0.0.1/" + id, Status: "up"})
		}
		if err := r.Register(ctx, insts...); err != nil {
			t.Fatalf("cannot register through %s: %v", nodes[i].base, err)
		}
		regs = append(regs, r)
	}
	for _, n := range nodes {
		waitUntil(t, 10*time.Second, func() bool { return n.instances(svc) == 3*perNode }, "300 instances on "+n.base)
	}

	// Poll the survivors every 100 ms from now on.
	survivors := nodes[:2]
	var polls, short atomic.Int64
	var worst atomic.Value
	pollDone := make(chan struct{})
	stopPoll := make(chan struct{})
	go func() {
		defer close(pollDone)
		for {
			select {
			case <-stopPoll:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for _, n := range survivors {
				polls.Add(1)
				if got := n.instances(svc); got != 3*perNode {
					short.Add(1)
					worst.Store(fmt.Sprintf("%s showed %d instances", n.base, got))
				}
			}
		}
	}()

	victim := nodes[2]
	victim.kill()
	time.Sleep(2 * ttl) // two TTLs without the victim: its clients fail over
	victim.start(t, bin)
	sawStarting := false
	var atUp int
	waitUntil(t, 20*time.Second, func() bool {
		switch victim.status() {
		case "starting":
			sawStarting = true
		case "up":
			atUp = victim.instances(svc)
			return true
		}
		return false
	}, "the restarted node up")
	if atUp != 3*perNode {
		t.Fatalf("the restarted node reported up with %d instances; want %d", atUp, 3*perNode)
	}
	time.Sleep(2 * ttl) // nothing is lost after two TTLs, anywhere
	close(stopPoll)
	<-pollDone
	for _, n := range nodes {
		if got := n.instances(svc); got != 3*perNode {
			t.Fatalf("%s shows %d instances two TTLs after the restart; want %d", n.base, got, 3*perNode)
		}
	}
	if short.Load() != 0 {
		t.Fatalf("%d of %d polls of the survivors lost instances (%v)", short.Load(), polls.Load(), worst.Load())
	}
	t.Logf("%d polls of the survivors, none short; the restarted node was seen starting: %v", polls.Load(), sawStarting)
}
