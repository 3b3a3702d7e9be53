package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// Gzip request bodies. Each body is inflated into a buffer of its own,
// sized from the gzip trailer (ISIZE) when that is plausible, and grown (by
// doubling, up to MaxInflatedBytes+1 to detect an overflow) only when the
// trailer lied. Every byte of those buffers is reserved from a node-wide
// budget (MaxInflatingBytes) before it is allocated and given back when the
// request releases its body, so concurrent gzip bombs cannot take more than
// the budget: a request that cannot get room within inflateWait is answered
// 503 service-unavailable.

// inflateWait is how long a gzip body waits for room in the budget.
const inflateWait = time.Second

// pooledInflateCap is the largest inflate buffer kept in a pool for reuse;
// larger ones are left to the collector so a burst of big bodies does not
// pin memory.
const pooledInflateCap = 64 << 10

// minInflateReserve is the least a body reserves, whatever its trailer says.
const minInflateReserve = 512

type inflateBudget struct {
	sem      *semaphore.Weighted
	inUse    atomic.Int64 // bytes reserved now
	refused  atomic.Int64 // bodies answered 503 for want of room
	maxBytes int64
}

func newInflateBudget(maxBytes int) *inflateBudget {
	return &inflateBudget{sem: semaphore.NewWeighted(int64(maxBytes)), maxBytes: int64(maxBytes)}
}

// reserve takes n bytes of the budget, waiting until deadline.
func (b *inflateBudget) reserve(n int, deadline time.Time) bool {
	if !b.sem.TryAcquire(int64(n)) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := b.sem.Acquire(ctx, int64(n))
		cancel()
		if err != nil {
			return false
		}
	}
	b.inUse.Add(int64(n))
	return true
}

func (b *inflateBudget) give(n int) {
	b.inUse.Add(-int64(n))
	b.sem.Release(int64(n))
}

var inflateBuffers = sync.Pool{New: func() any { b := make([]byte, 0, pooledInflateCap); return &b }}

// poisonReleased, set by tests, overwrites every inflate buffer when it is
// released, so that a use after release shows as garbage instead of
// passing while the buffer happens not to be reused.
var poisonReleased atomic.Bool

var gzipReaders sync.Pool

var errInflateBudget = errors.New("too many gzip bodies are being inflated at once; retry later")

// inflate decompresses raw into a buffer reserved from the budget. The
// caller must call release once nothing decoded from the result is in use.
func (s *Server) inflate(raw []byte) (out []byte, release func(), aerr *apiError) {
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(raw))
	} else {
		err = zr.Reset(bytes.NewReader(raw))
	}
	if err != nil {
		return nil, nil, &apiError{code: 400, msg: fmt.Sprintf("cannot read gzip body: %v", err)}
	}
	defer gzipReaders.Put(zr)

	limit := s.cfg.MaxInflatedBytes
	deadline := time.Now().Add(inflateWait)
	reserved := inflateHint(raw, limit)
	if reserved <= pooledInflateCap && limit+1 >= pooledInflateCap {
		reserved = pooledInflateCap // what a pooled buffer holds
	}
	if !s.inflating.reserve(reserved, deadline) {
		s.inflating.refused.Add(1)
		return nil, nil, &apiError{code: 503, errCode: codeServiceUnavailable, msg: errInflateBudget.Error()}
	}
	var pooled *[]byte
	var buf []byte
	if reserved == pooledInflateCap {
		pooled = inflateBuffers.Get().(*[]byte)
		buf = (*pooled)[:0]
	} else {
		buf = make([]byte, 0, reserved)
	}
	done := func() {
		if poisonReleased.Load() {
			clear(buf[:cap(buf)])
		}
		if pooled != nil && cap(buf) <= pooledInflateCap {
			*pooled = buf[:0]
			inflateBuffers.Put(pooled)
		}
		s.inflating.give(reserved)
	}
	for {
		n, err := zr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			done()
			return nil, nil, &apiError{code: 413, msg: fmt.Sprintf("inflated body exceeds the limit of %d bytes", limit)}
		}
		if err == io.EOF {
			return buf, done, nil
		}
		if err != nil {
			done()
			return nil, nil, &apiError{code: 400, msg: fmt.Sprintf("cannot inflate gzip body: %v", err)}
		}
		if len(buf) < cap(buf) {
			continue
		}
		// The trailer lied (or the body is several gzip members): grow,
		// reserving the new buffer whole while the old one is copied.
		grown := min(2*cap(buf), limit+1)
		if !s.inflating.reserve(grown, deadline) {
			done()
			s.inflating.refused.Add(1)
			return nil, nil, &apiError{code: 503, errCode: codeServiceUnavailable, msg: errInflateBudget.Error()}
		}
		nb := append(make([]byte, 0, grown), buf...)
		done()
		pooled, buf, reserved = nil, nb, grown
	}
}

// maxDeflateRatio bounds how many bytes one compressed byte can inflate to
// (deflate's limit is 1032:1), so a trailer cannot make a tiny body reserve
// much: the hint is at most that many times the body's size.
const maxDeflateRatio = 1032

// inflateHint is the buffer a gzip body first reserves: its trailer's
// ISIZE (the inflated size modulo 2^32) plus one byte, so that a body that
// fills it exactly is known to have ended, within [minInflateReserve,
// limit+1] and at most maxDeflateRatio times the body.
func inflateHint(raw []byte, limit int) int {
	hint := minInflateReserve
	if len(raw) >= 18 { // a gzip header (10) and trailer (8) at least
		hint = int(binary.LittleEndian.Uint32(raw[len(raw)-4:])) + 1
	}
	return min(max(hint, minInflateReserve), limit+1, maxDeflateRatio*len(raw)+1)
}
