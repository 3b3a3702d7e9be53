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
// Changes are immutable once published; callers must not modify them.
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

	enc atomic.Pointer[[]byte]
}

// JSON returns the change encoded as an InstanceChange (a reload as
// {"changeType":"reload","changeTime":...,"instance":{"serviceId":...,
// "instanceId":"reload"}}). It is encoded once,
// on first use, and the same bytes are returned to every caller.
func (c *Change) JSON() []byte {
	if b := c.enc.Load(); b != nil {
		return *b
	}
	var tmp [1024]byte
	enc := appendChange(tmp[:0], c)
	b := make([]byte, len(enc)) // exact size: the log may retain it for long
	copy(b, enc)
	if !c.enc.CompareAndSwap(nil, &b) {
		return *c.enc.Load() // a concurrent first call won: every caller gets the same bytes
	}
	return b
}

// changeEnvelopeMax is the most an InstanceChange adds around its record's
// JSON (appendChange): the longest type name and an int64 time.
const changeEnvelopeMax = len(`{"changeType":"`) + len("change") + len(`","changeTime":`) + 20 + len(`,"instance":`) + len(`}`)

// changeEntryOverhead is what a log entry costs besides its record's
// variable parts: the Change, the lease allocation that holds every Record
// (a record is always a lease's rec0, see register), the encoded change's
// slice header, and the ring slot.
var changeEntryOverhead = allocSize(int64(unsafe.Sizeof(Change{}))) + allocSize(int64(unsafe.Sizeof(lease{}))) +
	allocSize(int64(unsafe.Sizeof([]byte(nil)))) + int64(unsafe.Sizeof((*Change)(nil)))

// allocSize bounds the heap the allocator takes for an object of n bytes:
// its size classes waste at most an eighth up to 32 KiB, and larger objects
// take whole 8 KiB pages.
func allocSize(n int64) int64 {
	if n <= 32<<10 {
		return n + n/8
	}
	return (n + 8<<10 - 1) &^ (8<<10 - 1)
}

// entrySize is the bytes a change of rec costs the change log, counted
// against Config.ChangeLogBytes: an upper bound of the heap the entry keeps
// alive. The record's JSON counts twice: once in the record and once in the
// change's own encoding (Change.JSON, the record's JSON in an envelope),
// made on first use and kept with the change. Then come the unescaped
// values a record keeps beside its JSON, its metadata spans when they did
// not fit in the record, and the fixed overhead. It depends on the
// immutable record only, so dropping an entry subtracts what appending it
// added.
func entrySize(rec *Record) int64 {
	if rec == nil {
		return changeEntryOverhead
	}
	n := allocSize(int64(cap(rec.json))) + allocSize(int64(len(rec.json)+changeEnvelopeMax)) + changeEntryOverhead
	if len(rec.extra) > 0 {
		n += allocSize(int64(len(rec.extra)))
	}
	if len(rec.meta) > len(rec.metaBuf) {
		n += allocSize(int64(cap(rec.meta)) * int64(unsafe.Sizeof(fieldSpan{})))
	}
	return n
}

// changeLog is a ring of changes with a monotonically increasing version,
// bounded by count, by bytes (entrySize) and by age. Versions start at the
// node's start time in microseconds, so a restarted node never reissues a
// version a client saw before the restart.
type changeLog struct {
	mu       sync.RWMutex
	ring     []*Change     // guarded by mu
	head     int           // index of the oldest entry; guarded by mu
	n        int           // entries in the ring; guarded by mu
	bytes    int64         // entrySize of the entries in the ring; guarded by mu
	version  atomic.Int64  // last issued version; written under mu
	notify   chan struct{} // closed on the next append; guarded by mu
	maxAge   int64         // ms
	maxBytes int64
}

func (c *changeLog) init(size int, maxBytes, maxAgeMs, startVersion int64) {
	c.ring = make([]*Change, size)
	c.maxBytes = maxBytes
	c.maxAge = maxAgeMs
	c.version.Store(startVersion)
}

func (c *changeLog) current() int64 { return c.version.Load() }

// append publishes a change and returns it. It first drops the oldest
// entries until the change fits the count and byte bounds. A change larger
// than the whole byte bound empties the log and is kept alone: the log
// always holds the newest change, and exceeds the bound by less than that
// one entry (at most one record, about 250 KB).
func (c *changeLog) append(t ChangeType, serviceID string, rec *Record, now int64) *Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := &Change{Version: c.version.Load() + 1, Type: t, Time: now, ServiceID: serviceID, Record: rec}
	size := entrySize(rec)
	for c.n == len(c.ring) || c.n > 0 && c.bytes+size > c.maxBytes {
		c.dropOldestLocked()
	}
	c.ring[(c.head+c.n)%len(c.ring)] = ch
	c.n++
	c.bytes += size
	c.version.Store(ch.Version)
	c.trimLocked(now)
	if c.notify != nil {
		close(c.notify)
		c.notify = nil
	}
	return ch
}

// dropOldestLocked drops the oldest entry. The caller holds mu and the log
// is not empty.
func (c *changeLog) dropOldestLocked() {
	c.bytes -= entrySize(c.ring[c.head].Record)
	c.ring[c.head] = nil
	c.head = (c.head + 1) % len(c.ring)
	c.n--
}

func (c *changeLog) trim(now int64) {
	c.mu.Lock()
	c.trimLocked(now)
	c.mu.Unlock()
}

// trimLocked drops entries older than maxAge. The caller holds mu.
func (c *changeLog) trimLocked(now int64) {
	for c.n > 0 && now-c.ring[c.head].Time > c.maxAge {
		c.dropOldestLocked()
	}
}

// stats returns the log's retention.
func (c *changeLog) stats() ChangeLogStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return ChangeLogStats{Entries: c.n, Bytes: c.bytes, MaxEntries: len(c.ring), MaxBytes: c.maxBytes}
}

// since appends the changes after version v to dst and returns them with the
// version they bring the caller to.
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
	oldest := c.ring[c.head].Version
	if v < oldest-1 {
		return dst, cur, ErrVersionUnavailable
	}
	for i := int(v - oldest + 1); i < c.n; i++ {
		dst = append(dst, c.ring[(c.head+i)%len(c.ring)])
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
