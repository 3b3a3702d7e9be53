package core

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestFindMatchesTheFullHash: a lease whose h2 and tag match a key but
// whose h1 does not (a 2^-64 event between real keys, staged here by hand)
// is not that key's for find, which registrations and removals use, and is
// for renewable, the heartbeat's probe, which reads only the slot and the
// leaseHot (the trade-off leaseTable documents).
func TestFindMatchesTheFullHash(t *testing.T) {
	r := newTestRegistry(t, Config{Shards: 1})
	a := testInstance("svc", "a")
	h1, h2 := r.hash.instance(a.RegionID, a.ServiceID, a.InstanceID)
	sh := r.shardFor(h1)

	sh.mu.Lock()
	idx := sh.slab.allocLocked()
	e, h := sh.slab.entry(idx), sh.slab.hotOf(idx)
	e.h1.Store(h1 ^ 1<<40) // another key's h1, probing from the same slot
	h.h2.Store(h2)
	h.state.Store(r.pack(0, r.nowMs()))
	sh.table.Store(sh.table.Load().insertLocked(&sh.slab, h1, h2, idx))
	sh.mu.Unlock()

	if got, _ := sh.find(h1, h2); got != 0 {
		t.Fatalf("find matched lease %d, whose h1 differs; want none", got)
	}
	if got, _ := sh.renewable(h1, h2); got != idx {
		t.Fatalf("renewable found %d; want %d (it matches h2 alone)", got, idx)
	}
	if got, _ := sh.renewable(h1, h2^1); got != 0 {
		t.Fatalf("renewable matched lease %d with another h2; want none", got)
	}
}

// TestHeartbeatReadsTheHotState: a heartbeat renews through the leaseHot,
// and what it wrote is what expiry and the status API read.
func TestHeartbeatReadsTheHotState(t *testing.T) {
	var now atomic.Int64 // epoch ms; the eviction goroutine reads the clock too
	now.Store(1_700_000_000_000)
	r := newTestRegistry(t, Config{Shards: 4, Now: func() time.Time { return time.UnixMilli(now.Load()) }})
	a := testInstance("svc", "a")
	r.Register([]*Instance{a}, nil)
	now.Add(7_000)
	if failed := r.Heartbeat([]*Instance{a}, nil); len(failed) != 0 {
		t.Fatalf("unexpected heartbeat failure: %v", failed[0].Err)
	}
	var renewed int64
	r.Leases([]string{"svc"}, func(_ string, ls []LeaseInfo) {
		if len(ls) == 1 {
			renewed = ls[0].Renewed
		}
	})
	if want := now.Load(); renewed != want {
		t.Fatalf("unexpected renewal time %d in the leases; want %d", renewed, want)
	}
}
