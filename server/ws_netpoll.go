package server

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/network"
	hnetpoll "github.com/cloudwego/hertz/pkg/network/netpoll"
	"github.com/cloudwego/hertz/pkg/protocol"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// The default transport: the handshake is answered by a plain Hertz handler
// and the connection taken over with ctx.Hijack; frames are read with
// gobwas/ws and written straight into netpoll's output buffer. No net/http
// request, no bufio buffers and no second goroutine per idle session; a
// change's frame (header and payload) is built once by the hub and the same
// bytes are written to every subscriber.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// checkUpgrade validates a WebSocket opening handshake (RFC 6455 §4.2.1)
// and returns the client's key, or why the request is refused.
func checkUpgrade(h *protocol.RequestHeader) (key []byte, why string) {
	if !headerHasToken(h.Peek("Connection"), "upgrade") || !headerHasToken(h.Peek("Upgrade"), "websocket") {
		return nil, "this path speaks WebSocket: the request must ask for a websocket upgrade"
	}
	if string(h.Peek("Sec-WebSocket-Version")) != "13" {
		return nil, "unsupported Sec-WebSocket-Version (13 is supported)"
	}
	key = h.Peek("Sec-WebSocket-Key")
	// 16 bytes are 24 in base64; checked before decoding, so that a long
	// key cannot overrun the buffer.
	var raw [18]byte
	if len(key) != 24 {
		return nil, "Sec-WebSocket-Key is not 16 bytes in base64"
	}
	if n, err := base64.StdEncoding.Decode(raw[:], key); err != nil || n != 16 {
		return nil, "Sec-WebSocket-Key is not 16 bytes in base64"
	}
	return key, ""
}

// acceptUpgrade checks the handshake of c and answers 400 bad-request
// (both transports alike) when it is refused.
func acceptUpgrade(c *app.RequestContext) (key []byte, ok bool) {
	key, why := checkUpgrade(&c.Request.Header)
	if why != "" {
		c.Response.Header.Set("Sec-WebSocket-Version", "13")
		writeJSON(c, 400, statusOnly{failStatus(codeBadRequest, why)})
		return nil, false
	}
	return key, true
}

// headerHasToken reports whether a comma-separated header holds token.
func headerHasToken(v []byte, token string) bool {
	for part := range strings.SplitSeq(string(v), ",") {
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}

// AcceptKey is the Sec-WebSocket-Accept answer to a client's
// Sec-WebSocket-Key (RFC 6455 §4.2.2).
func AcceptKey(key []byte) string {
	sum := sha1.Sum(append(append(make([]byte, 0, len(key)+len(wsGUID)), key...), wsGUID...))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func (s *Server) netpollHandler(kind int) app.HandlerFunc {
	return func(_ context.Context, c *app.RequestContext) {
		key, ok := acceptUpgrade(c)
		if !ok {
			return
		}
		c.SetStatusCode(101)
		c.Response.Header.Set("Upgrade", "websocket")
		c.Response.Header.Set("Connection", "Upgrade")
		c.Response.Header.Set("Sec-WebSocket-Accept", AcceptKey(key))
		c.Response.Header.SetNoDefaultContentType(true)
		// The connection itself, not the handle Hijack passes: that handle
		// is pooled and reused once the hijack handler returns (a session
		// may still be closing it then), and its Close does nothing.
		conn := c.GetConn()
		c.Hijack(func(network.Conn) {
			tr := newNetpollTransport(conn, s.hub.cfg.WriteWait)
			ss := s.hub.newSession(kind, tr)
			ss.cell = s.hub.clientCell(conn.RemoteAddr())
			s.hub.add(ss)
			defer s.hub.remove(ss)
			s.readFrames(ss, conn, conn.SetReadDeadline)
			ss.close(0, "")
			// Hertz closes and frees conn when this returns: no write may
			// be in flight or start later, and no shutdown may reach its
			// file descriptor once the number can be reused.
			ss.wmu.Lock()
			tr.release()
			ss.wmu.Unlock()
		})
	}
}

// readFrames reads client messages from src until it fails or the client
// closes; pings are answered and a close is echoed here. Every frame moves
// the read deadline PongWait ahead.
func (s *Server) readFrames(ss *session, src io.Reader, setReadDeadline func(time.Time) error) {
	wait := s.hub.cfg.PongWait
	limit := int64(s.cfg.MaxBodyBytes)
	control := ss.control
	rd := &wsutil.Reader{Source: src, State: ws.StateServerSide, CheckUTF8: true, MaxFrameSize: limit,
		OnIntermediate: control}
	var buf []byte
	for {
		setReadDeadline(time.Now().Add(wait))
		hdr, err := rd.NextFrame()
		if errors.Is(err, wsutil.ErrFrameTooLarge) {
			ss.end(closeMessageTooBig, "message too big")
			return
		}
		if err != nil {
			return
		}
		if hdr.OpCode.IsControl() {
			if err := control(hdr, rd); err != nil {
				return // a close frame (answered) or a failed write
			}
			releaseInput(src)
			continue
		}
		// The whole message, its fragments joined, up to the body cap.
		buf, err = readMessage(rd, buf[:0], limit)
		if err != nil {
			if errors.Is(err, errMessageTooBig) {
				ss.end(closeMessageTooBig, "message too big")
			}
			return
		}
		if out := s.onMessage(ss, buf); out != nil && !ss.answer(out) {
			return
		}
		if cap(buf) > keptMessageBuffer {
			buf = nil // an idle session must not keep its largest message
		}
		releaseInput(src)
	}
}

// releaseInput lets a netpoll connection whose input is drained drop the
// buffer node its last read left at its tail: netpoll's Read never does,
// and once a large message has grown the connection's read size, every
// later frame (a pong) is read into a node that large. Called after each
// frame, an idle session holds no input buffer at all.
func releaseInput(src io.Reader) {
	if c, ok := src.(interface {
		Len() int
		Release() error
	}); ok && c.Len() == 0 {
		c.Release()
	}
}

// keptMessageBuffer is the largest message buffer a session keeps between
// messages; a larger one is dropped once its message is handled.
const keptMessageBuffer = 64 << 10

var errMessageTooBig = errors.New("message too big")

// readMessage appends the rest of the current message to buf.
func readMessage(r io.Reader, buf []byte, limit int64) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, errMessageTooBig
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// rawWriter is a transport that can write bytes already framed.
type rawWriter interface {
	writeRaw(p []byte) error
}

var errClientClosed = errors.New("client closed the session")

// control answers a control frame whose (unmasked) payload r holds: a
// ping gets a pong, a close is echoed (or answered 1002 when malformed)
// and ends the session. Each answer is one write under the session's
// write lock, so it never splits around a change frame.
func (ss *session) control(h ws.Header, r io.Reader) error {
	p := make([]byte, h.Length) // at most 125 bytes: the reader checks control headers
	if _, err := io.ReadFull(r, p); err != nil {
		return err
	}
	var answer ws.Frame
	switch h.OpCode {
	case ws.OpPing:
		answer = ws.NewPongFrame(p)
	case ws.OpClose:
		answer = ws.NewCloseFrame(nil)
		if len(p) > 0 {
			code, reason := ws.ParseCloseFrameData(p)
			if err := ws.CheckCloseFrameData(code, reason); err != nil || len(p) < 2 {
				answer = ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusProtocolError, "malformed close frame"))
			} else {
				answer = ws.NewCloseFrame(p[:2]) // the code echoed
			}
		}
	default: // pong
		return nil
	}
	ss.wmu.Lock()
	err := ss.tr.(rawWriter).writeRaw(ws.MustCompileFrame(answer))
	ss.wmu.Unlock()
	if err == nil && h.OpCode == ws.OpClose {
		err = errClientClosed
	}
	return err
}

type netpollTransport struct {
	conn      network.Conn
	fd        int // -1 when the connection is not netpoll's
	writeWait time.Duration

	mu       sync.Mutex
	released bool // conn is Hertz's again; set with the session's wmu held
}

func newNetpollTransport(conn network.Conn, writeWait time.Duration) *netpollTransport {
	t := &netpollTransport{conn: conn, fd: -1, writeWait: writeWait}
	if c, ok := conn.(*hnetpoll.Conn); ok {
		if f, ok := c.Conn.(interface{ Fd() int }); ok {
			t.fd = f.Fd()
		}
	}
	return t
}

var errReleased = errors.New("websocket session ended")

func (t *netpollTransport) release() {
	t.mu.Lock()
	t.released = true
	t.mu.Unlock()
}

func (t *netpollTransport) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.released {
		return nil
	}
	if t.fd >= 0 {
		return syscall.Shutdown(t.fd, syscall.SHUT_RDWR)
	}
	return t.conn.Close() // another transport's conn: closing it concurrently is safe
}

// usable reports whether writes may go on (wmu is held by the caller).
func (t *netpollTransport) usable() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.released
}

// TextFrame frames a text message as a server sends it (unmasked). The hub
// frames each change once for all subscribers.
func TextFrame(payload []byte) []byte {
	n := len(payload)
	var b []byte
	switch {
	case n < 126:
		b = append(make([]byte, 0, 2+n), 0x81, byte(n))
	case n <= 0xffff:
		b = append(make([]byte, 0, 4+n), 0x81, 126, byte(n>>8), byte(n))
	default:
		b = append(make([]byte, 0, 10+n), 0x81, 127)
		for shift := 56; shift >= 0; shift -= 8 {
			b = append(b, byte(uint64(n)>>shift))
		}
	}
	return append(b, payload...)
}

var pingFrame = ws.MustCompileFrame(ws.NewPingFrame(nil))

// writeRaw copies p: netpoll may keep a reference to written bytes past
// the call, and control answers come from a pool.
func (t *netpollTransport) writeRaw(p []byte) error {
	return t.writeTexts([][]byte{append([]byte(nil), p...)})
}

func (t *netpollTransport) writeTexts(msgs [][]byte) error {
	if !t.usable() {
		return errReleased
	}
	t.conn.SetWriteDeadline(time.Now().Add(t.writeWait))
	for _, m := range msgs {
		if _, err := t.conn.WriteBinary(m); err != nil {
			return err
		}
	}
	return t.conn.Flush()
}

func (t *netpollTransport) writePing() error {
	if !t.usable() {
		return errReleased
	}
	t.conn.SetWriteDeadline(time.Now().Add(t.writeWait))
	if _, err := t.conn.WriteBinary(pingFrame); err != nil {
		return err
	}
	return t.conn.Flush()
}

func (t *netpollTransport) writeClose(code int, reason string) error {
	if !t.usable() {
		return errReleased
	}
	t.conn.SetWriteDeadline(time.Now().Add(time.Second))
	f := ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusCode(code), reason)))
	if _, err := t.conn.WriteBinary(f); err != nil {
		return err
	}
	return t.conn.Flush()
}
