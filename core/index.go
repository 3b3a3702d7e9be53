package core

import "sync/atomic"

// leaseTable is a shard's index from key hash to lease: open addressing with
// linear probing. Readers (heartbeats) take no lock: they load the table
// pointer and the slots atomically. Writers hold the shard mutex; they store
// into slots atomically and publish a new table when it must grow or be
// cleaned of tombstones, so a reader always probes one consistent table.
//
// A lease is identified by the 128-bit seeded hash (h1, h2) of its lower-cased
// InstanceKey; slots carry h1 so a probe rarely dereferences a lease. Two
// distinct keys share (h1, h2) with probability 2^-128 per pair, and because
// the seeds are random per process, clients cannot choose collisions.
type leaseTable struct {
	slots []leaseSlot
	mask  uint64
	used  int // live + tombstones; guarded by the shard mutex
	live  int // guarded by the shard mutex
}

type leaseSlot struct {
	h1 atomic.Uint64
	l  atomic.Pointer[lease]
}

// tombstone marks a deleted slot; probes continue past it.
var tombstone = &lease{}

const minTableSize = 16

func newLeaseTable(size int) *leaseTable {
	n := minTableSize
	for n < size {
		n <<= 1
	}
	return &leaseTable{slots: make([]leaseSlot, n), mask: uint64(n - 1)}
}

// find returns the lease with hashes (h1, h2), or nil. It is safe without
// the shard mutex.
func (t *leaseTable) find(h1, h2 uint64) *lease {
	for i := h1 & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		l := s.l.Load()
		if l == nil {
			return nil
		}
		if l != tombstone && s.h1.Load() == h1 && l.h1 == h1 && l.h2 == h2 {
			return l
		}
	}
}

// insertLocked adds l, which must not be present, and returns the table to
// use from now on (t itself or a larger, clean copy). The caller holds the
// shard mutex and publishes the result.
func (t *leaseTable) insertLocked(l *lease) *leaseTable {
	if (t.used+1)*4 > len(t.slots)*3 {
		t = t.rehashLocked(t.live + 1)
	}
	for i := l.h1 & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		cur := s.l.Load()
		if cur == nil || cur == tombstone {
			if cur == nil {
				t.used++
			}
			s.h1.Store(l.h1)
			s.l.Store(l)
			t.live++
			return t
		}
	}
}

// deleteLocked removes l, leaving a tombstone. The caller holds the shard mutex.
func (t *leaseTable) deleteLocked(l *lease) {
	for i := l.h1 & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		cur := s.l.Load()
		if cur == nil {
			return
		}
		if cur == l {
			s.l.Store(tombstone)
			t.live--
			return
		}
	}
}

// rehashLocked returns a new table holding the live leases of t, sized for
// at least want leases at under half load.
func (t *leaseTable) rehashLocked(want int) *leaseTable {
	nt := newLeaseTable(want * 2)
	for i := range t.slots {
		if l := t.slots[i].l.Load(); l != nil && l != tombstone {
			nt.insertLocked(l)
		}
	}
	return nt
}
