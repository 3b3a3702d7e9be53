package core

import (
	"math/bits"
	"sync/atomic"
)

// A shard keeps its leases in a slab: chunks of entries, pointer-free, so
// the collector marks a chunk without scanning it. The first chunk holds
// firstLeaseChunk entries and each next one twice as many, up to
// leaseChunkLen, so a small registry's 128 shards stay small. A lease
// is named by its index in the slab (never 0); the index of a removed lease
// goes to the shard's free list and is reused by a later registration.
//
// What a heartbeat reads and writes, the lease's state word (the time of
// its last renewal and a live bit), is not in the entry: it is in the
// lease's slot of the shard's table (leaseTable), beside the h2 half of its
// key hash, so a heartbeat makes one random memory read, not two (under the
// wrk heartbeat load at 100,000 leases the second, into a slab of state
// words, was ~390 ns an answer, the slot's ~200-270 ns). The entry keeps
// the slot's position (pos) and a generation that removal bumps, so a
// reader that holds an index (the expiry wheel, a service's members, a
// record lookup) tells a removed lease from the one that reuses its index.
const (
	leaseChunkBits  = 12
	leaseChunkLen   = 1 << leaseChunkBits
	firstChunkBits  = 6
	firstLeaseChunk = 1 << firstChunkBits
	// smallChunks is the number of chunks smaller than leaseChunkLen: they
	// hold the indexes below leaseChunkLen.
	smallChunks = leaseChunkBits - firstChunkBits + 1

	renewedBits = 43 // ms around the registry's start: ±139 years
	liveBit     = uint64(1) << renewedBits
	// movedBit marks the slot of a table that a rehash has copied: the
	// lease lives on in the new table, and a heartbeat that finds it here
	// waits for the new table and probes it.
	movedBit    = liveBit << 1
	genShift    = renewedBits + 2
	renewedMask = liveBit - 1
	genMask     = 1<<(64-genShift) - 1
)

// leaseEntry is the registry's entry for one instance (48 bytes).
type leaseEntry struct {
	h1 atomic.Uint64 // InstanceKey hash (h2 is in the table slot), set before the entry is published
	// rec is the handle of the lease's record in its service's arena;
	// written under the service's mutex once the lease is a member.
	rec     atomic.Uint64
	created int64 // epoch ms; set before the entry is published
	// svc is the id of the lease's service (serviceIndex.byID).
	svc atomic.Uint32
	// gen is the lease's generation: removal bumps it, under the shard
	// mutex, after it emptied the lease's table slot.
	gen atomic.Uint32
	// pos is the position of the lease's slot in its shard's current table,
	// or posNone while it is in none; written under the shard mutex, before
	// a new table is published.
	pos atomic.Uint32
	// mpos is the lease's index in its service's members; guarded by the
	// service's mutex.
	mpos uint32
	// wslot and wpos locate the lease in its wheel bucket (see
	// wheel.remove; a wheel has at most maxWheelSlots buckets); guarded by
	// shard.mu.
	wpos  int32
	wslot int16
	held  bool // expired but kept by self-preservation; guarded by shard.mu
	// shown is what the change log last said of the instance: true after a
	// ChangeNew, false after a ChangeDelete or when its registration was
	// hidden by a RecordFilter (nothing logged). Guarded by the service's mutex.
	shown bool
}

// leaseSlab is a shard's lease entries, in a directory of chunks. Readers
// load the directory atomically; writers hold the shard mutex and publish a
// longer directory when the slab grows, before the new index is published
// in the table or a service's members (where every lock-free reader gets
// its index).
// Chunks are never freed: a shard keeps the entries of its peak number of
// leases and reuses them.
type leaseSlab struct {
	dir  atomic.Pointer[[][]leaseEntry]
	free []uint32 // indexes of removed leases; guarded by shard.mu
	next uint32   // first index never used; guarded by shard.mu
}

func (s *leaseSlab) init() {
	s.dir.Store(&[][]leaseEntry{})
	s.next = 1 // index 0 means none
}

// entry returns the entry of index i, which was allocated.
func (s *leaseSlab) entry(i uint32) *leaseEntry {
	c, off := chunkOf(i)
	return &(*s.dir.Load())[c][off]
}

// chunkOf returns the chunk of index i and i's offset in it. Chunk 0 holds
// indexes [0, 64), chunk c in 1..6 holds [2^(c+5), 2^(c+6)), and from
// chunk 7 on each holds 4,096.
func chunkOf(i uint32) (int, uint32) {
	if i >= leaseChunkLen {
		return smallChunks - 1 + int(i>>leaseChunkBits), i & (leaseChunkLen - 1)
	}
	c := max(0, bits.Len32(i)-firstChunkBits)
	if c == 0 {
		return 0, i
	}
	return c, i - 1<<(c+firstChunkBits-1)
}

// chunkLen returns the number of entries of chunk c.
func chunkLen(c int) int {
	switch {
	case c == 0:
		return firstLeaseChunk
	case c < smallChunks:
		return 1 << (c + firstChunkBits - 1)
	}
	return leaseChunkLen
}

// allocLocked returns the index of an unused entry. The caller holds the
// shard mutex.
func (s *leaseSlab) allocLocked() uint32 {
	if n := len(s.free); n > 0 {
		i := s.free[n-1]
		s.free = s.free[:n-1]
		return i
	}
	i := s.next
	dir := *s.dir.Load()
	if c, _ := chunkOf(i); c == len(dir) {
		nd := append(dir[:len(dir):len(dir)], make([]leaseEntry, chunkLen(c)))
		s.dir.Store(&nd)
	}
	s.next++
	return i
}

// freeLocked returns the entry of index i, already cleared, to the free list.
func (s *leaseSlab) freeLocked(i uint32) { s.free = append(s.free, i) }

// leaseTable is a shard's index from key hash to lease, and where the
// leases' state words live: open addressing with linear probing,
// pointer-free. Readers (heartbeats) take no lock: they load the table
// pointer and the slots atomically. Writers hold the shard mutex; they
// store into slots atomically and publish a new table when it must grow or
// be cleaned of tombstones, so a reader always probes one consistent table.
//
// A lease is identified by the 128-bit seeded hash (h1, h2) of its lower-cased
// InstanceKey. A slot is 16 bytes, the key (h2, see slotKey) and the state
// word; the lease index of each slot is in a parallel array that a
// heartbeat does not read. h1 picks the shard and where the probe starts.
//   - find, for registrations and removals, matches the full (h1, h2),
//     reading h1 from the entry: two distinct keys share it with
//     probability 2^-128 per pair.
//   - renewable, for heartbeats, matches h2 (64 bits) and reads only the
//     slot: a heartbeat could renew another lease only if its key and that
//     lease's, in one shard, shared h2, with probability 2^-64 per pair:
//     about 2×10^-10 for a million instances in 128 shards (3×10^-8 in one
//     shard), counting every key that ever heartbeats against the leases
//     live at the time. Such a hit would be silent and lasting (that
//     heartbeat keeps renewing the other lease).
//
// Because the seeds are random per process, clients cannot choose
// collisions.
//
// A slot's state word carries a generation of its own, bumped when its lease
// is removed (the slot becomes a tombstone, which a later insertion may
// reuse), so a heartbeat that read the word before the removal fails its
// compare-and-swap instead of renewing the lease that reuses the slot. A
// rehash marks each slot it copies moved (movedBit) with a compare-and-swap,
// so no renewal is lost: a heartbeat that meets a moved slot waits on the
// shard mutex (the rehash holds it until the new table is published) and
// probes again.
type leaseTable struct {
	slots []leaseSlot
	idxs  []atomic.Uint32 // lease index of each slot (tombstoneIdx: deleted)
	mask  uint64
	used  int // live + tombstones; guarded by the shard mutex
	live  int // guarded by the shard mutex
}

// leaseSlot is a slot of a leaseTable.
type leaseSlot struct {
	key   atomic.Uint64 // slotKey(h2); emptyKey or tombstoneKey when no lease
	state atomic.Uint64 // gen<<genShift | movedBit | liveBit | renewed (see Registry.pack)
}

const (
	emptyKey     = 0
	tombstoneKey = 1
)

// slotKey returns the key of a lease with hash h2 in a slot: h2, moved off
// the two values that mark a slot empty or deleted.
func slotKey(h2 uint64) uint64 {
	if h2 <= tombstoneKey {
		h2 += 2
	}
	return h2
}

// tombstoneIdx is the lease index of a deleted slot.
const tombstoneIdx = ^uint32(0)

// posNone is the pos of an entry whose lease is in no table.
const posNone = ^uint32(0)

const minTableSize = 16

func newLeaseTable(size int) *leaseTable {
	n := minTableSize
	for n < size {
		n <<= 1
	}
	return &leaseTable{slots: make([]leaseSlot, n), idxs: make([]atomic.Uint32, n), mask: uint64(n - 1)}
}

// renewable returns the position of the slot holding a lease with hash
// h2, found from h1 (see leaseTable), and the state word read from it, or
// -1. It reads the slots only. The lease was live when its word was read
// unless the word is marked moved.
func (t *leaseTable) renewable(h1, h2 uint64) (int, uint64) {
	k := slotKey(h2)
	for i := h1 & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		switch s.key.Load() {
		case k:
			// The word is read between two reads of the key: a slot
			// emptied and reused since the first has another key or, the
			// same key again, the same instance's lease.
			if w := s.state.Load(); w&(liveBit|movedBit) != 0 && s.key.Load() == k {
				return int(i), w
			}
		case emptyKey:
			return -1, 0
		}
	}
}

// find returns the position of the slot of the live lease with hashes (h1,
// h2), the state word read from it, the lease's index and its generation,
// or -1. The caller holds the shard mutex, or checks the word (its
// compare-and-swap fails if the lease was removed since) and the
// generation (Registry.record) before it acts; without the mutex it may
// probe a table a rehash is copying, whose moved slots it skips (see
// leaseAt), and miss the lease.
func (t *leaseTable) find(slab *leaseSlab, h1, h2 uint64) (pos int, w uint64, idx, gen uint32) {
	k := slotKey(h2)
	for i := h1 & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		switch s.key.Load() {
		case k:
			w := s.state.Load()
			if w&(liveBit|movedBit) == 0 {
				continue
			}
			idx, gen, ok := t.leaseAt(slab, int(i), w)
			if ok && slab.entry(idx).h1.Load() == h1 {
				return int(i), w, idx, gen
			}
		case emptyKey:
			return -1, 0, 0, 0
		}
	}
}

// leaseAt returns the index and generation of the lease in slot pos, whose
// state word was w, and whether that lease is still there: the slot was not
// emptied since w was read (which would change its generation) nor copied
// by a rehash (after which the lease could be removed from the new table
// unseen here).
func (t *leaseTable) leaseAt(slab *leaseSlab, pos int, w uint64) (uint32, uint32, bool) {
	idx := t.idxs[pos].Load()
	if idx == 0 || idx == tombstoneIdx {
		return 0, 0, false
	}
	gen := slab.entry(idx).gen.Load()
	st := t.slots[pos].state.Load()
	return idx, gen, st&movedBit == 0 && genOf(st) == genOf(w) && st&liveBit != 0
}

// insertLocked adds the lease idx with hashes (h1, h2), which must not be
// present, with state word w (whose generation it replaces with the
// slot's), and returns the table to use from now on (t itself or a larger,
// clean copy). It sets the entry's pos. The caller holds the shard mutex
// and publishes the result.
func (t *leaseTable) insertLocked(slab *leaseSlab, h1, h2 uint64, idx uint32, w uint64) *leaseTable {
	if (t.used+1)*4 > len(t.slots)*3 {
		t = t.rehashLocked(slab, t.live+1)
	}
	t.put(slab, h1, slotKey(h2), idx, w)
	return t
}

// put places the lease idx in the first free slot of its probe sequence.
func (t *leaseTable) put(slab *leaseSlab, h1, k uint64, idx uint32, w uint64) {
	for i := h1 & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if cur := s.key.Load(); cur != emptyKey && cur != tombstoneKey {
			continue
		} else if cur == emptyKey {
			t.used++
		}
		// The word (with the slot's generation) before the key: a
		// heartbeat that matches the key reads this lease's word.
		gen := genOf(s.state.Load())
		t.idxs[i].Store(idx)
		s.state.Store(w&^(genMask<<genShift|movedBit) | gen<<genShift)
		s.key.Store(k)
		slab.entry(idx).pos.Store(uint32(i))
		t.live++
		return
	}
}

// deleteLocked empties the slot pos, leaving a tombstone whose generation
// is one more. The caller holds the shard mutex. The index goes before the
// state word: a reader by index (shard.stateOf) that reads the word and then
// still finds its index in the slot has read a live lease's word.
func (t *leaseTable) deleteLocked(pos uint32) {
	s := &t.slots[pos]
	s.key.Store(tombstoneKey)
	t.idxs[pos].Store(tombstoneIdx)
	s.state.Store((genOf(s.state.Load()) + 1) & genMask << genShift)
	t.live--
}

// rehashLocked returns a new table holding the live leases of t, sized for
// at least want leases at under half load. Each slot copied is marked moved
// first, so a heartbeat's renewal lands either before the copy (and is
// copied) or fails and is retried on the new table. A slot keeps no h1, so
// each lease's is read from its entry.
func (t *leaseTable) rehashLocked(slab *leaseSlab, want int) *leaseTable {
	nt := newLeaseTable(want * 2)
	for i := range t.slots {
		s := &t.slots[i]
		k := s.key.Load()
		if k == emptyKey || k == tombstoneKey {
			continue
		}
		w := s.state.Load()
		for !s.state.CompareAndSwap(w, w|movedBit) {
			w = s.state.Load()
		}
		idx := t.idxs[i].Load()
		nt.put(slab, slab.entry(idx).h1.Load(), k, idx, w)
	}
	return nt
}
