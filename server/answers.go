package server

import (
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/artemis-go/artemis/core"
)

// The answer cache keeps, per service, the whole encoded body of
// service.json (and of a lookup.json naming that service alone) for the
// service's current snapshot. A read that finds it hands the bytes to Hertz
// with Response.SetBodyRaw, so nothing is copied per request: netpoll links
// a body over 4 KiB (BinaryInplaceThreshold) into its write buffer as a
// read-only node, never recycles it, and writes it with writev.
//
// Correctness rests on the core's snapshots being immutable: a service that
// changes gets a new *core.Snapshot, so an entry answers only the snapshot
// it was built from, compared by pointer. An entry refers to that snapshot
// through a weak pointer: the cache never keeps an old snapshot (or what
// its records live in) alive, and a collected snapshot's weak pointer
// yields nil, so a new snapshot allocated at the same address is never
// mistaken for it. A body is its own allocation, written once before it is
// published and never again: Hertz may still be writing it after the
// handler returns, and other readers share it.
//
// Bounds: an entry counts its body plus answerEntryOverhead bytes against
// the limit; an answer over an eighth of the limit is never cached. While
// there is room every miss is admitted. When there is none, a miss evicts
// the least-read of answerSamples sampled entries (entries whose snapshot
// is gone go first, for free), but live entries may be replaced by other
// services' answers for at most an eighth of the limit per second: a scan
// over more services than fit cannot turn the cache over on every request,
// and the answers it does not admit are copied, as without a cache. A
// service's entry is replaced as soon as it is read under a new snapshot;
// entries of services that changed and are no longer read are found by the
// sampling every miss does.
//
// Concurrency: the index is a sync.Map, so a hit takes no lock; mu guards
// the sampling ring, the replacement budget and the halving of read counts.

// defaultResponseCacheBytes is the default limit of the answer cache, when
// no memory limit makes a sixteenth of it smaller.
const defaultResponseCacheBytes = 64 << 20

const (
	// answerEntryOverhead is what an entry costs beside its body: the
	// entry, its index node, its weak handle and ring slot (an estimate
	// rounded up).
	answerEntryOverhead = 256
	// answerSamples entries are sampled for a victim.
	answerSamples = 5
	// answerHalving is how often read counts are halved, so that a victim
	// is one little read lately.
	answerHalving  = 10 * time.Second
	maxAnswerReads = 1 << 20
)

// Answer kinds: the wrappings a snapshot's Service object is cached in.
const (
	answerService = iota // service.json: {"responseStatus":…,"service":S}
	answerLookup         // lookup.json of one service: {"responseStatus":…,"services":[S]}
	numAnswerKinds
)

var answerFrames = [numAnswerKinds]struct{ head, tail string }{
	answerService: {string(serviceHead), "}"},
	answerLookup:  {string(servicesHead), "]}"},
}

// appendAnswer appends the body of an answer of kind for snap: the same
// bytes whether the answer is cached or copied.
func appendAnswer(dst []byte, kind int, snap *core.Snapshot) []byte {
	f := &answerFrames[kind]
	dst = append(dst, f.head...)
	dst = snap.AppendJSON(dst)
	return append(dst, f.tail...)
}

// answerSize returns len(appendAnswer(nil, kind, snap)).
func answerSize(kind int, snap *core.Snapshot) int {
	f := &answerFrames[kind]
	return len(f.head) + snap.Size() + len(f.tail)
}

type answerKey struct {
	id   string // the snapshot's ServiceID (a clone, in the index)
	kind uint8
}

type answerEntry struct {
	key   answerKey
	snap  weak.Pointer[core.Snapshot]
	body  []byte // immutable
	size  int64  // counted against the limit
	reads atomic.Uint32
	slot  int // index in answerCache.ring; guarded by answerCache.mu; -1 once removed
}

// answerCache is the bounded cache of encoded answers; a nil *answerCache
// caches nothing.
type answerCache struct {
	limit     int64
	maxAnswer int64 // larger entries are not cached
	now       func() time.Time

	index sync.Map // answerKey -> *answerEntry

	mu       sync.Mutex
	ring     []*answerEntry // guarded by mu: every entry of index, for sampling
	budget   float64        // guarded by mu: bytes of live entries replacements may still evict
	refilled time.Time      // guarded by mu: when budget was last refilled
	halved   time.Time      // guarded by mu: when read counts were last halved

	bytes   atomic.Int64 // of the entries, and of answers being built for admission
	entries atomic.Int64
	hits    atomic.Int64
	misses  atomic.Int64
	evicted atomic.Int64 // live entries evicted for room
	stale   atomic.Int64 // entries dropped or replaced because their snapshot changed
	refused atomic.Int64 // misses answered by copying: too large, or no room left to take
}

// newAnswerCache returns a cache of at most limit bytes; nil (no cache)
// when limit is not positive. now is the clock of the replacement budget.
func newAnswerCache(limit int64, now func() time.Time) *answerCache {
	if limit <= 0 {
		return nil
	}
	t := now()
	return &answerCache{limit: limit, maxAnswer: limit / 8, now: now, budget: float64(limit / 8), refilled: t, halved: t}
}

// answer returns the body of an answer of kind for snap: the cached one, or
// one built, cached and returned now. It returns nil when the answer is not
// to be cached; the caller then copies it (appendAnswer). The body must not
// be modified.
func (c *answerCache) answer(kind int, snap *core.Snapshot) []byte {
	if c == nil {
		return nil
	}
	key := answerKey{snap.ServiceID, uint8(kind)}
	if v, ok := c.index.Load(key); ok {
		e := v.(*answerEntry)
		if e.snap.Value() == snap {
			c.hits.Add(1)
			if e.reads.Load() < maxAnswerReads {
				e.reads.Add(1)
			}
			return e.body
		}
	}
	c.misses.Add(1)
	size := answerSize(kind, snap)
	need := int64(size + answerEntryOverhead + len(key.id))
	if need > c.maxAnswer {
		c.refused.Add(1)
		return nil
	}
	if body, ok := c.reserve(key, snap, need); body != nil || !ok {
		if !ok {
			c.refused.Add(1)
		}
		return body
	}
	body := appendAnswer(make([]byte, 0, size), kind, snap)
	c.insert(key, snap, body, need)
	return body
}

// reserve makes room for need bytes and counts them; ok is false when the
// answer is not to be cached. It returns the body of the key's entry
// instead when another reader cached the answer meanwhile; an entry of the
// key built from another snapshot is dropped.
func (c *answerCache) reserve(key answerKey, snap *core.Snapshot, need int64) (cached []byte, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.ageLocked(now)
	if v, found := c.index.Load(key); found {
		e := v.(*answerEntry)
		if e.snap.Value() == snap {
			return e.body, true
		}
		c.removeLocked(e)
		c.stale.Add(1)
	}
	c.dropStaleLocked(2) // a few stale entries go on every miss, room or not
	if c.bytes.Load()+need > c.limit {
		c.dropStaleLocked(answerSamples)
	}
	if c.bytes.Load()+need > c.limit {
		c.refillLocked(now)
		if c.budget < float64(need) {
			return nil, false
		}
		for c.bytes.Load()+need > c.limit && len(c.ring) > 0 {
			c.removeLocked(c.victimLocked())
			c.evicted.Add(1)
		}
		if c.bytes.Load()+need > c.limit { // the rest is being built by other readers
			return nil, false
		}
		c.budget -= float64(need)
	}
	c.bytes.Add(need)
	return nil, true
}

// insert publishes the entry whose room reserve took.
func (c *answerCache) insert(key answerKey, snap *core.Snapshot, body []byte, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.index.Load(key); ok { // built meanwhile by another reader (or for another snapshot)
		c.removeLocked(v.(*answerEntry))
	}
	key.id = strings.Clone(key.id) // the core's string may live in memory the core reuses
	e := &answerEntry{key: key, snap: weak.Make(snap), body: body, size: size, slot: len(c.ring)}
	c.ring = append(c.ring, e)
	c.index.Store(key, e)
	c.entries.Add(1) // bytes were counted by reserve
}

// removeLocked removes e from the index and the ring.
func (c *answerCache) removeLocked(e *answerEntry) {
	if e.slot < 0 {
		return
	}
	c.index.CompareAndDelete(e.key, e)
	last := c.ring[len(c.ring)-1]
	c.ring[e.slot], last.slot = last, e.slot
	c.ring[len(c.ring)-1] = nil
	c.ring = c.ring[:len(c.ring)-1]
	e.slot = -1
	c.bytes.Add(-e.size)
	c.entries.Add(-1)
}

// dropStaleLocked samples n entries and removes those whose snapshot is gone.
func (c *answerCache) dropStaleLocked(n int) {
	for range n {
		if len(c.ring) == 0 {
			return
		}
		if e := c.ring[rand.IntN(len(c.ring))]; e.snap.Value() == nil {
			c.removeLocked(e)
			c.stale.Add(1)
		}
	}
}

// victimLocked returns the least-read of answerSamples sampled entries.
// The ring is not empty.
func (c *answerCache) victimLocked() *answerEntry {
	var victim *answerEntry
	for range answerSamples {
		e := c.ring[rand.IntN(len(c.ring))]
		if victim == nil || e.reads.Load() < victim.reads.Load() {
			victim = e
		}
	}
	return victim
}

// refillLocked adds to the replacement budget what has accrued since the
// last refill: an eighth of the limit per second, up to an eighth.
func (c *answerCache) refillLocked(now time.Time) {
	per := float64(c.limit / 8)
	c.budget = min(per, c.budget+per*now.Sub(c.refilled).Seconds())
	c.refilled = now
}

// ageLocked halves every entry's read count once per answerHalving elapsed.
func (c *answerCache) ageLocked(now time.Time) {
	n := int(now.Sub(c.halved) / answerHalving)
	if n <= 0 {
		return
	}
	c.halved = c.halved.Add(time.Duration(n) * answerHalving)
	for _, e := range c.ring {
		e.reads.Store(e.reads.Load() >> min(n, 31))
	}
}

// answerCacheStats is what the metrics export.
type answerCacheStats struct {
	Limit, Bytes, Entries                 int64
	Hits, Misses, Evicted, Stale, Refused int64
}

func (c *answerCache) stats() answerCacheStats {
	if c == nil {
		return answerCacheStats{}
	}
	return answerCacheStats{Limit: c.limit, Bytes: c.bytes.Load(), Entries: c.entries.Load(), Hits: c.hits.Load(),
		Misses: c.misses.Load(), Evicted: c.evicted.Load(), Stale: c.stale.Load(), Refused: c.refused.Load()}
}
