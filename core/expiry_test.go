package core

import (
	"runtime"
	"testing"
	"time"
)

// TestUnregisteredLeasesAreNotKept: a client that registers and unregisters
// (here 2,000 times one instance at the size limits) used to leave every
// removed lease, with its ~130 KB record, queued in the expiry wheel until
// its deadline: memory bounded by the registration rate times the TTL, not
// by bytes. A removed lease leaves the wheel at once; what stays is what the
// change log keeps, within its own byte bound.
func TestUnregisteredLeasesAreNotKept(t *testing.T) {
	r := newTestRegistry(t, Config{Shards: 8})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 2000 {
		inst := largeInstance(i)
		r.Register([]*Instance{inst}, nil)
		r.Unregister([]*Instance{inst}, nil)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := r.Stats()
	if st.Instances != 0 || st.Unregistrations != 2000 {
		t.Fatalf("unexpected stats after 2,000 register-unregister cycles: %+v", st)
	}
	if kept := int64(after.HeapAlloc) - int64(before.HeapAlloc); kept > st.ChangeLog.Bytes+2<<20 {
		t.Fatalf("unexpected heap kept after 2,000 register-unregister cycles; got %d MiB; want at most the change log's %d MiB and 2 MiB",
			kept>>20, st.ChangeLog.Bytes>>20)
	}
}

// TestWheelIsCapped: a long TTL does not size the wheel past maxWheelSlots
// (TestEvictionIsAtMostTwoTicksLate evicts such leases on time).
func TestWheelIsCapped(t *testing.T) {
	r := newTestRegistry(t, Config{LeaseTTL: 30 * time.Minute, Shards: 2})
	if n := len(r.shards[0].wheel.slots); n > maxWheelSlots {
		t.Fatalf("a 30-minute TTL made a wheel of %d slots; want at most %d", n, maxWheelSlots)
	}
	r2 := newTestRegistry(t, Config{LeaseTTL: 20 * time.Second, Shards: 2})
	if n := len(r2.shards[0].wheel.slots); n < 84 {
		t.Fatalf("a 20-second TTL made a wheel of %d slots; want one a tick over the TTL (at least 84)", n)
	}
}
