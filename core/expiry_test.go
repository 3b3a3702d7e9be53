package core

import (
	"runtime"
	"testing"
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
