package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func dialRaw(t *testing.T, base string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c (a read ends with EOF
// or a reset) within d.
func closedByServer(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// A client that drips its request header a byte at a time (each read well
// inside ReadTimeout) is disconnected once RequestReadTimeout has passed
// since its first byte; an idle keep-alive connection is not.
func TestSlowRequestDisconnected(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s, base := startLoopback(t, Config{RequestReadTimeout: timeout})
	idle := dialRaw(t, base)
	slow := dialRaw(t, base)
	header := "GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: " + strings.Repeat("a", 200) + "\r\n\r\n"
	closed := false
	// The whole header would take 200 x 20 ms = 4 s to drip.
	for i := 0; i < len(header) && !closed; i++ {
		if _, err := slow.Write([]byte{header[i]}); err != nil {
			closed = true
			break
		}
		closed = closedByServer(slow, 20*time.Millisecond)
	}
	if !closed {
		t.Fatal("a request dripped a byte every 20 ms was read to its end; want the connection closed after RequestReadTimeout")
	}
	if n := s.conns.timedOut.Load(); n != 1 {
		t.Fatalf("unexpected timed-out count %d; want 1", n)
	}
	// The idle connection, older than the timeout, still serves a request.
	idle.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(idle).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("an idle connection answered %q, %v; want 200", line, err)
	}
}

// A chunked body dripped a chunk at a time (each consumed at once, so the
// input buffer is empty between drips), and a body that never starts after
// its header, are cut after RequestReadTimeout too; so is the second
// request of a kept-alive connection.
func TestSlowBodiesDisconnected(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s, base := startLoopback(t, Config{RequestReadTimeout: timeout})
	drip := func(head string, chunk string) bool {
		c := dialRaw(t, base)
		c.Write([]byte(head))
		for range 60 { // 3 s of drips
			if closedByServer(c, 50*time.Millisecond) {
				return true
			}
			if chunk != "" {
				if _, err := c.Write([]byte(chunk)); err != nil {
					return true
				}
			}
		}
		return false
	}
	post := "POST /api/registry/register.json HTTP/1.1\r\nHost: x\r\n"
	if !drip(post+"Transfer-Encoding: chunked\r\n\r\n", "1\r\n \r\n") {
		t.Fatal("a chunked body dripped a chunk every 50 ms was read for 3 s")
	}
	if !drip(post+"Content-Length: 100\r\n\r\n", "") {
		t.Fatal("a header whose body never came kept its connection for 3 s")
	}
	// The second request of a kept-alive connection: served, then dripped.
	c := dialRaw(t, base)
	c.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("first request answered %q, %v", line, err)
	}
	time.Sleep(2 * timeout) // idle between requests does not count
	closed := false
	for _, b := range []byte("GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n") {
		if _, err := c.Write([]byte{b}); err != nil || closedByServer(c, 50*time.Millisecond) {
			closed = true
			break
		}
	}
	if !closed {
		t.Fatal("a dripped second request on a kept-alive connection was read to its end")
	}
	if n := s.conns.timedOut.Load(); n != 3 {
		t.Fatalf("unexpected timed-out count %d; want 3", n)
	}
}

// At most MaxConnections connections are open: one more is closed as soon
// as it is accepted, and a closed connection frees its place.
func TestMaxConnections(t *testing.T) {
	const limit = 3
	s, base := startLoopback(t, Config{MaxConnections: limit})
	waitFor(t, func() bool { return s.conns.open.Load() == 0 }, "the start-up probe's connection closed")
	var conns []net.Conn
	for range limit {
		conns = append(conns, dialRaw(t, base))
	}
	waitFor(t, func() bool { return s.conns.open.Load() == limit }, "the connections counted")
	over := dialRaw(t, base)
	if !closedByServer(over, 5*time.Second) {
		t.Fatal("a connection over MaxConnections stayed open")
	}
	if n := s.conns.refused.Load(); n != 1 {
		t.Fatalf("unexpected refused count %d; want 1", n)
	}
	for _, c := range conns { // every connection within the limit serves
		c.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("a connection within the limit answered %q, %v", line, err)
		}
	}
	conns[0].Close()
	waitFor(t, func() bool { return s.conns.open.Load() == limit-1 }, "the closed connection uncounted")
	again := dialRaw(t, base)
	again.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
	again.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(again); err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 200") {
		t.Fatalf("a connection after one closed answered %q, %v", b, err)
	}
}
