// Package nodeproc starts bin/artemis processes on loopback addresses for
// the measurement commands (cmd/hostile, cmd/clusterbench) and reads what
// they hold from /proc.
package nodeproc

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Node is a started artemis server.
type Node struct {
	Addr, Base string
	Cmd        *exec.Cmd
}

// FreeAddrs reserves n loopback addresses (free when returned).
func FreeAddrs(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	out := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// Start runs `bin server --addr addr args...` (its output to stderr) and
// waits until /health answers.
func Start(bin, addr string, args ...string) (*Node, error) {
	n := &Node{Addr: addr, Base: "http://" + addr}
	n.Cmd = exec.Command(bin, append([]string{"server", "--addr", addr}, args...)...)
	n.Cmd.Stderr = os.Stderr
	if err := n.Cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(n.Base + "/health"); err == nil {
			resp.Body.Close()
			return n, nil
		}
	}
	n.Stop()
	return nil, fmt.Errorf("%s did not start on %s", bin, addr)
}

// Stop interrupts the node and waits up to 10 s, then kills it.
func (n *Node) Stop() {
	n.Cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { n.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		n.Cmd.Process.Kill()
		<-done
	}
}

// Status is the node's own status ("" when it does not answer).
func (n *Node) Status() string {
	resp, err := http.Post(n.Base+"/api/status/node.json", "application/json", strings.NewReader("{}"))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var a struct{ NodeStatus struct{ Status string } }
	json.NewDecoder(resp.Body).Decode(&a)
	return a.NodeStatus.Status
}

// WaitUp waits until the node reports up.
func (n *Node) WaitUp(d time.Duration) error {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if n.Status() == "up" {
			return nil
		}
	}
	return fmt.Errorf("%s not up within %v", n.Base, d)
}

// ProcKB reads a line of the node's /proc status (VmRSS, VmHWM), in KiB;
// -1 when it cannot.
func (n *Node) ProcKB(field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", n.Cmd.Process.Pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			v, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return v
		}
	}
	return -1
}

// CPUModel is the machine's CPU model, from /proc/cpuinfo.
func CPUModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}
