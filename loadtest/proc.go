package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ProcessStats samples a server process from /proc (Linux only).
type ProcessStats struct {
	PID        int     `json:"pid"`
	RSSBytes   int64   `json:"rssBytes"`
	CPUSeconds float64 `json:"cpuSeconds"`        // user+system over the attack
	CPUPercent float64 `json:"cpuPercent"`        // of one core, over the attack
	Threads    int     `json:"threads,omitempty"` // at the end
	VmHWMBytes int64   `json:"vmHWMBytes"`        // peak RSS
	Pinned     string  `json:"pinnedCpus,omitempty"`
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

func readRSS(pid int) (rss, hwm int64, threads int) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v << 10
		case "VmHWM:":
			hwm = v << 10
		case "Threads:":
			threads = int(v)
		}
	}
	return rss, hwm, threads
}

// readCPU returns the user+system CPU seconds of pid.
func readCPU(pid int) (float64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command name (which may hold spaces) start after ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks, err1 == nil && err2 == nil
}

// sampler measures a process's CPU over an interval.
type sampler struct {
	pid    int
	pinned string
	cpu0   float64
	t0     time.Time
}

func startSampler(pid int, pinned string) *sampler {
	if pid <= 0 {
		return nil
	}
	cpu0, ok := readCPU(pid)
	if !ok {
		return nil // gone, or /proc unreadable (a generator out of file descriptors)
	}
	return &sampler{pid: pid, pinned: pinned, cpu0: cpu0, t0: time.Now()}
}

func (s *sampler) stop() *ProcessStats {
	if s == nil {
		return nil
	}
	cpu1, ok := readCPU(s.pid)
	rss, hwm, threads := readRSS(s.pid)
	if !ok || threads == 0 {
		return nil // gone, or /proc unreadable
	}
	cpu := cpu1 - s.cpu0
	return &ProcessStats{PID: s.pid, RSSBytes: rss, VmHWMBytes: hwm, Threads: threads, CPUSeconds: cpu,
		CPUPercent: 100 * cpu / time.Since(s.t0).Seconds(), Pinned: s.pinned}
}

// child is a server process started by the generator.
type child struct {
	cmd  *exec.Cmd
	base string
	logs bytes.Buffer // read only once done is closed
	done chan struct{}
	// early is set by stop when the child had exited on its own.
	early bool
}

// startChild runs `binary args... --addr 127.0.0.1:PORT`, pinned with taskset
// when cpus is set and taskset exists, and waits until /health answers.
func startChild(ctx context.Context, binary, cpus string, args ...string) (*child, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	return startChildAt(ctx, binary, cpus, addr, args...)
}

// startChildAt is startChild on a chosen address.
func startChildAt(ctx context.Context, binary, cpus, addr string, args ...string) (*child, error) {
	argv := append(append([]string{binary}, args...), "--addr", addr)
	if cpus != "" {
		if ts, err := exec.LookPath("taskset"); err == nil {
			argv = append([]string{ts, "-c", cpus}, argv...)
		}
	}
	c := &child{base: "http://" + addr}
	if err := c.start(argv...); err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", binary, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/health", nil)
		req.Close = true // an idle keep-alive would delay the child's graceful stop
		if resp, err := http.DefaultClient.Do(req); err == nil {
			drain(resp.Body)
			if resp.StatusCode == 200 {
				return c, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.stop()
			return nil, fmt.Errorf("cannot start %v: no answer on %s:\n%s", argv, addr, c.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// start runs argv with its output kept in c.logs and closes c.done when it exits.
func (c *child) start(argv ...string) error {
	c.cmd = exec.Command(argv[0], argv[1:]...)
	c.cmd.Stdout, c.cmd.Stderr = &c.logs, &c.logs
	if err := c.cmd.Start(); err != nil {
		return err
	}
	c.done = make(chan struct{})
	go func() { c.cmd.Wait(); close(c.done) }()
	return nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM and waits up to 10 s, then kills. A child that had
// already exited is marked early.
func (c *child) stop() {
	select {
	case <-c.done:
		c.early = true
		return
	default:
	}
	c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// diedEarly is the error of a child that exited before it was stopped, with
// the end of its output; nil otherwise. Call it after stop.
func (c *child) diedEarly() error {
	if !c.early {
		return nil
	}
	out := c.logs.Bytes()
	if len(out) > 4096 {
		out = out[len(out)-4096:]
	}
	return fmt.Errorf("%v exited during the run (%v); the end of its output:\n%s", c.cmd.Args, c.cmd.ProcessState, out)
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cannot find a free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// snapshot samples pid's RSS and threads and the go_goroutines gauge of the
// server at base (-1 if it exports none).
func snapshot(ctx context.Context, base string, pid int) *Snapshot {
	if pid <= 0 {
		return nil
	}
	rss, _, threads := readRSS(pid)
	return &Snapshot{RSSBytes: rss, Threads: threads, Goroutines: scrapeGauge(ctx, base+"/metrics", "go_goroutines")}
}

// serverGCs starts counting the server's garbage collections (from its
// /metrics: the registry's Prometheus Go collector, the no-op's own line);
// the returned function gives the count since, or -1 when unknown.
func serverGCs(ctx context.Context, base string) func() int {
	const name = "go_gc_duration_seconds_count"
	before := scrapeGauge(ctx, base+"/metrics", name)
	return func() int {
		after := scrapeGauge(ctx, base+"/metrics", name)
		if before < 0 || after < 0 {
			return -1
		}
		return after - before
	}
}

// scrapeGauge reads one unlabelled gauge from a Prometheus text endpoint.
func scrapeGauge(ctx context.Context, url, name string) int {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int(f)
			}
		}
	}
	return -1
}
