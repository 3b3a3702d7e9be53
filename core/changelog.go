package core

import (
	"sync"
	"sync/atomic"
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
	Record    *Record

	enc atomic.Pointer[[]byte]
}

// JSON returns the change encoded as an InstanceChange. It is encoded once,
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

// changeLog is a bounded ring of changes with a monotonically increasing
// version. Versions start at the node's start time in microseconds, so a
// restarted node never reissues a version a client saw before the restart.
type changeLog struct {
	mu      sync.RWMutex
	ring    []*Change     // guarded by mu
	head    int           // index of the oldest entry; guarded by mu
	n       int           // entries in the ring; guarded by mu
	version atomic.Int64  // last issued version; written under mu
	notify  chan struct{} // closed on the next append; guarded by mu
	maxAge  int64         // ms
}

func (c *changeLog) init(size int, maxAgeMs, startVersion int64) {
	c.ring = make([]*Change, size)
	c.maxAge = maxAgeMs
	c.version.Store(startVersion)
}

func (c *changeLog) current() int64 { return c.version.Load() }

// append publishes a change and returns it.
func (c *changeLog) append(t ChangeType, serviceID string, rec *Record, now int64) *Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := &Change{Version: c.version.Load() + 1, Type: t, Time: now, ServiceID: serviceID, Record: rec}
	if c.n == len(c.ring) {
		c.ring[c.head] = nil
		c.head = (c.head + 1) % len(c.ring)
		c.n--
	}
	c.ring[(c.head+c.n)%len(c.ring)] = ch
	c.n++
	c.version.Store(ch.Version)
	c.trimLocked(now)
	if c.notify != nil {
		close(c.notify)
		c.notify = nil
	}
	return ch
}

func (c *changeLog) trim(now int64) {
	c.mu.Lock()
	c.trimLocked(now)
	c.mu.Unlock()
}

// trimLocked drops entries older than maxAge. The caller holds mu.
func (c *changeLog) trimLocked(now int64) {
	for c.n > 0 && now-c.ring[c.head].Time > c.maxAge {
		c.ring[c.head] = nil
		c.head = (c.head + 1) % len(c.ring)
		c.n--
	}
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
