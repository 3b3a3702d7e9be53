package benchmarks

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/server"
	"github.com/artemis-go/artemis/server/servertest"
)

// Push fan-out: one op is one register over HTTP until every subscriber of
// the service has read its frame. ns/frame is that time over the
// subscribers. BenchmarkLoopbackFanout is the floor under it: the same
// number of 300-byte writes to loopback TCP sockets, read by as many
// goroutines, with no HTTP, no WebSocket and no registry.

func BenchmarkPushFanout(b *testing.B) {
	for _, lib := range server.WSLibraries {
		for _, subs := range []int{100, 1000} {
			b.Run(lib+"/subscribers="+strconv.Itoa(subs), func(b *testing.B) { pushFanout(b, lib, subs) })
		}
	}
}

func pushFanout(b *testing.B, lib string, subs int) {
	node := servertest.Start(b, core.Config{LeaseTTL: time.Hour}, server.Config{Push: server.PushConfig{Library: lib}})
	b.Cleanup(http.DefaultClient.CloseIdleConnections)
	var frames sync.WaitGroup
	ws := "ws" + strings.TrimPrefix(node.URL, "http") + "/ws/discovery/instance-change"
	for range subs {
		conn, _, err := websocket.DefaultDialer.Dial(ws, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"serviceId":"push-svc"}`)); err != nil {
			b.Fatal(err)
		}
		go func() {
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					return
				}
				frames.Done()
			}
		}()
	}
	waitSubscribed(b, node, subs)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer c.CloseIdleConnections()
	b.ResetTimer()
	for i := range b.N {
		frames.Add(subs)
		id := "i-" + strconv.Itoa(i)
		post(b, c, node.URL+"/api/registry/register.json",
			[]byte(`{"instances":[{"regionId":"default","serviceId":"push-svc","instanceId":"`+id+`","url":"http://10.0.0.1:8080/`+id+`"}]}`))
		frames.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/frame")
}

// waitSubscribed waits until the server has applied every subscription
// (a frame for a service nobody follows yet would be lost).
func waitSubscribed(b *testing.B, node *servertest.Node, subs int) {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(node.URL + "/api/status/websocket.json")
		if err == nil {
			var st struct{ Connections map[string]int }
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if st.Connections["instance-change"] == subs {
				time.Sleep(50 * time.Millisecond) // the subscribe message follows the upgrade
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("the server did not count %d subscribers", subs)
		}
	}
}

func BenchmarkLoopbackFanout(b *testing.B) {
	const subs = 1000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var frames sync.WaitGroup
	writers := make([]net.Conn, 0, subs)
	for range subs {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close(); s.Close() })
		writers = append(writers, s)
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
				frames.Done()
			}
		}()
	}
	msg := make([]byte, 300)
	n := runtime.GOMAXPROCS(0)
	b.ResetTimer()
	for range b.N {
		frames.Add(subs)
		var wg sync.WaitGroup
		for w := range n {
			wg.Go(func() {
				for i := w; i < subs; i += n {
					writers[i].Write(msg)
				}
			})
		}
		wg.Wait()
		frames.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/frame")
}

// BenchmarkLoopbackWrite is one 300-byte write(2), the unit of a push's
// fan-out: to loopback TCP sockets whose peers drain them, one goroutine
// each (sink=tcp; sockets=1000 writes to 1,000 sockets in turn, as a fan-out
// does), and to /dev/null (sink=devnull: the system call alone). The
// difference is the TCP stack's cost per frame.
func BenchmarkLoopbackWrite(b *testing.B) {
	msg := make([]byte, 300)
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("sink=tcp/sockets=%d", n), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			var readers sync.WaitGroup
			writers := make([]net.Conn, n)
			for i := range writers {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				if writers[i], err = ln.Accept(); err != nil {
					b.Fatal(err)
				}
				readers.Go(func() {
					defer c.Close()
					buf := make([]byte, 64<<10)
					for {
						if _, err := c.Read(buf); err != nil {
							return
						}
					}
				})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := writers[i%n].Write(msg); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			for _, w := range writers {
				w.Close()
			}
			readers.Wait()
		})
	}
	b.Run("sink=devnull", func(b *testing.B) {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := f.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
