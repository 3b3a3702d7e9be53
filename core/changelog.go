package core

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// ChangeType is the kind of an instance change.
type ChangeType uint8

// Change types, as named on the wire.
const (
	ChangeNew ChangeType = iota + 1
	ChangeDelete
	ChangeChange
	ChangeReload
)

// String returns the wire name of t.
func (t ChangeType) String() string {
	switch t {
	case ChangeNew:
		return "new"
	case ChangeDelete:
		return "delete"
	case ChangeChange:
		return "change"
	case ChangeReload:
		return "reload"
	}
	return "unknown"
}

// Change is one entry of the change log: the single stream of registry
// changes that answers deltas and feeds push and replication.
// Changes are immutable; callers must not modify them.
type Change struct {
	Version int64
	Type    ChangeType
	Time    int64 // epoch ms
	// ServiceID is the service's id as discovery shows it (its first
	// registration's spelling), which may differ in case from Record.ServiceID.
	ServiceID string
	// Record is the instance the change is about. For a ChangeReload it is
	// a placeholder, {"serviceId":ServiceID,"instanceId":"reload"}, whose
	// other fields are empty (contract section 2).
	Record *Record

	json []byte
}

// JSON returns the change encoded as an InstanceChange (a reload as
// {"changeType":"reload","changeTime":...,"instance":{"serviceId":...,
// "instanceId":"reload"}}). It was encoded once, when the change was
// logged; every reader of the change gets the same bytes.
func (c *Change) JSON() []byte { return c.json }

// changeEnvelopeMax is the most an InstanceChange adds around its record's
// JSON (appendChange): the longest type name and an int64 time.
const changeEnvelopeMax = len(`{"changeType":"`) + len("change") + len(`","changeTime":`) + 20 + len(`,"instance":`) + len(`}`)

// logEntry is one change in the log's ring: where its bytes are. It holds no
// pointer, and neither do the log's chunks, so the collector does not
// scan the log however many changes it keeps.
//
// An entry's bytes are a copy of the record's blob with the change's
// envelope spliced in: the record's header and metadata spans, the
// envelope's head ({"changeType":...,"instance":), the record's JSON, the
// closing '}', the record's unescaped values, padding to 8 bytes, then the
// service id. So the
// encoded change is contiguous and the record's JSON is stored once. The
// copied header's offsets are moved past the splice.
type logEntry struct {
	version int64
	time    int64
	chunk   uint32 // chunk id (see changeLog.chunks)
	off     uint32 // offset of the entry's bytes in the chunk
	size    uint32 // bytes of the entry in the chunk (a multiple of 8)
	headN   uint32 // bytes of the envelope's head
	svcN    uint32 // bytes of the service id, at the end of the entry
	cost    uint32 // what the entry counts against the byte bound (entrySize)
	typ     ChangeType
}

// logChunkSize is the size of the log's byte chunks; an entry larger than
// that gets a chunk of its own.
const logChunkSize = 1 << 20

// entryBytes is the bytes the entry of a change of rec with an envelope head
// of headN bytes and a service id of svcN bytes takes in a chunk.
func entryBytes(rec *Record, headN, svcN int) int {
	return align8(align8(int(rec.size)+headN+1) + svcN)
}

func align8(n int) int { return (n + 7) &^ 7 }

// entrySize is what a change of rec to service serviceID costs the log
// against Config.ChangeLogBytes: its bytes in a chunk, counted with the
// longest envelope it can have (so the cost depends on the record and the
// service id only), and its ring slot.
func entrySize(rec *Record, serviceID string) int64 {
	return int64(entryBytes(rec, changeEnvelopeMax, len(serviceID))) + int64(unsafe.Sizeof(logEntry{}))
}

// writeEntry writes the entry of a change of rec with envelope head head and
// service id svc into b, which has entryBytes of room.
func writeEntry(b []byte, rec *Record, head []byte, svc string) {
	blob := rec.blob()
	jsonOff, jsonEnd := int(rec.jsonOff), int(rec.jsonOff+rec.jsonN)
	n := copy(b, blob[:jsonOff])
	n += copy(b[n:], head)
	n += copy(b[n:], blob[jsonOff:jsonEnd])
	b[n] = '}'
	n++
	n += copy(b[n:], blob[jsonEnd:])
	n = align8(n)
	copy(b[n:], svc)

	h := recordAt(b)
	for i := range h.numSpans() {
		switch sp := h.spanAt(i); {
		case sp.n == 0:
		case int(sp.off) < jsonEnd:
			sp.off += uint32(len(head)) // in the JSON
			h.setSpan(i, sp)
		default:
			sp.off += uint32(len(head) + 1) // in the unescaped values
			h.setSpan(i, sp)
		}
	}
	h.jsonOff += uint32(len(head))
	h.size = uint32(n)
}

// changeLog is a ring of changes with a monotonically increasing version,
// bounded by count, by bytes (entrySize) and by age. Versions start at the
// node's start time in microseconds, so a restarted node never reissues a
// version a client saw before the restart.
//
// Each change's bytes (a copy of its record's blob, its encoding as an
// InstanceChange, its service id) are appended to the last of a FIFO of
// byte chunks; a chunk is released when its last change is dropped. The
// unused end of a chunk that could not hold the next change counts against
// the bound until the chunk is released. So the heap the log keeps is its
// counted bytes plus at most the dropped part of the oldest chunk and the
// unused part of the newest (2 MiB). Readers get Change values that point into the chunks:
// a Change keeps its chunk alive while a reader holds it.
type changeLog struct {
	mu       sync.RWMutex
	ring     []logEntry    // guarded by mu
	head     int           // index of the oldest entry; guarded by mu
	n        int           // entries in the ring; guarded by mu
	bytes    int64         // entryCost of the entries in the ring; guarded by mu
	chunks   [][]byte      // chunk id base+i is chunks[i]; guarded by mu
	waste    []int64       // unused end of chunks[i], counted in bytes; guarded by mu
	base     uint32        // guarded by mu
	fill     int           // bytes used of the last chunk; guarded by mu
	version  atomic.Int64  // last issued version; written under mu
	notify   chan struct{} // closed on the next append; guarded by mu
	maxAge   int64         // ms
	maxBytes int64
}

func (c *changeLog) init(size int, maxBytes, maxAgeMs, startVersion int64) {
	c.ring = make([]logEntry, size)
	c.maxBytes = maxBytes
	c.maxAge = maxAgeMs
	c.version.Store(startVersion)
}

func (c *changeLog) current() int64 { return c.version.Load() }

// append publishes a change of rec (the log keeps a copy, never the
// record, which would keep its arena chunk alive). It first drops the
// oldest entries until the change fits the count and byte bounds. A change
// larger than the whole byte bound empties the log and is kept alone: the
// log always holds the newest change, and exceeds the bound by less than
// that one entry (at most one record, about 115 KB).
func (c *changeLog) append(t ChangeType, serviceID string, rec *Record, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	version := c.version.Load() + 1
	var env [changeEnvelopeMax]byte
	head := appendChangeHead(env[:0], t, now)
	size := uint32(entryBytes(rec, len(head), len(serviceID)))
	cost := entrySize(rec, serviceID)
	chunk, off := c.allocLocked(int(size))
	for c.n == len(c.ring) || c.n > 0 && c.bytes+cost > c.maxBytes {
		c.dropOldestLocked()
	}
	writeEntry(chunk[off:off+int(size)], rec, head, serviceID)
	c.ring[(c.head+c.n)%len(c.ring)] = logEntry{version: version, time: now, chunk: c.base + uint32(len(c.chunks)-1),
		off: uint32(off), size: size, headN: uint32(len(head)), svcN: uint32(len(serviceID)), cost: uint32(cost), typ: t}
	c.n++
	c.bytes += cost
	c.version.Store(version)
	c.trimLocked(now)
	if c.notify != nil {
		close(c.notify)
		c.notify = nil
	}
}

// allocLocked returns the last chunk and the offset of size bytes in it,
// starting a chunk when the last one has no room. The caller holds mu.
func (c *changeLog) allocLocked(size int) ([]byte, int) {
	if len(c.chunks) == 0 || c.fill+size > len(c.chunks[len(c.chunks)-1]) {
		if n := len(c.chunks); n > 0 {
			c.waste[n-1] = int64(len(c.chunks[n-1]) - c.fill)
			c.bytes += c.waste[n-1]
		}
		c.chunks = append(c.chunks, alignedBytes(max(size, logChunkSize)))
		c.waste = append(c.waste, 0)
		c.fill = 0
	}
	off := c.fill
	c.fill += size
	return c.chunks[len(c.chunks)-1], off
}

// dropOldestLocked drops the oldest entry, and the chunks no entry uses
// any more. The caller holds mu and the log is not empty.
func (c *changeLog) dropOldestLocked() {
	c.bytes -= int64(c.ring[c.head].cost)
	c.ring[c.head] = logEntry{}
	c.head = (c.head + 1) % len(c.ring)
	c.n--
	keep := c.base + uint32(len(c.chunks)-1) // the last chunk is kept for appends
	if c.n > 0 {
		keep = c.ring[c.head].chunk
	}
	for c.base < keep {
		c.chunks[0] = nil
		c.chunks = c.chunks[1:]
		c.bytes -= c.waste[0]
		c.waste = c.waste[1:]
		c.base++
	}
}

func (c *changeLog) trim(now int64) {
	c.mu.Lock()
	c.trimLocked(now)
	c.mu.Unlock()
}

// trimLocked drops entries older than maxAge. The caller holds mu.
func (c *changeLog) trimLocked(now int64) {
	for c.n > 0 && now-c.ring[c.head].time > c.maxAge {
		c.dropOldestLocked()
	}
}

// stats returns the log's retention.
func (c *changeLog) stats() ChangeLogStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return ChangeLogStats{Entries: c.n, Bytes: c.bytes, MaxEntries: len(c.ring), MaxBytes: c.maxBytes}
}

// changeAt fills ch with entry i of the ring. The caller holds mu.
func (c *changeLog) changeAt(i int, ch *Change) {
	e := &c.ring[(c.head+i)%len(c.ring)]
	b := c.chunks[e.chunk-c.base][e.off : e.off+e.size]
	rec := recordAt(b)
	enc := b[rec.jsonOff-e.headN : rec.jsonOff+rec.jsonN+1]
	svc := b[rec.size : rec.size+e.svcN]
	*ch = Change{Version: e.version, Type: e.typ, Time: e.time, Record: rec,
		ServiceID: unsafe.String(unsafe.SliceData(svc), len(svc)), json: enc[:len(enc):len(enc)]}
}

// since appends the changes after version v to dst and returns them with the
// version they bring the caller to. The changes are allocated together,
// once per call.
func (c *changeLog) since(v int64, dst []*Change) ([]*Change, int64, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cur := c.version.Load()
	if v == cur {
		return dst, cur, nil
	}
	if v <= 0 || v > cur || c.n == 0 {
		return dst, cur, ErrVersionUnavailable
	}
	oldest := c.ring[c.head].version
	if v < oldest-1 {
		return dst, cur, ErrVersionUnavailable
	}
	first := int(v - oldest + 1)
	out := make([]Change, c.n-first)
	for i := range out {
		c.changeAt(first+i, &out[i])
		dst = append(dst, &out[i])
	}
	return dst, cur, nil
}

// wait returns a channel that is closed at the next append.
func (c *changeLog) wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.notify == nil {
		c.notify = make(chan struct{})
	}
	return c.notify
}

// Version returns the registry's current version: the version of the last
// change, or the start version when nothing has changed yet.
func (r *Registry) Version() int64 { return r.log.current() }

// ChangesSince appends to dst the changes after version v, oldest first, and
// returns them with the version they bring the caller to. It fails with
// ErrVersionUnavailable when v is zero, was never issued, or is older than
// the retained log; the caller must then reload the whole registry.
//
// Together with Wait it is the registry's change stream: a consumer keeps its
// version, reads what follows it, and waits for more.
func (r *Registry) ChangesSince(v int64, dst []*Change) ([]*Change, int64, error) {
	return r.log.since(v, dst)
}

// Wait returns a channel closed when the next change is published.
func (r *Registry) Wait() <-chan struct{} { return r.log.wait() }
