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
// Every lease has a state word: a generation, a live bit and the time of the
// last renewal. Removing a lease clears the live bit and bumps the
// generation, so a reader that found the entry before the removal (a
// heartbeat, which takes no lock) and renews it with a compare-and-swap of
// the word it read fails instead of renewing whatever lease reuses the entry.
//
// The state word and the h2 half of the key hash, what a heartbeat reads,
// live apart from the entry, in a parallel slab of 16-byte leaseHot (same
// chunks, same indexes): a heartbeat's second random memory read lands in
// an array a third of the entries' size (48 bytes), which stays in cache a
// little better. Under the wrk heartbeat load at 100,000 leases (CPU
// profiles) that read went from ~480 ns in the 64-byte entries to ~390 ns;
// the table slot's read is ~200-270 ns. On a node with peers a heartbeat
// still reads the entry: the replicator is handed the lease's record.
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
	genShift    = renewedBits + 1
	renewedMask = liveBit - 1
	genMask     = 1<<(64-genShift) - 1
)

// leaseHot is the part of a lease a heartbeat reads (see above).
type leaseHot struct {
	state atomic.Uint64 // gen<<genShift | liveBit | renewed (see Registry.pack)
	h2    atomic.Uint64 // the entry's h2, set before the lease is published
}

// leaseEntry is the registry's entry for one instance; its state word and
// the h2 half of its key hash are in the leaseHot of the same index (48 and
// 16 bytes a lease).
type leaseEntry struct {
	h1 atomic.Uint64 // InstanceKey hash (h2 is in the leaseHot), set before the entry is published
	// rec is the handle of the lease's record in its service's arena;
	// written under the service's mutex once the lease is a member.
	rec atomic.Uint64
	// svc is the id of the lease's service (serviceIndex.byID).
	svc     atomic.Uint32
	created int64 // epoch ms; set before the entry is published
	// mpos is the lease's index in its service's members; guarded by the
	// service's mutex.
	mpos uint32
	// wslot and wpos locate the lease in its wheel bucket (see
	// wheel.remove); guarded by shard.mu.
	wslot, wpos int32
	held        bool // expired but kept by self-preservation; guarded by shard.mu
	// shown is what the change log last said of the instance: true after a
	// ChangeNew, false after a ChangeDelete or when its registration was
	// hidden by a RecordFilter (nothing logged). Guarded by the service's mutex.
	shown bool
}

// leaseSlab is a shard's lease entries and their leaseHot, in two
// directories of chunks that grow together. Readers load a directory
// atomically; writers hold the shard mutex and publish longer directories
// when the slab grows, both before the new index is published in the table
// or a service's members (where every lock-free reader gets its index).
// Chunks are never freed: a shard keeps the entries of its peak number of
// leases and reuses them.
type leaseSlab struct {
	dir  atomic.Pointer[[][]leaseEntry]
	hot  atomic.Pointer[[][]leaseHot] // chunk for chunk with dir
	free []uint32                     // indexes of removed leases; guarded by shard.mu
	next uint32                       // first index never used; guarded by shard.mu
}

func (s *leaseSlab) init() {
	s.dir.Store(&[][]leaseEntry{})
	s.hot.Store(&[][]leaseHot{})
	s.next = 1 // index 0 means none
}

// entry returns the entry of index i, which was allocated.
func (s *leaseSlab) entry(i uint32) *leaseEntry {
	c, off := chunkOf(i)
	return &(*s.dir.Load())[c][off]
}

// hotOf returns the state word and h2 of index i, which was allocated.
func (s *leaseSlab) hotOf(i uint32) *leaseHot {
	c, off := chunkOf(i)
	return &(*s.hot.Load())[c][off]
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
		hot := *s.hot.Load()
		nh := append(hot[:len(hot):len(hot)], make([]leaseHot, chunkLen(c)))
		s.hot.Store(&nh)
		nd := append(dir[:len(dir):len(dir)], make([]leaseEntry, chunkLen(c)))
		s.dir.Store(&nd)
	}
	s.next++
	return i
}

// freeLocked returns the entry of index i, already cleared, to the free list.
func (s *leaseSlab) freeLocked(i uint32) { s.free = append(s.free, i) }

// leaseTable is a shard's index from key hash to lease index: open
// addressing with linear probing, pointer-free. Readers (heartbeats) take no
// lock: they load the table pointer and the slots atomically. Writers hold
// the shard mutex; they store into slots atomically and publish a new table
// when it must grow or be cleaned of tombstones, so a reader always probes
// one consistent table.
//
// A lease is identified by the 128-bit seeded hash (h1, h2) of its lower-cased
// InstanceKey. A slot is one word: the lease index in its low 32 bits and a
// tag, the high 32 bits of h2, above; h1 picks the shard and where the probe
// starts. A probe reads a lease only when the tag matches (a mismatch passes
// with probability 2^-32 per slot).
//   - find, for registrations and removals, matches the full (h1, h2): two
//     distinct keys share it with probability 2^-128 per pair.
//   - renewable, for heartbeats, matches h2 (64 bits) from the leaseHot
//     and does not read the entry: a heartbeat could renew another lease
//     only if its key and that lease's, in one shard, shared h2, with
//     probability 2^-64 per pair: about 2×10^-10 for a million instances
//     in 128 shards (3×10^-8 in one shard), counting every key that ever
//     heartbeats against the leases live at the time. Such a hit would be
//     silent and lasting (that heartbeat keeps renewing the other lease).
//
// Because the seeds are random per process, clients cannot choose
// collisions. Eight bytes a slot keep the table half the size of a
// hash-and-index pair, so more of it stays in cache: a heartbeat's two
// memory reads at random over the registry (its slot, then its leaseHot)
// are most of its cost in the core.
type leaseTable struct {
	slots []atomic.Uint64
	mask  uint64
	used  int // live + tombstones; guarded by the shard mutex
	live  int // guarded by the shard mutex
}

const (
	slotIdxMask = 1<<32 - 1
	slotTagMask = ^uint64(slotIdxMask)
)

// tombstoneIdx marks a deleted slot; probes continue past it.
const tombstoneIdx = ^uint32(0)

const minTableSize = 16

func newLeaseTable(size int) *leaseTable {
	n := minTableSize
	for n < size {
		n <<= 1
	}
	return &leaseTable{slots: make([]atomic.Uint64, n), mask: uint64(n - 1)}
}

// find returns the index of the live lease with hashes (h1, h2) and its
// state word, read before its hashes were compared, or 0. It is safe
// without the shard mutex: a caller that acts on the lease compares and
// swaps the state word it got, which fails if the lease was removed since.
func (t *leaseTable) find(slab *leaseSlab, h1, h2 uint64) (uint32, uint64) {
	return t.probe(slab, h1, h2, true)
}

// renewable is find for a heartbeat: it matches h2 alone (see leaseTable),
// so it reads only the slot and the leaseHot, never the entry.
func (t *leaseTable) renewable(slab *leaseSlab, h1, h2 uint64) (uint32, uint64) {
	return t.probe(slab, h1, h2, false)
}

func (t *leaseTable) probe(slab *leaseSlab, h1, h2 uint64, exact bool) (uint32, uint64) {
	tag := h2 & slotTagMask
	for i := h1 & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i].Load()
		idx := uint32(s)
		if idx == 0 {
			return 0, 0
		}
		if s&slotTagMask != tag || idx == tombstoneIdx {
			continue
		}
		h := slab.hotOf(idx)
		w := h.state.Load()
		if w&liveBit != 0 && h.h2.Load() == h2 && (!exact || slab.entry(idx).h1.Load() == h1) {
			return idx, w
		}
	}
}

// insertLocked adds the lease idx with hashes (h1, h2), which must not be
// present, and returns the table to use from now on (t itself or a larger,
// clean copy). The caller holds the shard mutex and publishes the result.
func (t *leaseTable) insertLocked(slab *leaseSlab, h1, h2 uint64, idx uint32) *leaseTable {
	if (t.used+1)*4 > len(t.slots)*3 {
		t = t.rehashLocked(slab, t.live+1)
	}
	for i := h1 & t.mask; ; i = (i + 1) & t.mask {
		cur := uint32(t.slots[i].Load())
		if cur == 0 || cur == tombstoneIdx {
			if cur == 0 {
				t.used++
			}
			t.slots[i].Store(h2&slotTagMask | uint64(idx))
			t.live++
			return t
		}
	}
}

// deleteLocked removes the lease idx with hash h1, leaving a tombstone. The
// caller holds the shard mutex.
func (t *leaseTable) deleteLocked(h1 uint64, idx uint32) {
	for i := h1 & t.mask; ; i = (i + 1) & t.mask {
		cur := uint32(t.slots[i].Load())
		if cur == 0 {
			return
		}
		if cur == idx {
			t.slots[i].Store(uint64(tombstoneIdx))
			t.live--
			return
		}
	}
}

// rehashLocked returns a new table holding the live leases of t, sized for
// at least want leases at under half load. A slot keeps no h1, so each
// lease's is read from its entry.
func (t *leaseTable) rehashLocked(slab *leaseSlab, want int) *leaseTable {
	nt := newLeaseTable(want * 2)
	for i := range t.slots {
		if idx := uint32(t.slots[i].Load()); idx != 0 && idx != tombstoneIdx {
			nt.insertLocked(slab, slab.entry(idx).h1.Load(), slab.hotOf(idx).h2.Load(), idx)
		}
	}
	return nt
}
