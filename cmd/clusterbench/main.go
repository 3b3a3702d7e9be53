// Command clusterbench measures an Artemis cluster of bin/artemis processes
// it starts on loopback:
//
//	go run ./cmd/clusterbench -scenario lag  -rate 2000 -duration 20s
//	go run ./cmd/clusterbench -scenario sync -instances 1000000
//	go run ./cmd/clusterbench -scenario pullout -store postgres://... -rounds 200
//
// lag: registers new instances on node A at -rate for -duration and times
// each until node B pushes it (register on A -> visible on B; push comes
// after B applied it, so this bounds service.json visibility from above).
// sync: seeds node A with -instances, starts node B as its peer and times
// B's startup sync (start to "up"), with both nodes' RSS.
// pullout: two nodes sharing one management store; an instance is pulled
// out and in on A, -rounds times, and each change is timed until A's and
// B's service.json show it.
// Every load is bounded in time and targets 127.0.0.1 only.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/artemis-go/artemis/cmd/internal/nodeproc"
)

func main() {
	bin := flag.String("bin", "bin/artemis", "the artemis binary")
	scenario := flag.String("scenario", "lag", "lag or sync")
	rate := flag.Int("rate", 2000, "lag: registrations per second")
	duration := flag.Duration("duration", 20*time.Second, "lag: how long to register")
	instances := flag.Int("instances", 1_000_000, "sync: instances seeded on the first node")
	storeDSN := flag.String("store", "", "pullout: the store both nodes share (default: a SQLite file in a temporary folder)")
	rounds := flag.Int("rounds", 100, "pullout: pull-out and pull-in rounds")
	flag.Parse()
	fmt.Printf("clusterbench %s: %d cores (%s), %s\n", *scenario, runtime.NumCPU(), nodeproc.CPUModel(), time.Now().UTC().Format(time.RFC3339))
	var err error
	switch *scenario {
	case "lag":
		err = lag(*bin, *rate, *duration)
	case "sync":
		err = syncCopy(*bin, *instances)
	case "pullout":
		err = pullOut(*bin, *storeDSN, *rounds)
	default:
		err = fmt.Errorf("unknown scenario %q", *scenario)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		os.Exit(1)
	}
}

type node struct{ *nodeproc.Node }

func freeAddrs(n int) []string {
	addrs, err := nodeproc.FreeAddrs(n)
	if err != nil {
		panic(err)
	}
	return addrs
}

func start(bin, addr string, peers []string, extra ...string) (*node, error) {
	args := append([]string{"--node-url", "http://" + addr, "--peers", strings.Join(peers, ","),
		"--log-level", "warn", "--rate-limit-register", "0", "--store", "memory"}, extra...)
	n, err := nodeproc.Start(bin, addr, args...)
	if err != nil {
		return nil, err
	}
	return &node{n}, nil
}

func (n *node) procMiB(field string) int64 { return n.ProcKB(field) >> 10 }

func instanceJSON(svc, id string) string {
	return `{"regionId":"default","zoneId":"default","serviceId":"` + svc + `","instanceId":"` + id +
		`","ip":"10.1.2.3","port":8080,"url":"http://10.1.2.3:8080/api","status":"up","metadata":{"version":"1.2.3","idc":"sha-a"}}`
}

func post(c *http.Client, url, body string) error {
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"errorCode":"success"`)) {
		return fmt.Errorf("%s answered %d %.200s", url, resp.StatusCode, b)
	}
	return nil
}

// lag registers new instances on A at rate and times each until B pushes it.
func lag(bin string, rate int, duration time.Duration) error {
	addrs := freeAddrs(2)
	peers := []string{"http://" + addrs[0], "http://" + addrs[1]}
	var nodes []*node
	for _, a := range addrs {
		n, err := start(bin, a, peers)
		if err != nil {
			return err
		}
		defer n.Stop()
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		if err := n.WaitUp(30 * time.Second); err != nil {
			return err
		}
	}
	a, b := nodes[0], nodes[1]
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+b.Addr+"/ws/discovery/instance-change", nil)
	if err != nil {
		return err
	}
	defer ws.Close()
	ws.WriteMessage(websocket.TextMessage, []byte(`{"serviceId":"lag"}`))
	time.Sleep(200 * time.Millisecond)

	total := int(float64(rate) * duration.Seconds())
	sent := make([]atomic.Int64, total) // unix ns of each register's start
	lags := make([]time.Duration, 0, total)
	var mu sync.Mutex
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			var ch struct {
				ChangeType string
				Instance   struct{ InstanceID string }
			}
			if json.Unmarshal(msg, &ch) != nil || ch.ChangeType != "new" {
				continue
			}
			i, err := strconv.Atoi(strings.TrimPrefix(ch.Instance.InstanceID, "lag-"))
			if err != nil || i < 0 || i >= total || sent[i].Load() == 0 {
				continue
			}
			mu.Lock()
			lags = append(lags, time.Duration(now-sent[i].Load()))
			done := len(lags) == total
			mu.Unlock()
			if done {
				return
			}
		}
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var errs atomic.Int64
	var next atomic.Int64
	startAt := time.Now()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				at := startAt.Add(time.Duration(i) * time.Second / time.Duration(rate))
				time.Sleep(time.Until(at))
				sent[i].Store(time.Now().UnixNano())
				if err := post(client, a.Base+"/api/registry/register.json", `{"instances":[`+instanceJSON("lag", "lag-"+strconv.Itoa(i))+`]}`); err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(startAt)
	select {
	case <-readDone:
	case <-time.After(5 * time.Second):
	}
	ws.Close()
	<-readDone
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lags)
	q := func(p float64) time.Duration {
		if len(lags) == 0 {
			return 0
		}
		return lags[min(len(lags)-1, int(p*float64(len(lags))))].Round(10 * time.Microsecond)
	}
	fmt.Printf("lag: %d registrations on A at %d/s (%.0f/s achieved, %d errors); pushed by B: %d; register->B push: p50 %v p90 %v p99 %v max %v\n",
		total, rate, float64(total)/took.Seconds(), errs.Load(), len(lags), q(0.5), q(0.9), q(0.99), q(1))
	return nil
}

// syncCopy seeds A with n instances, then times B's startup sync from it.
func syncCopy(bin string, n int) error {
	addrs := freeAddrs(2)
	peers := []string{"http://" + addrs[0], "http://" + addrs[1]}
	a, err := start(bin, addrs[0], peers, "--sync-timeout", "1s")
	if err != nil {
		return err
	}
	defer a.Stop()
	if err := a.WaitUp(30 * time.Second); err != nil {
		return err
	}
	client := &http.Client{}
	seedStart := time.Now()
	const batch = 1000
	var body strings.Builder
	for i := 0; i < n; i += batch {
		body.Reset()
		body.WriteString(`{"instances":[`)
		for j := i; j < min(i+batch, n); j++ {
			if j > i {
				body.WriteByte(',')
			}
			body.WriteString(instanceJSON("svc-"+strconv.Itoa(j%(n/100+1)), "i-"+strconv.Itoa(j)))
		}
		body.WriteString(`]}`)
		if err := post(client, a.Base+"/api/registry/register.json", body.String()); err != nil {
			return err
		}
	}
	seeded := time.Since(seedStart)
	rssA := a.procMiB("VmRSS")
	bStart := time.Now()
	b, err := start(bin, addrs[1], peers, "--sync-timeout", "60s")
	if err != nil {
		return err
	}
	defer b.Stop()
	if err := b.WaitUp(120 * time.Second); err != nil {
		return err
	}
	took := time.Since(bStart)
	var st struct{ LeaseCount int64 }
	resp, err := http.Get(b.Base + "/api/status/leases.json?appIds=none")
	if err == nil {
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
	}
	fmt.Printf("sync: A seeded with %d instances in %v (RSS %d MiB); B started, copied and up in %v with %d instances; RSS A %d MiB (peak %d), B %d MiB (peak %d)\n",
		n, seeded.Round(time.Millisecond), rssA, took.Round(time.Millisecond), st.LeaseCount, a.procMiB("VmRSS"), a.procMiB("VmHWM"),
		b.procMiB("VmRSS"), b.procMiB("VmHWM"))
	return nil
}

// pullOut times pull-outs and pull-ins made on A until A and B show them.
func pullOut(bin, dsn string, rounds int) error {
	if dsn == "" {
		dir, err := os.MkdirTemp("", "clusterbench-store")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dsn = "sqlite:" + dir + "/shared.db"
	}
	addrs := freeAddrs(2)
	peers := []string{"http://" + addrs[0], "http://" + addrs[1]}
	var nodes []*node
	for _, a := range addrs {
		n, err := start(bin, a, peers, "--store", dsn, "--admin-token", "bench")
		if err != nil {
			return err
		}
		defer n.Stop()
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		if err := n.WaitUp(30 * time.Second); err != nil {
			return err
		}
	}
	a, b := nodes[0], nodes[1]
	if err := post(http.DefaultClient, a.Base+"/api/registry/register.json", `{"instances":[`+instanceJSON("po", "po-1")+`]}`); err != nil {
		return err
	}
	stopBeat := make(chan struct{})
	defer close(stopBeat)
	go func() { // keep the lease alive for the whole run
		for {
			select {
			case <-stopBeat:
				return
			case <-time.After(3 * time.Second):
				post(http.DefaultClient, a.Base+"/api/registry/heartbeat.json", `{"instances":[`+instanceJSON("po", "po-1")+`]}`)
			}
		}
	}()
	shows := func(n *node) (bool, error) {
		resp, err := http.Get(n.Base + "/api/discovery/service.json?serviceId=po")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return bytes.Contains(body, []byte(`"instanceId":"po-1"`)), nil
	}
	waitShows := func(n *node, want bool) (time.Duration, error) {
		t0 := time.Now()
		for time.Since(t0) < 10*time.Second {
			got, err := shows(n)
			if err != nil {
				return 0, err
			}
			if got == want {
				return time.Since(t0), nil
			}
			time.Sleep(2 * time.Millisecond)
		}
		return 0, fmt.Errorf("%s did not show the change (shown=%v) within 10 s", n.Base, want)
	}
	for _, n := range nodes {
		if _, err := waitShows(n, true); err != nil {
			return err
		}
	}
	var onA, onB []time.Duration
	for i := range rounds * 2 {
		complete := i%2 == 1
		body := `{"instanceKey":{"regionId":"default","serviceId":"po","instanceId":"po-1"},"operation":"pullout","operationComplete":` +
			strconv.FormatBool(complete) + `,"operatorId":"bench","token":"bench"}`
		t0 := time.Now()
		if err := post(http.DefaultClient, a.Base+"/api/management/operate-instance.json", body); err != nil {
			return err
		}
		answered := time.Since(t0)
		dA, err := waitShows(a, complete)
		if err != nil {
			return fmt.Errorf("change %d on A: %w", i, err)
		}
		dB, err := waitShows(b, complete)
		if err != nil {
			return fmt.Errorf("change %d on B: %w", i, err)
		}
		onA, onB = append(onA, answered+dA), append(onB, answered+dA+dB)
	}
	q := func(ds []time.Duration, p float64) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[min(len(s)-1, int(p*float64(len(s))))].Round(10 * time.Microsecond)
	}
	store := dsn
	if i := strings.Index(store, ":"); i > 0 {
		store = store[:i]
	}
	fmt.Printf("pullout: %d pull-outs and pull-ins on A, two nodes sharing a %s store: gone/back on A p50 %v p99 %v max %v; on B p50 %v p99 %v max %v (polled every 2 ms after A)\n",
		rounds*2, store, q(onA, 0.5), q(onA, 0.99), q(onA, 1), q(onB, 0.5), q(onB, 0.99), q(onB, 1))
	return nil
}
