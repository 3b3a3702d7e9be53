// Command hostile plays the hostile clients of the review of issue 10
// against a node it starts itself (bin/artemis on a loopback port) and
// reports what the node held: peak RSS, heap after a collection, answers.
// Every attack is bounded in count and time and only targets 127.0.0.1.
//
//	go run ./cmd/hostile -bin bin/artemis            # every scenario
//	go run ./cmd/hostile -bin bin/artemis -scenario ws
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/artemis-go/artemis/cmd/internal/nodeproc"
)

func main() {
	bin := flag.String("bin", "bin/artemis", "the artemis binary to start")
	scenario := flag.String("scenario", "all", "gzip, lookup, status, ws or all")
	flag.Parse()
	fmt.Printf("hostile: %s, %d cores (%s), %s\n", *bin, runtime.NumCPU(), nodeproc.CPUModel(), time.Now().UTC().Format(time.RFC3339))
	for _, sc := range []struct {
		name string
		run  func(n *node) error
	}{{"gzip", gzipBombs}, {"lookup", lookupRepeats}, {"status", statusFlood}, {"ws", idleSessions}} {
		if *scenario != "all" && *scenario != sc.name {
			continue
		}
		n, err := start(*bin)
		if err != nil {
			fail(err)
		}
		err = sc.run(n)
		n.Stop()
		if err != nil {
			fail(fmt.Errorf("%s: %w", sc.name, err))
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "hostile:", err)
	os.Exit(1)
}

// node is a started artemis server.
type node struct{ *nodeproc.Node }

func start(bin string) (*node, error) {
	addrs, err := nodeproc.FreeAddrs(1)
	if err != nil {
		return nil, err
	}
	n, err := nodeproc.Start(bin, addrs[0], "--pprof", "--log-level", "error", "--store", "memory")
	if err != nil {
		return nil, err
	}
	return &node{n}, nil
}

// heapAfterGC forces collections in the node (pprof's heap?gc=1; two, so
// that pools' victim caches are emptied too) and returns its heap in use.
func (n *node) heapAfterGC() (int64, error) {
	for range 2 {
		if err := get(n.Base+"/debug/pprof/heap?gc=1", io.Discard); err != nil {
			return 0, err
		}
	}
	var b bytes.Buffer
	if err := get(n.Base+"/metrics", &b); err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("no go_memstats_heap_inuse_bytes in /metrics")
}

func get(url string, w io.Writer) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

func post(c *http.Client, url string, body []byte, gz bool) (int, string, int, error) {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st struct{ ResponseStatus struct{ ErrorCode string } }
	json.Unmarshal(b, &st)
	return resp.StatusCode, st.ResponseStatus.ErrorCode, len(b), nil
}

func register(n *node, service string, count int) error {
	var b strings.Builder
	b.WriteString(`{"instances":[`)
	for i := range count {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"regionId":"default","serviceId":%q,"instanceId":"i-%d","ip":"10.0.%d.%d","port":8080,"url":"http://10.0.0.1:8080/api","status":"up","metadata":{"version":"1.2.3","idc":"sha-a"}}`,
			service, i, i/256, i%256)
	}
	b.WriteString(`]}`)
	code, ec, _, err := post(http.DefaultClient, n.Base+"/api/registry/register.json", []byte(b.String()), false)
	if err != nil || code != 200 || ec != "success" {
		return fmt.Errorf("cannot register %d instances of %s: %d %s %v", count, service, code, ec, err)
	}
	return nil
}

// gzipBombs: 40 concurrent gzip bodies of ~32 KB that each inflate to
// ~33 MB (over the 32 MiB cap).
func gzipBombs(n *node) error {
	const clients, inflated = 40, 33 << 20
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	zw.Write([]byte(`{"instances":[`))
	pad := bytes.Repeat([]byte(" "), 1<<20)
	for range inflated >> 20 {
		zw.Write(pad)
	}
	zw.Write([]byte(`]}`))
	zw.Close()
	before := n.ProcKB("VmHWM")
	codes := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	startAt := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, ec, _, err := post(&http.Client{Timeout: 30 * time.Second}, n.Base+"/api/registry/register.json", z.Bytes(), true)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes["error: "+err.Error()]++
				return
			}
			codes[strconv.Itoa(code)+" "+ec]++
		}()
	}
	wg.Wait()
	fmt.Printf("gzip: %d concurrent bodies of %d KB inflating to %d MB in %v: answers %v; peak RSS %d MiB before, %d MiB after\n",
		clients, z.Len()>>10, inflated>>20, time.Since(startAt).Round(time.Millisecond), codes, before>>10, n.ProcKB("VmHWM")>>10)
	return nil
}

// lookupRepeats: one 1,000-instance service named 20,000 times in one
// lookup, then named 1,000 times (the cap).
func lookupRepeats(n *node) error {
	if err := register(n, "big-service", 1000); err != nil {
		return err
	}
	for _, times := range []int{20_000, 1_000} {
		body := `{"discoveryConfigs":[` + strings.Repeat(`{"serviceId":"big-service"},`, times-1) + `{"serviceId":"big-service"}]}`
		before := n.ProcKB("VmHWM")
		code, ec, size, err := post(http.DefaultClient, n.Base+"/api/discovery/lookup.json", []byte(body), false)
		if err != nil {
			return err
		}
		fmt.Printf("lookup: one 1,000-instance service named %d times (%d KB request): HTTP %d %s, answer %d KB; peak RSS %d MiB before, %d MiB after\n",
			times, len(body)>>10, code, ec, size>>10, before>>10, n.ProcKB("VmHWM")>>10)
	}
	return nil
}

// statusFlood: one client floods config.json for 5 s while another polls
// node.json and up-registry-nodes.json, and a third reads config.json.
func statusFlood(n *node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	flooder := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var flood, floodLimited atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, ec, _, err := post(flooder, n.Base+"/api/status/config.json", nil, false)
				if err == nil {
					flood.Add(1)
					if ec == "rate-limited" {
						floodLimited.Add(1)
					}
				}
			}
		}()
	}
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	results := map[string]map[string]int{}
	for ctx.Err() == nil {
		for _, p := range []string{"/api/status/node.json", "/api/cluster/up-registry-nodes.json"} {
			_, ec, _, err := post(flooder, n.Base+p, nil, false)
			if err != nil {
				return err
			}
			if results[p] == nil {
				results[p] = map[string]int{}
			}
			results[p][ec]++
		}
		_, ec, _, err := post(other, n.Base+"/api/status/config.json", nil, false)
		if err != nil {
			return err
		}
		if results["config.json from 127.0.0.2"] == nil {
			results["config.json from 127.0.0.2"] = map[string]int{}
		}
		results["config.json from 127.0.0.2"][ec]++
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	fmt.Printf("status: flood of %d config.json requests from 127.0.0.1 (%d rate-limited); meanwhile %v\n", flood.Load(), floodLimited.Load(), results)
	return nil
}

// idleSessions: 40 heartbeat sessions each send one 7 MB message, then
// idle; heap per session after a collection, against the same sessions
// before their large message.
func idleSessions(n *node) error {
	const sessions, size = 40, 7 << 20
	if err := register(n, "svc", 1); err != nil {
		return err
	}
	hb := `{"instances":[{"regionId":"default","serviceId":"svc","instanceId":"i-0"}]`
	big := []byte(hb + strings.Repeat(" ", size) + "}")
	small := []byte(hb + "}")
	heap0, err := n.heapAfterGC()
	if err != nil {
		return err
	}
	conns := make([]*websocket.Conn, sessions)
	for i := range conns {
		c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(n.Base, "http")+"/ws/registry/heartbeat", nil)
		if err != nil {
			return err
		}
		defer c.Close()
		conns[i] = c
	}
	roundTrip := func(c *websocket.Conn, msg []byte) error {
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, answer, err := c.ReadMessage()
		if err == nil && !bytes.Contains(answer, []byte(`"success"`)) {
			err = fmt.Errorf("heartbeat answered %s", answer)
		}
		return err
	}
	for _, c := range conns {
		if err := roundTrip(c, small); err != nil {
			return err
		}
	}
	heap1, err := n.heapAfterGC()
	if err != nil {
		return err
	}
	for _, c := range conns {
		if err := roundTrip(c, big); err != nil {
			return err
		}
		if err := roundTrip(c, small); err != nil { // and a small one after it
			return err
		}
	}
	heap2, err := n.heapAfterGC()
	if err != nil {
		return err
	}
	fmt.Printf("ws: %d idle heartbeat sessions: heap %d KiB per session after small messages, %d KiB per session after one %d MB message each (heap %d -> %d -> %d MiB)\n",
		sessions, (heap1-heap0)/sessions>>10, (heap2-heap0)/sessions>>10, size>>20, heap0>>20, heap1>>20, heap2>>20)
	return nil
}
